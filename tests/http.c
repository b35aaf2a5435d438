/*
 * tests/http.c: HTTP/1.1 heads (sockets.md §14, with §1.1, §20.16, §21,
 * §23). Covers every http_* function and its errno: attach and attach_mem
 * (EINVAL for NULL storage, ENOTSUP for a listener, a channel and a
 * message-only object, EBADF, the passed number dead afterwards, storage
 * at every alignment), the exact bytes of each send, every validation rule
 * (EINVAL for SP, HT, LF and each separator, CR let through, status 99/600,
 * EPROTO for an empty or all-space value, only spaces trimmed), every
 * parsing rule of the three receives (the weak version check, the space
 * after the status code, verbatim reasons, values trimmed on the left
 * only, empty names and values, tabs as ordinary bytes, EMSGSIZE at
 * exactly the buffer size and for zero-size buffers, NULL buffers), the
 * empty line giving EPIPE to every receive from then on, http_done (EPIPE
 * the second time, sends afterwards written at once after the empty line),
 * http_detach (sends the empty line, drains unread fields, leaves the
 * stream exactly after the peer's empty line, ECONNRESET and the stack
 * closed after a failure or an early end of stream, EBUSY during a call,
 * the detached number dead), the buffering of outgoing lines checked
 * through a recording bytestream (a head in one write, a full buffer
 * flushed together with the next line, a long line in the same write as
 * what was held, a flush before every receive and its failure, no read
 * ever past a line's LF), hostile input over a real socket pair (lines of
 * 1023 and 1024 bytes, an endless line, binary garbage, CR without LF,
 * bare LF, EOF in the middle of a line, a peer flooding fields during
 * detach stopped by the deadline), ETIMEDOUT then ECONNRESET, ECANCELED,
 * EBUSY (a second receive, sends and detach while a long write is blocked,
 * which a receive does not wait for), a handle closed under a blocked
 * receive, hclose closing the whole stack, and 100 keep-alive exchanges
 * between our client and server over TCP (Nagle's algorithm on, as the
 * library leaves it), with bodies on the bytestream and without, none of
 * them stalling: neither a head sent apart from its body (40 ms for a
 * delayed ACK) nor one the kernel holds for a body that never comes
 * (200 ms). No fd is leaked.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- Helpers ------------------------------------------------------------ */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while((e = readdir(d)))
        if(e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* A UNIX socket pair: *ours an HTTP handle over one end, *peer the other
   end as a plain non-blocking fd the test reads and writes itself. */
static void pair(int *ours, int *peer) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int s = ipc_fromfd(sv[0]);
    CHECK(s >= 0);
    *ours = http_attach(s);
    CHECK(*ours >= 0);
    CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
    *peer = sv[1];
}

static void peer_close(int fd) {
    fdclean(fd);
    CHECK(close(fd) == 0);
}

/* The peer sends len bytes (they fit in the socket buffer). */
static void peer_put(int fd, const char *data, size_t len) {
    while(len) {
        ssize_t n = write(fd, data, len);
        if(n < 0 && errno == EAGAIN) {
            CHECK(fdout(fd, now() + 5000) == 0);
            continue;
        }
        CHECK(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

static void peer_puts(int fd, const char *str) {
    peer_put(fd, str, strlen(str));
}

/* The peer receives exactly what is expected, and nothing more is
   waiting after it (the stream may have ended). */
static void peer_expect(int fd, const char *expected, size_t len) {
    char buf[8192];
    CHECK(len <= sizeof(buf));
    size_t have = 0;
    while(have < len) {
        ssize_t n = recv(fd, buf + have, len - have, 0);
        if(n < 0 && errno == EAGAIN) {
            CHECK(fdin(fd, now() + 5000) == 0);
            continue;
        }
        CHECK(n > 0);
        have += (size_t)n;
    }
    CHECK(memcmp(buf, expected, len) == 0);
    ssize_t n = recv(fd, buf, 1, MSG_DONTWAIT | MSG_PEEK);
    CHECK(n == 0 || (n < 0 && (errno == EAGAIN || errno == ECONNRESET)));
}

static void peer_expects(int fd, const char *expected) {
    peer_expect(fd, expected, strlen(expected));
}

/* Whether the peer has nothing waiting to be read. */
static int peer_idle(int fd) {
    char c;
    return recv(fd, &c, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN;
}

/* Whether the other end of the peer's socket is closed: reading gives the
   end of the stream (or a reset). */
static int peer_sees_close(int fd) {
    char c;
    for(;;) {
        ssize_t n = recv(fd, &c, 1, 0);
        if(n == 0) return 1;
        if(n < 0 && errno == ECONNRESET) return 1;
        if(n < 0 && errno == EAGAIN) {
            CHECK(fdin(fd, now() + 5000) == 0);
            continue;
        }
        return 0;
    }
}

/* ---- A recording bytestream --------------------------------------------- */

/* A bytestream whose receives serve a script and whose sends are kept:
   every bsendl and every brecvl size is recorded, so that the tests can
   see how many writes a head took and how far each read reached. */
struct rec {
    struct hvfs hvfs;
    struct bsock_vfs bvfs;
    const char *in;
    size_t inlen;
    size_t inpos;
    char out[8192];
    size_t outlen;
    int sends;
    size_t send_len[64];   /* bytes of each bsendl */
    int send_elems[64];    /* list elements of each bsendl */
    size_t out_at_recv[64]; /* bytes sent before each brecvl */
    int recvs;
    size_t recv_len[4096];
    int send_fails;        /* the next bsendl fails with ECONNRESET */
    int closed;
};

static void *rec_query(struct hvfs *hvfs, const void *type) {
    struct rec *r = (struct rec *)hvfs;
    if(type == bsock_type) return &r->bvfs;
    errno = ENOTSUP;
    return NULL;
}

static void rec_close(struct hvfs *hvfs) {
    ((struct rec *)hvfs)->closed++;
}

static struct rec *rec_of(struct bsock_vfs *bvfs) {
    return (struct rec *)((char *)bvfs - offsetof(struct rec, bvfs));
}

static int rec_bsendl(struct bsock_vfs *bvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)deadline;
    struct rec *r = rec_of(bvfs);
    CHECK(r->sends < 64);
    if(r->send_fails) {
        errno = ECONNRESET;
        return -1;
    }
    size_t len = 0;
    int elems = 0;
    for(struct iolist *it = first; it; it = it->iol_next) {
        CHECK(it->iol_rsvd == 0);
        CHECK(r->outlen + it->iol_len <= sizeof(r->out));
        memcpy(r->out + r->outlen, it->iol_base, it->iol_len);
        r->outlen += it->iol_len;
        len += it->iol_len;
        elems++;
        if(it == last) CHECK(it->iol_next == NULL);
    }
    r->send_len[r->sends] = len;
    r->send_elems[r->sends] = elems;
    r->sends++;
    return 0;
}

static int rec_brecvl(struct bsock_vfs *bvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)deadline;
    struct rec *r = rec_of(bvfs);
    CHECK(first == last && first->iol_next == NULL);
    CHECK(r->recvs < 4096);
    if(r->recvs < 64) r->out_at_recv[r->recvs] = r->outlen;
    r->recv_len[r->recvs++] = first->iol_len;
    if(r->inlen - r->inpos < first->iol_len) {
        r->inpos = r->inlen;
        errno = EPIPE;
        return -1;
    }
    memcpy(first->iol_base, r->in + r->inpos, first->iol_len);
    r->inpos += first->iol_len;
    return 0;
}

/* An HTTP handle over a recording bytestream serving in. */
static int rec_attach(struct rec *r, const char *in) {
    memset(r, 0, sizeof(*r));
    r->hvfs.query = rec_query;
    r->hvfs.close = rec_close;
    r->bvfs.bsendl = rec_bsendl;
    r->bvfs.brecvl = rec_brecvl;
    r->in = in;
    r->inlen = in ? strlen(in) : 0;
    int u = hmake(&r->hvfs);
    CHECK(u >= 0);
    int h = http_attach(u);
    CHECK(h >= 0);
    return h;
}

/* ---- Attach ------------------------------------------------------------- */

static void *msg_query(struct hvfs *hvfs, const void *type) {
    static struct msock_vfs mvfs;
    (void)hvfs;
    if(type == msock_type) return &mvfs;
    errno = ENOTSUP;
    return NULL;
}

static int msg_closed;
static void msg_close(struct hvfs *hvfs) {
    (void)hvfs;
    msg_closed++;
}

static void test_attach(void) {
    /* Not a handle. */
    CHECK_ERR(http_attach(-1), EBADF);
    CHECK_ERR(http_attach(12345), EBADF);
    struct http_storage mem;
    CHECK_ERR(http_attach_mem(12345, &mem), EBADF);

    /* NULL storage: EINVAL, and the socket is closed all the same. */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int s = ipc_fromfd(sv[0]);
    CHECK(s >= 0);
    CHECK_ERR(http_attach_mem(s, NULL), EINVAL);
    CHECK_ERR(hclose(s), EBADF);
    CHECK(peer_sees_close(sv[1]));
    CHECK(close(sv[1]) == 0);

    /* Not a bytestream: ENOTSUP (not EPROTO), and closed. */
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int ls = tcp_listen(&addr, 1);
    CHECK(ls >= 0);
    CHECK_ERR(http_attach(ls), ENOTSUP);
    CHECK_ERR(hclose(ls), EBADF);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(http_attach_mem(ch[0], &mem), ENOTSUP);
    CHECK_ERR(hclose(ch[0]), EBADF);
    CHECK(hclose(ch[1]) == 0);
    struct hvfs mvfs = {msg_query, msg_close};
    int m = hmake(&mvfs);
    CHECK(m >= 0);
    msg_closed = 0;
    CHECK_ERR(http_attach(m), ENOTSUP);
    CHECK(msg_closed == 1);
    CHECK_ERR(hclose(m), EBADF);

    /* The number passed in is dead after a successful attach too; the
       HTTP handle answers only the http_* functions. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    s = ipc_fromfd(sv[0]);
    CHECK(s >= 0);
    int h = http_attach(s);
    CHECK(h >= 0);
    CHECK_ERR(bsend(s, "x", 1, -1), EBADF);
    CHECK_ERR(bsend(h, "x", 1, -1), ENOTSUP);
    char buf[8];
    CHECK_ERR(brecv(h, buf, 1, -1), ENOTSUP);
    CHECK_ERR(msend(h, "x", 1, -1), ENOTSUP);
    CHECK_ERR(mrecv(h, buf, sizeof(buf), -1), ENOTSUP);
    CHECK_ERR(ipc_done(h, -1), ENOTSUP);
    /* The http_* functions on something else. */
    int u = ipc_fromfd(sv[1]);
    CHECK(u >= 0);
    CHECK_ERR(http_done(u, -1), ENOTSUP);
    CHECK_ERR(http_detach(u, -1), ENOTSUP);
    CHECK_ERR(http_sendrequest(u, "GET", "/", -1), ENOTSUP);
    CHECK_ERR(http_sendstatus(u, 200, "OK", -1), ENOTSUP);
    CHECK_ERR(http_sendfield(u, "A", "b", -1), ENOTSUP);
    char n[8], v[8];
    CHECK_ERR(http_recvrequest(u, n, 8, v, 8, -1), ENOTSUP);
    CHECK_ERR(http_recvstatus(u, n, 8, -1), ENOTSUP);
    CHECK_ERR(http_recvfield(u, n, 8, v, 8, -1), ENOTSUP);
    CHECK_ERR(http_done(-1, -1), EBADF);
    CHECK_ERR(http_detach(9999, -1), EBADF);
    CHECK_ERR(http_sendrequest(9999, "GET", "/", -1), EBADF);
    CHECK_ERR(http_sendstatus(9999, 200, "OK", -1), EBADF);
    CHECK_ERR(http_sendfield(9999, "A", "b", -1), EBADF);
    CHECK_ERR(http_recvrequest(9999, n, 8, v, 8, -1), EBADF);
    CHECK_ERR(http_recvstatus(9999, n, 8, -1), EBADF);
    CHECK_ERR(http_recvfield(9999, n, 8, v, 8, -1), EBADF);
    /* The ipc handle is still fine after all that. */
    CHECK(bsend(u, "ok", 2, -1) == 0);
    CHECK(hclose(u) == 0);
    CHECK(hclose(h) == 0);

    /* Caller storage at every alignment, and detach giving the stream
       back under a new number. */
    static char raw[sizeof(struct http_storage) + 16];
    for(int off = 0; off < 8; off++) {
        int ours, peer;
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        s = ipc_fromfd(sv[0]);
        CHECK(s >= 0);
        memset(raw, 0xA5, sizeof(raw));
        ours = http_attach_mem(s, (struct http_storage *)(raw + off));
        CHECK(ours >= 0);
        /* Nothing outside the storage is touched. */
        for(int i = 0; i < off; i++) CHECK(raw[i] == (char)0xA5);
        for(size_t i = off + sizeof(struct http_storage); i < sizeof(raw); i++)
            CHECK(raw[i] == (char)0xA5);
        peer = sv[1];
        CHECK(fcntl(peer, F_SETFL, O_NONBLOCK) == 0);
        CHECK(http_sendrequest(ours, "GET", "/", -1) == 0);
        CHECK(http_sendfield(ours, "Host", "x", -1) == 0);
        peer_puts(peer, "HTTP/1.1 200 OK\r\n\r\nrest");
        int u2 = http_detach(ours, now() + 1000);
        CHECK(u2 >= 0 && u2 != s);
        for(int i = 0; i < off; i++) CHECK(raw[i] == (char)0xA5);
        for(size_t i = off + sizeof(struct http_storage); i < sizeof(raw); i++)
            CHECK(raw[i] == (char)0xA5);
        CHECK_ERR(http_done(ours, -1), EBADF);
        peer_expects(peer, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(brecv(u2, buf, 4, now() + 1000) == 0);
        CHECK(memcmp(buf, "rest", 4) == 0);
        CHECK(hclose(u2) == 0);
        peer_close(peer);
    }
}

/* ---- Sending ------------------------------------------------------------ */

static void test_send_format(void) {
    int h, peer;
    pair(&h, &peer);
    CHECK(http_sendrequest(h, "GET", "/a/b?c=d", -1) == 0);
    CHECK(http_sendfield(h, "Host", "example.org", -1) == 0);
    /* Only spaces are trimmed, on both sides; tabs stay. */
    CHECK(http_sendfield(h, "X-Trim", "   a b  ", -1) == 0);
    CHECK(http_sendfield(h, "X-Tab", "\tv\t", -1) == 0);
    CHECK(http_sendfield(h, "X-One", "z", -1) == 0);
    /* Nothing has left yet: the head waits for http_done. */
    CHECK(peer_idle(peer));
    CHECK(http_done(h, -1) == 0);
    peer_expects(peer, "GET /a/b?c=d HTTP/1.1\r\nHost: example.org\r\n"
        "X-Trim: a b\r\nX-Tab: \tv\t\r\nX-One: z\r\n\r\n");
    CHECK_ERR(http_done(h, -1), EPIPE);
    /* Sends after http_done are let through (as the original does) and
       written at once, after the empty line. */
    CHECK(http_sendfield(h, "Late", "1", -1) == 0);
    peer_expects(peer, "Late: 1\r\n");
    CHECK(http_sendstatus(h, 100, "", -1) == 0);
    peer_expects(peer, "HTTP/1.1 100 \r\n");
    CHECK(hclose(h) == 0);
    peer_close(peer);

    pair(&h, &peer);
    CHECK(http_sendstatus(h, 200, "OK", -1) == 0);
    CHECK(http_sendstatus(h, 599, "Some reason here", -1) == 0);
    CHECK(http_sendstatus(h, 100, "", -1) == 0);
    CHECK(http_sendstatus(h, 404, " x ", -1) == 0);
    /* CR is not checked in requests (as in the original). */
    CHECK(http_sendrequest(h, "A\rB", "/\r", -1) == 0);
    /* An empty name is not refused either. */
    CHECK(http_sendfield(h, "", "v", -1) == 0);
    /* detach sends the empty line. */
    peer_puts(peer, "\r\n");
    int u = http_detach(h, now() + 1000);
    CHECK(u >= 0);
    peer_expects(peer, "HTTP/1.1 200 OK\r\nHTTP/1.1 599 Some reason here\r\n"
        "HTTP/1.1 100 \r\nHTTP/1.1 404  x \r\nA\rB /\r HTTP/1.1\r\n"
        ": v\r\n\r\n");
    CHECK(hclose(u) == 0);
    peer_close(peer);
}

static void test_send_validation(void) {
    int h, peer;
    pair(&h, &peer);
    CHECK_ERR(http_sendrequest(h, "G T", "/", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, "G\tT", "/", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, "G\nT", "/", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, "GET", "/ a", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, "GET", "/\ta", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, "GET", "/\na", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, NULL, "/", -1), EINVAL);
    CHECK_ERR(http_sendrequest(h, "GET", NULL, -1), EINVAL);
    CHECK_ERR(http_sendstatus(h, 99, "x", -1), EINVAL);
    CHECK_ERR(http_sendstatus(h, 600, "x", -1), EINVAL);
    CHECK_ERR(http_sendstatus(h, -200, "x", -1), EINVAL);
    CHECK_ERR(http_sendstatus(h, 200, NULL, -1), EINVAL);
    const char *bad = "()<>@,;:\\\"/[]?={} \t\n";
    for(const char *c = bad; *c; c++) {
        char name[8] = "Ab";
        name[1] = *c;
        CHECK_ERR(http_sendfield(h, name, "v", -1), EINVAL);
    }
    CHECK_ERR(http_sendfield(h, NULL, "v", -1), EINVAL);
    CHECK_ERR(http_sendfield(h, "A", NULL, -1), EINVAL);
    CHECK_ERR(http_sendfield(h, "A", "", -1), EPROTO);
    CHECK_ERR(http_sendfield(h, "A", " ", -1), EPROTO);
    CHECK_ERR(http_sendfield(h, "A", "      ", -1), EPROTO);
    /* Refusals change nothing: the connection works on. */
    CHECK(http_sendfield(h, "A-b.c_d~e!#$%&'*+^`|", "\t", -1) == 0);
    CHECK(http_done(h, -1) == 0);
    peer_expects(peer, "A-b.c_d~e!#$%&'*+^`|: \t\r\n\r\n");
    CHECK(hclose(h) == 0);
    peer_close(peer);
}

/* Outgoing lines collect and leave together. */
static void test_send_buffering(void) {
    struct rec r;
    int h = rec_attach(&r, NULL);
    CHECK(http_sendstatus(h, 200, "OK", -1) == 0);
    CHECK(http_sendfield(h, "Content-Length", "5", -1) == 0);
    CHECK(http_sendfield(h, "Content-Type", "text/plain", -1) == 0);
    CHECK(r.sends == 0);
    CHECK(http_done(h, -1) == 0);
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
        "Content-Type: text/plain\r\n\r\n";
    CHECK(r.sends == 1 && r.send_len[0] == strlen(head));
    CHECK(r.outlen == strlen(head) && memcmp(r.out, head, r.outlen) == 0);
    CHECK(hclose(h) == 0);
    CHECK(r.closed == 1);

    /* When a line does not fit, what is held and that line leave in one
       write; the lines after it are held again. */
    h = rec_attach(&r, NULL);
    char value[64];
    memset(value, 'v', 50);
    value[50] = 0;
    size_t line = strlen("F0: ") + 50 + 2; /* 56 bytes */
    int held = 0;
    while(r.sends == 0) {
        char name[8];
        snprintf(name, sizeof(name), "F%d", held % 10);
        CHECK(http_sendfield(h, name, value, -1) == 0);
        held++;
    }
    /* The buffer holds a few lines, never more than its room. */
    CHECK(held >= 3);
    CHECK(r.send_len[0] == (size_t)held * line);
    CHECK(r.send_elems[0] == 5);
    CHECK(http_sendfield(h, "G", "1", -1) == 0);
    CHECK(r.sends == 1);
    /* A line longer than the buffer goes out with what is held. */
    static char big[3000];
    memset(big, 'b', sizeof(big) - 1);
    CHECK(http_sendfield(h, "Big", big, -1) == 0);
    CHECK(r.sends == 2);
    CHECK(r.send_len[1] == strlen("G: 1\r\n") + 5 + sizeof(big) - 1 + 2);
    CHECK(memcmp(r.out + r.send_len[0], "G: 1\r\nBig: bbb", 14) == 0);
    /* Nothing held: the long line alone. */
    CHECK(http_sendrequest(h, "GET", big, -1) == 0);
    CHECK(r.sends == 3 && r.send_elems[2] == 4);
    CHECK(r.send_len[2] == 4 + sizeof(big) - 1 + 11);
    /* done with nothing held: just the empty line. */
    CHECK(http_done(h, -1) == 0);
    CHECK(r.sends == 4 && r.send_len[3] == 2);
    CHECK(memcmp(r.out + r.outlen - 2, "\r\n", 2) == 0);
    CHECK(hclose(h) == 0);

    /* A receive writes what is held first, in one write. */
    h = rec_attach(&r, "HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(http_sendrequest(h, "GET", "/", -1) == 0);
    CHECK(http_sendfield(h, "Host", "h", -1) == 0);
    char reason[32];
    CHECK(http_recvstatus(h, reason, sizeof(reason), -1) == 204);
    CHECK(strcmp(reason, "No Content") == 0);
    CHECK(r.sends == 1 && r.out_at_recv[0] == r.outlen);
    CHECK(r.outlen == strlen("GET / HTTP/1.1\r\nHost: h\r\n"));
    /* detach: the empty line, nothing more is read past the peer's. */
    int u = http_detach(h, -1);
    CHECK(u >= 0);
    CHECK(r.sends == 2 && r.send_len[1] == 2);
    CHECK(r.inpos == r.inlen);
    CHECK(hclose(u) == 0);

    /* No read ever reaches past a line's LF: two bytes at a time, one
       after a CR. */
    const char *in = "GET /x HTTP/1.1\r\nA: \r\rb\r\n\r\nBODY";
    h = rec_attach(&r, in);
    char cmd[16], res[16], name[16], val[16];
    CHECK(http_recvrequest(h, cmd, 16, res, 16, -1) == 0);
    CHECK(r.inpos == strlen("GET /x HTTP/1.1\r\n"));
    CHECK(http_recvfield(h, name, 16, val, 16, -1) == 0);
    CHECK(strcmp(name, "A") == 0 && strcmp(val, "\r\rb") == 0);
    CHECK_ERR(http_recvfield(h, name, 16, val, 16, -1), EPIPE);
    CHECK(r.inpos == strlen(in) - 4);
    size_t pos = 0;
    for(int i = 0; i < r.recvs; i++) {
        CHECK(r.recv_len[i] == 1 || r.recv_len[i] == 2);
        if(pos > 0 && in[pos - 1] == '\r') CHECK(r.recv_len[i] == 1);
        pos += r.recv_len[i];
    }
    CHECK(pos == r.inpos);
    u = http_detach(h, -1);
    CHECK(u >= 0);
    CHECK(r.inpos == strlen(in) - 4);
    CHECK(hclose(u) == 0);

    /* A write that fails: the send side is broken, receives still work
       (the receive that had to flush reports the failure). */
    h = rec_attach(&r, "X: y\r\nZ: w\r\n\r\n");
    CHECK(http_sendfield(h, "A", "b", -1) == 0);
    r.send_fails = 1;
    CHECK_ERR(http_recvfield(h, name, 16, val, 16, -1), ECONNRESET);
    CHECK(r.recvs == 0);
    CHECK(http_recvfield(h, name, 16, val, 16, -1) == 0);
    CHECK(strcmp(name, "X") == 0 && strcmp(val, "y") == 0);
    CHECK_ERR(http_sendfield(h, "A", "b", -1), ECONNRESET);
    CHECK_ERR(http_done(h, -1), ECONNRESET);
    CHECK(http_recvfield(h, name, 16, val, 16, -1) == 0);
    CHECK_ERR(http_recvfield(h, name, 16, val, 16, -1), EPIPE);
    /* detach after a failure: ECONNRESET, the stack closed. */
    r.closed = 0;
    CHECK_ERR(http_detach(h, -1), ECONNRESET);
    CHECK(r.closed == 1);
    CHECK_ERR(hclose(h), EBADF);

    /* done that fails. */
    h = rec_attach(&r, NULL);
    r.send_fails = 1;
    CHECK_ERR(http_done(h, -1), ECONNRESET);
    CHECK_ERR(http_done(h, -1), ECONNRESET);
    CHECK_ERR(http_sendstatus(h, 200, "OK", -1), ECONNRESET);
    CHECK(hclose(h) == 0);
}

/* ---- Receiving ---------------------------------------------------------- */

struct req_case {
    const char *line;
    int rc;          /* 0 or the errno */
    const char *cmd;
    const char *res;
};

static void test_recvrequest(void) {
    static const struct req_case cases[] = {
        {"GET / HTTP/1.1", 0, "GET", "/"},
        {"   POST    /a/b?c    HTTP/1.1    ", 0, "POST", "/a/b?c"},
        /* The weak version check: 8 bytes of anything, or a longer token
           starting with HTTP/1.1. */
        {"GET / HTTP/1.0", 0, "GET", "/"},
        {"GET / ABCDEFGH", 0, "GET", "/"},
        {"GET / HTTP/1.1xyz", 0, "GET", "/"},
        {"GET / HTTP/1.", EPROTO, 0, 0},
        {"GET / HTTP/1.0x", EPROTO, 0, 0},
        {"GET / ", EPROTO, 0, 0},
        {"GET /", EPROTO, 0, 0},
        {"GET", EPROTO, 0, 0},
        {"   ", EPROTO, 0, 0},
        {"GET / HTTP/1.1 x", EPROTO, 0, 0},
        /* Tabs are ordinary bytes. */
        {"G\tT /\t HTTP/1.1", 0, "G\tT", "/\t"},
        {"GET\t/\tHTTP/1.1", EPROTO, 0, 0},
        /* Exactly the buffer sizes (7 + NUL, 15 + NUL), then one more. */
        {"ABCDEFG /23456789012345 HTTP/1.1", 0, "ABCDEFG", "/23456789012345"},
        {"ABCDEFGH / HTTP/1.1", EMSGSIZE, 0, 0},
        {"GET /234567890123456 HTTP/1.1", EMSGSIZE, 0, 0},
        /* Binary bytes and a bare LF are content. */
        {"\x01\xff /\x7f HTTP/1.1\n", 0, "\x01\xff", "/\x7f"},
    };
    int h, peer;
    pair(&h, &peer);
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        peer_puts(peer, cases[i].line);
        peer_puts(peer, "\r\n");
        char cmd[8], res[16];
        errno = 0;
        int rc = http_recvrequest(h, cmd, sizeof(cmd), res, sizeof(res),
            now() + 1000);
        if(cases[i].rc) {
            if(rc != -1 || errno != cases[i].rc)
                fprintf(stderr, "case %zu: rc %d errno %d\n", i, rc, errno);
            CHECK(rc == -1 && errno == cases[i].rc);
            continue;
        }
        if(rc != 0) fprintf(stderr, "case %zu: errno %d\n", i, errno);
        CHECK(rc == 0);
        CHECK(strcmp(cmd, cases[i].cmd) == 0);
        CHECK(strcmp(res, cases[i].res) == 0);
    }
    /* Zero-size and one-byte buffers. */
    char cmd[8], res[16];
    peer_puts(peer, "GET / HTTP/1.1\r\nGET / HTTP/1.1\r\nGET / HTTP/1.1\r\n");
    CHECK_ERR(http_recvrequest(h, cmd, 0, res, sizeof(res), -1), EMSGSIZE);
    CHECK_ERR(http_recvrequest(h, cmd, sizeof(cmd), res, 0, -1), EMSGSIZE);
    CHECK_ERR(http_recvrequest(h, cmd, sizeof(cmd), res, 1, -1), EMSGSIZE);
    /* NULL buffers are refused before anything is read. */
    peer_puts(peer, "GET / HTTP/1.1\r\n");
    CHECK_ERR(http_recvrequest(h, NULL, 8, res, sizeof(res), -1), EINVAL);
    CHECK_ERR(http_recvrequest(h, cmd, 8, NULL, 0, -1), EINVAL);
    CHECK(http_recvrequest(h, cmd, 4, res, 2, -1) == 0);
    CHECK(strcmp(cmd, "GET") == 0 && strcmp(res, "/") == 0);
    CHECK(hclose(h) == 0);
    peer_close(peer);
}

struct status_case {
    const char *line;
    int rc;          /* the status, or -errno */
    const char *reason;
};

static void test_recvstatus(void) {
    static const struct status_case cases[] = {
        {"HTTP/1.1 200 OK", 200, "OK"},
        {"  HTTP/1.1   404   Not   Found  ", 404, "Not   Found  "},
        {"HTTP/1.1 204 ", 204, ""},
        {"HTTP/1.0 000 zero", 0, "zero"},
        {"ABCDEFGH 999 x", 999, "x"},
        {"HTTP/1.1xy 301 M", 301, "M"},
        {"HTTP/1.1 204", -EPROTO, 0},
        {"HTTP/1.1 20 OK", -EPROTO, 0},
        {"HTTP/1.1 2000 OK", -EPROTO, 0},
        {"HTTP/1.1 2x0 OK", -EPROTO, 0},
        {"HTTP/1.1 -20 OK", -EPROTO, 0},
        {"HTTP/1.1\t200 OK", -EPROTO, 0},
        {"HTTP/1.1", -EPROTO, 0},
        {"HTTP/1. 200 OK", -EPROTO, 0},
        {" ", -EPROTO, 0},
        {"HTTP/1.1 200 \t", 200, "\t"},
        /* reasonlen 16: 15 bytes fit, 16 do not. */
        {"HTTP/1.1 500 123456789012345", 500, "123456789012345"},
        {"HTTP/1.1 500 1234567890123456", -EMSGSIZE, 0},
    };
    int h, peer;
    pair(&h, &peer);
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        peer_puts(peer, cases[i].line);
        peer_puts(peer, "\r\n");
        char reason[16];
        errno = 0;
        int rc = http_recvstatus(h, reason, sizeof(reason), now() + 1000);
        if(cases[i].rc < 0) {
            if(rc != -1 || errno != -cases[i].rc)
                fprintf(stderr, "case %zu: rc %d errno %d\n", i, rc, errno);
            CHECK(rc == -1 && errno == -cases[i].rc);
            continue;
        }
        if(rc != cases[i].rc) fprintf(stderr, "case %zu: %d\n", i, rc);
        CHECK(rc == cases[i].rc);
        CHECK(strcmp(reason, cases[i].reason) == 0);
    }
    char reason[8];
    peer_puts(peer, "HTTP/1.1 200 \r\nHTTP/1.1 200 \r\n");
    CHECK_ERR(http_recvstatus(h, reason, 0, -1), EMSGSIZE);
    CHECK(http_recvstatus(h, reason, 1, -1) == 200);
    CHECK(reason[0] == 0);
    CHECK_ERR(http_recvstatus(h, NULL, 8, -1), EINVAL);
    CHECK(hclose(h) == 0);
    peer_close(peer);
}

struct field_case {
    const char *line;
    int rc;
    const char *name;
    const char *value;
};

static void test_recvfield(void) {
    static const struct field_case cases[] = {
        {"Host: example.org", 0, "Host", "example.org"},
        {"  Content-Type  :   text/html  ", 0, "Content-Type", "text/html  "},
        {"X:y", 0, "X", "y"},
        {"lower-Case: MiXed", 0, "lower-Case", "MiXed"},
        {": v", 0, "", "v"},
        {"Empty:", 0, "Empty", ""},
        {"Empty:     ", 0, "Empty", ""},
        {"A: b: c", 0, "A", "b: c"},
        {"Tab:\tv", 0, "Tab", "\tv"},
        {"T\tb: v", 0, "T\tb", "v"},
        {"Bare: a\nb", 0, "Bare", "a\nb"},
        {"Cr: a\rb", 0, "Cr", "a\rb"},
        {"NoColon", EPROTO, 0, 0},
        {"No Colon: x", EPROTO, 0, 0},
        {"   ", EPROTO, 0, 0},
        {"Name ", EPROTO, 0, 0},
        /* namelen 16, valuelen 16. */
        {"123456789012345: 123456789012345", 0, "123456789012345",
            "123456789012345"},
        {"1234567890123456: v", EMSGSIZE, 0, 0},
        {"N: 1234567890123456", EMSGSIZE, 0, 0},
    };
    int h, peer;
    pair(&h, &peer);
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        peer_puts(peer, cases[i].line);
        peer_puts(peer, "\r\n");
        char name[16], value[16];
        errno = 0;
        int rc = http_recvfield(h, name, sizeof(name), value, sizeof(value),
            now() + 1000);
        if(cases[i].rc) {
            if(rc != -1 || errno != cases[i].rc)
                fprintf(stderr, "case %zu: rc %d errno %d\n", i, rc, errno);
            CHECK(rc == -1 && errno == cases[i].rc);
            continue;
        }
        if(rc != 0) fprintf(stderr, "case %zu: errno %d\n", i, errno);
        CHECK(rc == 0);
        CHECK(strcmp(name, cases[i].name) == 0);
        CHECK(strcmp(value, cases[i].value) == 0);
    }
    char name[8], value[8];
    peer_puts(peer, "A: b\r\nA: b\r\nA: b\r\n");
    CHECK_ERR(http_recvfield(h, name, 0, value, 8, -1), EMSGSIZE);
    CHECK_ERR(http_recvfield(h, name, 8, value, 0, -1), EMSGSIZE);
    CHECK_ERR(http_recvfield(h, NULL, 8, value, 8, -1), EINVAL);
    CHECK_ERR(http_recvfield(h, name, 8, NULL, 8, -1), EINVAL);
    CHECK(http_recvfield(h, name, 2, value, 2, -1) == 0);
    CHECK(strcmp(name, "A") == 0 && strcmp(value, "b") == 0);
    /* A NUL byte inside a value is copied like any other. */
    peer_put(peer, "N: a\0b\r\n", 8);
    CHECK(http_recvfield(h, name, 8, value, 8, -1) == 0);
    CHECK(memcmp(value, "a\0b", 4) == 0);
    /* The empty line: EPIPE, for every receive from then on, and nothing
       after it is read. */
    peer_puts(peer, "\r\nGET / HTTP/1.1\r\n");
    CHECK_ERR(http_recvfield(h, name, 8, value, 8, -1), EPIPE);
    CHECK_ERR(http_recvfield(h, name, 8, value, 8, -1), EPIPE);
    CHECK_ERR(http_recvrequest(h, name, 8, value, 8, -1), EPIPE);
    CHECK_ERR(http_recvstatus(h, name, 8, -1), EPIPE);
    int u = http_detach(h, now() + 1000);
    CHECK(u >= 0);
    char rest[16];
    CHECK(brecv(u, rest, 16, now() + 1000) == 0);
    CHECK(memcmp(rest, "GET / HTTP/1.1\r\n", 16) == 0);
    CHECK(hclose(u) == 0);
    peer_close(peer);

    /* An empty line right at the start. */
    pair(&h, &peer);
    peer_puts(peer, "\r\nxyz");
    CHECK_ERR(http_recvrequest(h, name, 8, value, 8, -1), EPIPE);
    CHECK_ERR(http_recvstatus(h, name, 8, -1), EPIPE);
    u = http_detach(h, now() + 1000);
    CHECK(u >= 0);
    CHECK(brecv(u, rest, 3, now() + 1000) == 0);
    CHECK(memcmp(rest, "xyz", 3) == 0);
    CHECK(hclose(u) == 0);
    peer_close(peer);
}

/* ---- Hostile peers ------------------------------------------------------ */

static void test_long_lines(void) {
    static char line[4096];
    int h, peer;
    char name[1100], value[1100];

    /* 1023 bytes of content fit; the next line of 1024 does not. */
    pair(&h, &peer);
    memset(line, 0, sizeof(line));
    memcpy(line, "N: ", 3);
    memset(line + 3, 'v', 1020);
    memcpy(line + 1023, "\r\n", 2);
    peer_put(peer, line, 1025);
    CHECK(http_recvfield(h, name, sizeof(name), value, sizeof(value), -1)
        == 0);
    CHECK(strlen(value) == 1020);
    /* A CR as the 1023rd byte, then the line goes on. */
    memset(line + 3, 'v', 1020);
    line[1022] = '\r';
    memcpy(line + 1023, "x\r\n", 3);
    peer_put(peer, line, 1026);
    CHECK_ERR(http_recvfield(h, name, sizeof(name), value, sizeof(value), -1),
        EMSGSIZE);
    /* The connection is broken from then on. */
    CHECK_ERR(http_recvfield(h, name, sizeof(name), value, sizeof(value), -1),
        ECONNRESET);
    CHECK_ERR(http_recvrequest(h, name, 8, value, 8, -1), ECONNRESET);
    CHECK_ERR(http_detach(h, -1), ECONNRESET);
    CHECK_ERR(hclose(h), EBADF);
    CHECK(peer_sees_close(peer));
    peer_close(peer);

    /* 1023 bytes and a CR LF: still fine. */
    pair(&h, &peer);
    memset(line, 'a', 1023);
    memcpy(line + 1023, "\r\n", 2);
    line[3] = ' ';
    line[10] = ' ';
    memcpy(line + 11, "HTTP/1.1", 8);
    memset(line + 19, ' ', 1004);
    peer_put(peer, line, 1025);
    CHECK(http_recvrequest(h, name, 8, value, 8, -1) == 0);
    CHECK(strcmp(name, "aaa") == 0 && strcmp(value, "aaaaaa") == 0);
    /* An endless line stops at the limit, not at the end of memory. */
    memset(line, 'x', sizeof(line));
    peer_put(peer, line, sizeof(line));
    CHECK_ERR(http_recvstatus(h, name, 8, -1), EMSGSIZE);
    CHECK_ERR(http_recvstatus(h, name, 8, -1), ECONNRESET);
    CHECK(hclose(h) == 0);
    CHECK(peer_sees_close(peer));
    peer_close(peer);

    /* While detach drains the peer's head, too. */
    pair(&h, &peer);
    peer_put(peer, line, sizeof(line));
    CHECK_ERR(http_detach(h, now() + 1000), EMSGSIZE);
    CHECK_ERR(hclose(h), EBADF);
    peer_expects(peer, "\r\n");
    CHECK(peer_sees_close(peer));
    peer_close(peer);
}

static void test_garbage(void) {
    int h, peer;
    char a[64], b[64];
    pair(&h, &peer);
    /* CR without LF, bare LF, a lone CR before the CR LF: all content. */
    peer_puts(peer, "\r\r\n\n\r\nA\rB\r\n\r\r\r\n");
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPROTO);
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPROTO);
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPROTO);
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPROTO);
    /* Parse errors leave the connection in step: the next line works. */
    peer_puts(peer, "K: v\r\n");
    CHECK(http_recvfield(h, a, 64, b, 64, -1) == 0);
    CHECK(strcmp(a, "K") == 0 && strcmp(b, "v") == 0);
    /* Every byte value in a line. */
    char bytes[300];
    size_t n = 0;
    memcpy(bytes, "Bin: ", 5);
    n = 5;
    for(int c = 1; c < 256; c++)
        if(c != '\r') bytes[n++] = (char)c;
    memcpy(bytes + n, "\r\n", 2);
    peer_put(peer, bytes, n + 2);
    char value[300];
    CHECK(http_recvfield(h, a, 64, value, sizeof(value), -1) == 0);
    CHECK(strcmp(a, "Bin") == 0);
    CHECK(memcmp(value, bytes + 5, n - 5) == 0 && value[n - 5] == 0);
    peer_puts(peer, "\r\n");
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPIPE);
    CHECK(hclose(h) == 0);
    peer_close(peer);

    /* The stream ends in the middle of a line: EPIPE, from then on, and
       detach fails with ECONNRESET, closing the stack. */
    pair(&h, &peer);
    peer_puts(peer, "GET / HTTP/1.1\r\nHost: x");
    CHECK(shutdown(peer, SHUT_WR) == 0);
    CHECK(http_recvrequest(h, a, 64, b, 64, -1) == 0);
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPIPE);
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPIPE);
    CHECK_ERR(http_detach(h, -1), ECONNRESET);
    CHECK_ERR(hclose(h), EBADF);
    CHECK(peer_sees_close(peer));
    peer_close(peer);

    /* The stream ends after a CR; and during detach. */
    pair(&h, &peer);
    peer_puts(peer, "A: b\r");
    CHECK(shutdown(peer, SHUT_WR) == 0);
    CHECK_ERR(http_recvfield(h, a, 64, b, 64, -1), EPIPE);
    CHECK(hclose(h) == 0);
    peer_close(peer);
    pair(&h, &peer);
    peer_puts(peer, "A: b\r\nC: d\r\n");
    CHECK(shutdown(peer, SHUT_WR) == 0);
    CHECK_ERR(http_detach(h, -1), ECONNRESET);
    peer_expects(peer, "\r\n");
    peer_close(peer);
}

/* The peer sends fields for ever, until it is cancelled. The block is
   made of whole lines and partial writes resume where they stopped, so
   the stream stays a run of whole lines. */
static coroutine void flood(int fd) {
    static char block[4096];
    for(size_t i = 0; i + 8 <= sizeof(block); i += 8)
        memcpy(block + i, "F: 123\r\n", 8);
    size_t off = 0;
    for(;;) {
        ssize_t n = write(fd, block + off, sizeof(block) - off);
        if(n < 0 && errno == EAGAIN) {
            if(fdout(fd, -1) < 0) return;
            continue;
        }
        if(n <= 0) return;
        off = (off + (size_t)n) % sizeof(block);
    }
}

static void test_flood(void) {
    int h, peer;
    pair(&h, &peer);
    char a[8], b[8];
    peer_puts(peer, "GET / HTTP/1.1\r\n");
    CHECK(http_recvrequest(h, a, 8, b, 8, -1) == 0);
    int cr = go(flood(peer));
    CHECK(cr >= 0);
    int64_t start = now();
    CHECK_ERR(http_detach(h, now() + 200), ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 190 && took < 2000);
    CHECK(hclose(cr) == 0);
    peer_close(peer);

    /* Deadline 0: only the empty line may come next. */
    pair(&h, &peer);
    peer_puts(peer, "A: b\r\n\r\n");
    CHECK_ERR(http_detach(h, 0), ETIMEDOUT);
    peer_close(peer);
    pair(&h, &peer);
    peer_puts(peer, "\r\n");
    int u = http_detach(h, 0);
    CHECK(u >= 0);
    CHECK(hclose(u) == 0);
    peer_close(peer);
}

/* ---- Deadlines, cancellation, concurrency -------------------------------- */

struct op {
    int done;
    int rc;
    int err;
};

static coroutine void recv_into(int h, volatile struct op *op,
      int64_t deadline) {
    char a[8], b[8];
    int rc = http_recvfield(h, a, 8, b, 8, deadline);
    op->err = errno;
    op->rc = rc;
    op->done = 1;
}

static void test_blocking(void) {
    int h, peer;
    char a[8], b[8];

    /* ETIMEDOUT, then the receive side is broken. */
    pair(&h, &peer);
    int64_t start = now();
    CHECK_ERR(http_recvfield(h, a, 8, b, 8, now() + 50), ETIMEDOUT);
    CHECK(now() - start >= 45);
    peer_puts(peer, "A: b\r\n");
    CHECK_ERR(http_recvfield(h, a, 8, b, 8, -1), ECONNRESET);
    /* Sending still works. */
    CHECK(http_sendstatus(h, 200, "OK", -1) == 0);
    CHECK(http_done(h, -1) == 0);
    peer_expects(peer, "HTTP/1.1 200 OK\r\n\r\n");
    CHECK_ERR(http_detach(h, -1), ECONNRESET);
    CHECK_ERR(hclose(h), EBADF);
    peer_close(peer);

    /* Deadline 0 with nothing there. */
    pair(&h, &peer);
    CHECK_ERR(http_recvstatus(h, a, 8, 0), ETIMEDOUT);
    CHECK(hclose(h) == 0);
    peer_close(peer);

    /* ECANCELED for a coroutine blocked in a receive. */
    pair(&h, &peer);
    volatile struct op op = {0, 99, 0};
    int cr = go(recv_into(h, &op, -1));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(!op.done);
    /* EBUSY: one receive at a time; detach refuses and closes nothing. */
    CHECK_ERR(http_recvfield(h, a, 8, b, 8, -1), EBUSY);
    CHECK_ERR(http_detach(h, -1), EBUSY);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK_ERR(http_recvfield(h, a, 8, b, 8, -1), ECONNRESET);
    CHECK(hclose(h) == 0);
    peer_close(peer);

    /* A receive in one coroutine, sends in another. */
    pair(&h, &peer);
    op.done = 0;
    cr = go(recv_into(h, &op, now() + 5000));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 10) == 0);
    CHECK(http_sendrequest(h, "GET", "/", -1) == 0);
    CHECK(http_done(h, -1) == 0);
    peer_expects(peer, "GET / HTTP/1.1\r\n\r\n");
    peer_puts(peer, "X: 1\r\n");
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(op.done && op.rc == 0);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(h) == 0);
    peer_close(peer);

    /* The handle closed under a blocked receive: the call ends with EBADF
       and nothing is touched after. */
    pair(&h, &peer);
    op.done = 0;
    cr = go(recv_into(h, &op, -1));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 10) == 0);
    CHECK(hclose(h) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(op.done && op.rc == -1 && op.err == EBADF);
    CHECK(hclose(cr) == 0);
    CHECK(peer_sees_close(peer));
    peer_close(peer);

    /* Held lines leave before a receive waits for the answer. */
    pair(&h, &peer);
    CHECK(http_sendfield(h, "A", "b", -1) == 0);
    peer_puts(peer, "X: 1\r\n");
    CHECK(http_recvfield(h, a, 8, b, 8, -1) == 0);
    peer_expects(peer, "A: b\r\n");
    CHECK(hclose(h) == 0);
    CHECK(peer_sees_close(peer));
    peer_close(peer);
}

static coroutine void send_big(int h, const char *value,
      volatile struct op *op) {
    int rc = http_sendfield(h, "Big", value, now() + 10000);
    op->err = errno;
    op->rc = rc;
    op->done = 1;
}

/* A write blocked in one coroutine: other sends get EBUSY, a receive does
   not wait for it (what was held is in that write already). */
static void test_busy_send(void) {
    int h, peer;
    pair(&h, &peer);
    size_t len = 1024 * 1024;
    char *value = malloc(len + 1);
    CHECK(value != NULL);
    memset(value, 'q', len);
    value[len] = 0;
    CHECK(http_sendstatus(h, 200, "OK", -1) == 0);
    volatile struct op op = {0, 99, 0};
    int cr = go(send_big(h, value, &op));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(!op.done);
    CHECK_ERR(http_sendfield(h, "A", "b", -1), EBUSY);
    CHECK_ERR(http_done(h, -1), EBUSY);
    CHECK_ERR(http_detach(h, -1), EBUSY);
    peer_puts(peer, "X: 1\r\n");
    char a[8], b[8];
    CHECK(http_recvfield(h, a, 8, b, 8, now() + 1000) == 0);
    /* The peer reads the whole write: the held line, then the long one. */
    const char *start = "HTTP/1.1 200 OK\r\nBig: ";
    size_t total = strlen(start) + len + 2, have = 0;
    char *got = malloc(total);
    CHECK(got != NULL);
    while(have < total) {
        ssize_t n = recv(peer, got + have, total - have, 0);
        if(n < 0 && errno == EAGAIN) {
            CHECK(fdin(peer, now() + 5000) == 0);
            continue;
        }
        CHECK(n > 0);
        have += (size_t)n;
    }
    CHECK(memcmp(got, start, strlen(start)) == 0);
    CHECK(memcmp(got + strlen(start), value, len) == 0);
    CHECK(memcmp(got + total - 2, "\r\n", 2) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(op.done && op.rc == 0);
    CHECK(hclose(cr) == 0);
    CHECK(http_done(h, -1) == 0);
    peer_expects(peer, "\r\n");
    free(got);
    free(value);
    CHECK(hclose(h) == 0);
    peer_close(peer);
}

static coroutine void detach_in(int h, volatile struct op *op) {
    int rc = http_detach(h, -1);
    op->err = errno;
    op->rc = rc;
    op->done = 1;
}

static void test_detach(void) {
    int h, peer;
    char a[16], b[16];

    /* A server that reads only the request line: detach drains the fields
       it did not read and sends the empty line; the body follows. */
    pair(&h, &peer);
    peer_puts(peer, "POST /x HTTP/1.1\r\nA: b\r\nContent-Length: 4\r\n\r\n"
        "DATAGET");
    CHECK(http_recvrequest(h, a, 16, b, 16, -1) == 0);
    CHECK(http_sendstatus(h, 200, "OK", -1) == 0);
    int u = http_detach(h, now() + 1000);
    CHECK(u >= 0);
    CHECK_ERR(http_recvfield(h, a, 16, b, 16, -1), EBADF);
    CHECK(brecv(u, a, 4, now() + 1000) == 0);
    CHECK(memcmp(a, "DATA", 4) == 0);
    peer_expects(peer, "HTTP/1.1 200 OK\r\n\r\n");
    /* And again on the same stream. */
    h = http_attach(u);
    CHECK(h >= 0);
    peer_puts(peer, " / HTTP/1.1\r\n\r\n");
    CHECK(http_recvrequest(h, a, 16, b, 16, -1) == 0);
    CHECK(strcmp(a, "GET") == 0);
    CHECK_ERR(http_recvfield(h, a, 16, b, 16, -1), EPIPE);
    CHECK(http_done(h, -1) == 0);
    u = http_detach(h, -1);
    CHECK(u >= 0);
    peer_expects(peer, "\r\n");
    CHECK(hclose(u) == 0);
    peer_close(peer);

    /* detach waits for the peer's empty line. */
    pair(&h, &peer);
    volatile struct op op = {0, 99, 0};
    int cr = go(detach_in(h, &op));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(!op.done);
    peer_expects(peer, "\r\n");
    peer_puts(peer, "HTTP/1.1 200 OK\r\nX: y\r\n");
    CHECK(msleep(now() + 20) == 0);
    CHECK(!op.done);
    peer_puts(peer, "\r\nZ");
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(op.done && op.rc >= 0);
    CHECK(brecv(op.rc, a, 1, now() + 1000) == 0 && a[0] == 'Z');
    CHECK(hclose(op.rc) == 0);
    CHECK(hclose(cr) == 0);
    peer_close(peer);

    /* detach cancelled while it drains: ECANCELED, stack closed. */
    pair(&h, &peer);
    op.done = 0;
    cr = go(detach_in(h, &op));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK_ERR(hclose(h), EBADF);
    peer_expects(peer, "\r\n");
    CHECK(peer_sees_close(peer));
    peer_close(peer);

    /* hclose closes the whole stack, dropping held lines. */
    pair(&h, &peer);
    CHECK(http_sendstatus(h, 200, "OK", -1) == 0);
    CHECK(hclose(h) == 0);
    CHECK(peer_sees_close(peer));
    peer_close(peer);
}

/* ---- Our client and server over TCP -------------------------------------- */

/* Answers requests on one connection, with a body naming the resource,
   or (bodies == 0) with none. */
static coroutine void server(int ls, int requests, int bodies) {
    int s = tcp_accept(ls, NULL, now() + 5000);
    CHECK(s >= 0);
    for(int i = 0; i < requests; i++) {
        struct http_storage mem;
        int h = http_attach_mem(s, &mem);
        CHECK(h >= 0);
        char cmd[16], res[64], name[64], value[64];
        CHECK(http_recvrequest(h, cmd, sizeof(cmd), res, sizeof(res),
            now() + 5000) == 0);
        CHECK(strcmp(cmd, "GET") == 0);
        int length = -1;
        for(;;) {
            int rc = http_recvfield(h, name, sizeof(name), value,
                sizeof(value), now() + 5000);
            if(rc < 0) {
                CHECK(errno == EPIPE);
                break;
            }
            if(strcasecmp(name, "content-length") == 0) length = atoi(value);
        }
        CHECK(length == 0);
        char body[32];
        int len = bodies ? snprintf(body, sizeof(body), "resource %s", res) : 0;
        char num[16];
        snprintf(num, sizeof(num), "%d", len);
        CHECK(http_sendstatus(h, 200, "OK", now() + 5000) == 0);
        CHECK(http_sendfield(h, "Content-Length", num, now() + 5000) == 0);
        s = http_detach(h, now() + 5000);
        CHECK(s >= 0);
        if(bodies) CHECK(bsend(s, body, (size_t)len, now() + 5000) == 0);
    }
    CHECK(tcp_close(s, now() + 5000) == 0);
}

/* Keep-alive exchanges between our client and server over TCP, with the
   library's socket options (Nagle's algorithm on). Each response must come
   at once: a head sent apart from its body would wait for a delayed ACK
   (40 ms), and a head the kernel held back for a body that never comes
   would wait 200 ms, so 100 exchanges taking 2 s means one of them
   stalls. */
static void exchanges(int requests, int bodies) {
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int ls = tcp_listen(&addr, 10);
    CHECK(ls >= 0);
    int cr = go(server(ls, requests, bodies));
    CHECK(cr >= 0);
    int s = tcp_connect(&addr, now() + 5000);
    CHECK(s >= 0);
    int64_t start = now();
    for(int i = 0; i < requests; i++) {
        int h = http_attach(s);
        CHECK(h >= 0);
        char res[16];
        snprintf(res, sizeof(res), "/r%d", i);
        CHECK(http_sendrequest(h, "GET", res, now() + 5000) == 0);
        CHECK(http_sendfield(h, "Host", "127.0.0.1", now() + 5000) == 0);
        CHECK(http_sendfield(h, "Content-Length", "0", now() + 5000) == 0);
        CHECK(http_done(h, now() + 5000) == 0);
        char reason[16], name[32], value[32];
        CHECK(http_recvstatus(h, reason, sizeof(reason), now() + 5000) == 200);
        CHECK(strcmp(reason, "OK") == 0);
        CHECK(http_recvfield(h, name, sizeof(name), value, sizeof(value),
            now() + 5000) == 0);
        CHECK(strcmp(name, "Content-Length") == 0);
        int len = atoi(value);
        CHECK_ERR(http_recvfield(h, name, sizeof(name), value, sizeof(value),
            now() + 5000), EPIPE);
        s = http_detach(h, now() + 5000);
        CHECK(s >= 0);
        char body[32], expected[32];
        if(!bodies) {
            CHECK(len == 0);
            continue;
        }
        CHECK(len > 0 && len < (int)sizeof(body));
        CHECK(brecv(s, body, (size_t)len, now() + 5000) == 0);
        snprintf(expected, sizeof(expected), "resource %s", res);
        CHECK((int)strlen(expected) == len && memcmp(body, expected, len) == 0);
    }
    int64_t took = now() - start;
    if(took >= 2000)
        fprintf(stderr, "%d exchanges (bodies %d) took %d ms\n", requests,
            bodies, (int)took);
    CHECK(took < 2000);
    CHECK(tcp_close(s, now() + 5000) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(ls) == 0);
}

static void test_tcp(void) {
    exchanges(100, 1);
    exchanges(100, 0);
}

int main(void) {
    test_attach();
    /* From here on the scheduler's own descriptors (the poller) exist. */
    int fds = count_fds();
    test_send_format();
    test_send_validation();
    test_send_buffering();
    test_recvrequest();
    test_recvstatus();
    test_recvfield();
    test_long_lines();
    test_garbage();
    test_flood();
    test_blocking();
    test_busy_send();
    test_detach();
    test_tcp();
    CHECK(count_fds() == fds);
    return 0;
}
