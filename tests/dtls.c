/*
 * tests/dtls.c: DTLS (sockets.md §19, declared but never shipped by the
 * original; the behaviour tested is ours, as documented in
 * man/dtls_attach_client.3). Covers dtls_attach_client(_mem),
 * dtls_attach_server(_mem), dtls_done and dtls_detach over UDP on
 * loopback: messages of 1 to 16384 bytes (one record, one datagram each),
 * EMSGSIZE for larger ones and for a receive buffer too small (the message
 * dropped, the socket usable), EINVAL for an empty message, gather and
 * scatter lists with empty and NULL-base (skipped) elements, mrecvl with
 * both ends NULL dropping one message and returning its size, storage at
 * every offset 0..7, dtls_done then EPIPE on both sides, detach on both
 * sides and then plain datagrams on the UDP sockets; lost handshake flights
 * (a UDP relay in the test drops the first datagram of all four flights,
 * the server's last one included, which the server then sends again from
 * inside its first mrecv; the handshake completes by retransmission
 * before its deadline); the
 * retransmission timer driven by our waits (a silent peer sees exactly two
 * ClientHellos before a 2.5 s deadline: the first, and the one repeated
 * after OpenSSL's 1 s timer); and every errno: EINVAL (mem NULL, socket
 * closed), EBADF, ENOTSUP, EPROTO (a bytestream below), EFAULT (bad
 * certificate files; a fatal alert from the peer in the handshake),
 * ETIMEDOUT (a silent peer, to our client and to our server; datagrams
 * that are not DTLS are dropped, so a garbage peer also ends at the
 * deadline; deadline 0; dtls_detach's own deadline), ECANCELED, EPIPE,
 * EBUSY (a second receive, a detach, and a send while a receive waits,
 * which the UDP socket below refuses), EBADF for a coroutine blocked in
 * mrecv when the handle is closed;
 * receive timeouts and cancellations do not stick. Real peers: our client
 * against `openssl s_server -dtls` (which does the cookie exchange), our
 * server against `openssl s_client -dtls`, with a certificate made by
 * `openssl req`. No descriptor leaks.
 *
 * Needs the openssl command (apt-get install openssl); fails saying so.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdillimpl.h"
#include "check.h"
#include "peer.h"

#define SOON (now() + 10000)

static char cert[256], key[256], notcert[256], fifo[256], dir[256];

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

static void make_certs(void) {
    peer_require("openssl", "openssl");
    snprintf(dir, sizeof(dir), "%s", peer_dir("dtls"));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(notcert, sizeof(notcert), "%s/notcert.pem", dir);
    snprintf(fifo, sizeof(fifo), "%s/stdin.fifo", dir);
    char *req[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
        "-days", "2", "-subj", "/CN=localhost", NULL};
    CHECK(peer_run(req, NULL, 0, 30000, NULL) == 0);
    FILE *f = fopen(notcert, "w");
    CHECK(f != NULL);
    fputs("not a certificate\n", f);
    CHECK(fclose(f) == 0);
}

struct res {
    int done;
    int rc;
    int err;
    int64_t when;
};

static void res_init(volatile struct res *r) {
    r->done = 0;
    r->rc = 99;
    r->err = 0;
    r->when = 0;
}

static void res_set(volatile struct res *r, int rc) {
    r->err = errno;
    r->rc = rc;
    r->when = now();
    r->done = 1;
}

static void make_addr(struct ipaddr *a, int port) {
    CHECK(ipaddr_local(a, "127.0.0.1", port, 0) == 0);
}

/* A UDP port on 127.0.0.1 that nothing uses right now. */
static int udp_free_port(void) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
    close(s);
    return ntohs(a.sin_port);
}

/* A UDP socket on port local that talks to port remote only. */
static int udp_to(int local, int remote) {
    struct ipaddr l, r;
    make_addr(&l, local);
    make_addr(&r, remote);
    int s = udp_open(&l, &r);
    CHECK(s >= 0);
    return s;
}

static void udp_pair(int u[2]) {
    int p0 = udp_free_port(), p1 = udp_free_port();
    u[0] = udp_to(p0, p1);
    u[1] = udp_to(p1, p0);
}

coroutine static void server_attach(int s, struct dtls_storage *mem,
      int64_t deadline, volatile struct res *r) {
    int h = mem ? dtls_attach_server_mem(s, cert, key, mem, deadline) :
        dtls_attach_server(s, cert, key, deadline);
    res_set(r, h);
}

/* DTLS over the message socket pair u: h[0] client, h[1] server. */
static void dtls_over(int u[2], int h[2], struct dtls_storage *cmem,
      struct dtls_storage *smem, int64_t deadline) {
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, server_attach(u[1], smem, deadline, &r)) == 0);
    h[0] = cmem ? dtls_attach_client_mem(u[0], cmem, deadline) :
        dtls_attach_client(u[0], deadline);
    CHECK(h[0] >= 0);
    CHECK(bundle_wait(b, deadline) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc >= 0);
    h[1] = r.rc;
}

static void dtls_pair(int h[2]) {
    int u[2];
    udp_pair(u);
    dtls_over(u, h, NULL, NULL, SOON);
}

coroutine static void detacher(int h, volatile struct res *r) {
    res_set(r, dtls_detach(h, SOON));
}

/* ---- Messages ------------------------------------------------------------ */

static uint8_t big[16385], got[20000];

static void test_messages(void) {
    int h[2];
    dtls_pair(h);
    for(size_t i = 0; i < sizeof(big); i++) big[i] = (uint8_t)(i * 7 + 3);
    size_t sizes[] = {1, 100, 1000, 1199, 1200, 5000, 16384};
    for(size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        CHECK(msend(h[0], big, sizes[i], SOON) == 0);
        CHECK(mrecv(h[1], got, sizeof(got), SOON) == (ssize_t)sizes[i]);
        CHECK(memcmp(got, big, sizes[i]) == 0);
        CHECK(msend(h[1], big, sizes[i], SOON) == 0);
        CHECK(mrecv(h[0], got, sizeof(got), SOON) == (ssize_t)sizes[i]);
        CHECK(memcmp(got, big, sizes[i]) == 0);
    }
    /* Too big, empty: refused, nothing sent, the socket fine. */
    CHECK_ERR(msend(h[0], big, 16385, SOON), EMSGSIZE);
    CHECK_ERR(msend(h[0], big, 0, SOON), EINVAL);
    struct iolist n2 = {NULL, 3, NULL, 0};
    struct iolist n1 = {big, 3, &n2, 0};
    CHECK_ERR(msendl(h[0], &n1, &n2, SOON), EFAULT);
    /* Gather: three pieces, an empty one among them, one datagram. */
    struct iolist g3 = {"fgh", 3, NULL, 0};
    struct iolist g2 = {NULL, 0, &g3, 0};
    struct iolist g1 = {"abcde", 5, &g2, 0};
    CHECK(msendl(h[0], &g1, &g3, SOON) == 0);
    /* Scatter: 2 bytes, 3 skipped, an empty element, the rest. */
    char x[2], y[10];
    struct iolist s4 = {y, sizeof(y), NULL, 0};
    struct iolist s3 = {x, 0, &s4, 0};
    struct iolist s2 = {NULL, 3, &s3, 0};
    struct iolist s1 = {x, 2, &s2, 0};
    CHECK(mrecvl(h[1], &s1, &s4, SOON) == 8);
    CHECK(memcmp(x, "ab", 2) == 0 && memcmp(y, "fgh", 3) == 0);
    /* A buffer too small: EMSGSIZE, that message gone, the next fine. */
    CHECK(msend(h[0], "too long", 8, SOON) == 0);
    CHECK(msend(h[0], "next", 4, SOON) == 0);
    CHECK_ERR(mrecv(h[1], got, 7, SOON), EMSGSIZE);
    CHECK(mrecv(h[1], got, 7, SOON) == 4);
    CHECK(memcmp(got, "next", 4) == 0);
    /* Both ends NULL: one message dropped, its size returned. */
    CHECK(msend(h[0], "dropped", 7, SOON) == 0);
    CHECK(msend(h[0], "kept", 4, SOON) == 0);
    CHECK(mrecvl(h[1], NULL, NULL, SOON) == 7);
    CHECK(mrecv(h[1], got, sizeof(got), SOON) == 4);
    CHECK(memcmp(got, "kept", 4) == 0);
    /* Front-end and list errors: EINVAL, nothing sticks. */
    CHECK_ERR(mrecvl(h[1], &s1, NULL, SOON), EINVAL);
    struct iolist l2 = {x, 1, NULL, 0};
    struct iolist l1 = {x, 1, &l2, 0};
    struct iolist lend = {x, 1, NULL, 0};
    l2.iol_next = &l1;
    CHECK_ERR(mrecvl(h[1], &l1, &lend, SOON), EINVAL);
    CHECK_ERR(msendl(h[0], &l1, &lend, SOON), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0);
    CHECK(msend(h[0], "ok", 2, SOON) == 0);
    CHECK(mrecv(h[1], got, sizeof(got), SOON) == 2);
    /* Done: the peer gets EPIPE, sticky; the other way still works. */
    CHECK(dtls_done(h[0], SOON) == 0);
    CHECK_ERR(dtls_done(h[0], SOON), EPIPE);
    CHECK_ERR(msend(h[0], "x", 1, SOON), EPIPE);
    CHECK_ERR(mrecv(h[1], got, sizeof(got), SOON), EPIPE);
    CHECK_ERR(mrecv(h[1], got, sizeof(got), SOON), EPIPE);
    CHECK(msend(h[1], "back", 4, SOON) == 0);
    CHECK(mrecv(h[0], got, sizeof(got), SOON) == 4);
    /* Detach: the server has the close_notify, the client waits for its. */
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, detacher(h[0], &r)) == 0);
    int u1 = dtls_detach(h[1], SOON);
    CHECK(u1 >= 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc >= 0);
    int u0 = r.rc;
    CHECK_ERR(msend(h[0], "x", 1, SOON), EBADF);
    /* Plain datagrams on the UDP sockets. */
    CHECK(msend(u0, "plain", 5, SOON) == 0);
    CHECK(mrecv(u1, got, sizeof(got), SOON) == 5);
    CHECK(memcmp(got, "plain", 5) == 0);
    CHECK(msend(u1, "PLAIN", 5, SOON) == 0);
    CHECK(mrecv(u0, got, sizeof(got), SOON) == 5);
    CHECK(hclose(u0) == 0);
    CHECK(hclose(u1) == 0);
}

static void test_mem(void) {
    for(int off = 0; off < 8; off++) {
        char cstore[sizeof(struct dtls_storage) + 8];
        char sstore[sizeof(struct dtls_storage) + 8];
        memset(cstore, 0xAA, sizeof(cstore));
        int u[2], h[2];
        udp_pair(u);
        dtls_over(u, h, (struct dtls_storage *)(cstore + off),
            (struct dtls_storage *)(sstore + off), SOON);
        CHECK(msend(h[0], "mem", 3, SOON) == 0);
        CHECK(mrecv(h[1], got, sizeof(got), SOON) == 3);
        for(int i = 0; i < off; i++) CHECK(cstore[i] == (char)0xAA);
        for(size_t i = off + sizeof(struct dtls_storage); i < sizeof(cstore);
              i++)
            CHECK(cstore[i] == (char)0xAA);
        CHECK(hclose(h[0]) == 0);
        CHECK(hclose(h[1]) == 0);
    }
}

/* ---- Lost flights ------------------------------------------------------- */

/* A UDP relay between a client (on front) and a server (behind back) that
   drops the first datagram of each handshake flight, in each direction. A
   flight is known by the record that opens it: ClientHello (1) and
   ClientKeyExchange (16) from the client, ServerHello (2) and the change
   cipher spec of the last flight from the server, each in the clear
   (epoch 0). So what is dropped does not depend on timing, although a
   flight may be sent several times. Plain sockets: a libdill UDP socket
   refuses to send while a receive waits on it (EBUSY), and each side here
   is sent on by one coroutine while the other waits on it. */
struct relay {
    int front;
    int back;
    struct sockaddr_in client;
    struct sockaddr_in server;
    int have_client;
    int dropped;
    int seen[2][4];    /* flights seen, per direction */
    int nseen[2];
};

/* Whether this datagram opens a flight not seen before in direction dir
   (0: to the server). */
static int first_of_flight(struct relay *r, int dir, const uint8_t *d,
      ssize_t n) {
    if(n < 14 || d[3] != 0 || d[4] != 0) return 0;
    int kind;
    if(d[0] == 20) kind = 20 << 8;
    else if(d[0] == 22) kind = 22 << 8 | d[13];
    else return 0;
    static const int opening[2][2] = {{22 << 8 | 1, 22 << 8 | 16},
        {22 << 8 | 2, 20 << 8}};
    if(kind != opening[dir][0] && kind != opening[dir][1]) return 0;
    for(int i = 0; i < r->nseen[dir]; i++)
        if(r->seen[dir][i] == kind) return 0;
    r->seen[dir][r->nseen[dir]++] = kind;
    return 1;
}

static int raw_udp(int port) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    return s;
}

/* One datagram from fd, waiting with fdin; its sender in *from. */
static ssize_t raw_recv(int fd, void *buf, size_t len,
      struct sockaddr_in *from) {
    for(;;) {
        socklen_t alen = sizeof(*from);
        ssize_t n = recvfrom(fd, buf, len, 0, (struct sockaddr *)from, &alen);
        if(n >= 0) return n;
        if(errno != EAGAIN) return -1;
        if(fdin(fd, -1) < 0) return -1;
    }
}

coroutine static void relay_up(struct relay *r) {
    static uint8_t buf[20000];
    for(;;) {
        struct sockaddr_in from;
        ssize_t n = raw_recv(r->front, buf, sizeof(buf), &from);
        if(n < 0) return;
        r->client = from;
        r->have_client = 1;
        if(first_of_flight(r, 0, buf, n)) {
            r->dropped++;
            continue;
        }
        sendto(r->back, buf, (size_t)n, 0, (struct sockaddr *)&r->server,
            sizeof(r->server));
    }
}

coroutine static void relay_down(struct relay *r) {
    static uint8_t buf[20000];
    for(;;) {
        struct sockaddr_in from;
        ssize_t n = raw_recv(r->back, buf, sizeof(buf), &from);
        if(n < 0) return;
        if(first_of_flight(r, 1, buf, n)) {
            r->dropped++;
            continue;
        }
        if(r->have_client)
            sendto(r->front, buf, (size_t)n, 0, (struct sockaddr *)&r->client,
                sizeof(r->client));
    }
}

/* The server: attach, then receive one message. Its last flight is lost
   once, so the client repeats its own, which this receive answers by
   sending the last flight again. */
coroutine static void server_attach_recv(int s, int64_t deadline,
      volatile struct res *r, volatile struct res *msg) {
    int h = dtls_attach_server(s, cert, key, deadline);
    res_set(r, h);
    if(h < 0) return;
    res_set(msg, (int)mrecv(h, got, sizeof(got), deadline));
}

static void test_lost_flights(void) {
    int pc = udp_free_port(), pf = udp_free_port(), pb = udp_free_port(),
        ps = udp_free_port();
    struct relay r = {0};
    r.front = raw_udp(pf);
    r.back = raw_udp(pb);
    r.server.sin_family = AF_INET;
    r.server.sin_port = htons(ps);
    r.server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int b = bundle();
    CHECK(bundle_go(b, relay_up(&r)) == 0);
    CHECK(bundle_go(b, relay_down(&r)) == 0);
    int64_t deadline = now() + 30000;
    volatile struct res rs, rm;
    res_init(&rs);
    res_init(&rm);
    CHECK(bundle_go(b, server_attach_recv(udp_to(ps, pb), deadline, &rs,
        &rm)) == 0);
    int c = dtls_attach_client(udp_to(pc, pf), deadline);
    CHECK(c >= 0);
    CHECK(rs.done && rs.rc >= 0);
    /* ClientHello, the client's second flight; the server's first flight
       and its last. */
    CHECK(r.dropped == 4);
    CHECK(r.nseen[0] == 2 && r.nseen[1] == 2);
    CHECK(msend(c, "through", 7, SOON) == 0);
    while(!rm.done) CHECK(msleep(now() + 10) == 0);
    CHECK(rm.rc == 7 && memcmp(got, "through", 7) == 0);
    CHECK(now() < deadline);
    CHECK(hclose(c) == 0);
    CHECK(hclose(rs.rc) == 0);
    CHECK(hclose(b) == 0);
    fdclean(r.front);
    fdclean(r.back);
    close(r.front);
    close(r.back);
}

/* A peer that counts what it gets and answers nothing (or, with reply,
   answers each datagram with it). */
struct quiet {
    int s;
    int count;
    const void *reply;
    size_t reply_len;
};

coroutine static void quiet_peer(struct quiet *q) {
    static uint8_t buf[20000];
    for(;;) {
        ssize_t n = mrecv(q->s, buf, sizeof(buf), -1);
        if(n < 0) return;
        q->count++;
        if(q->reply && msend(q->s, q->reply, q->reply_len, -1) < 0) return;
    }
}

static void test_timer(void) {
    int u[2];
    udp_pair(u);
    struct quiet q = {u[1], 0, NULL, 0};
    int b = bundle();
    CHECK(bundle_go(b, quiet_peer(&q)) == 0);
    int64_t deadline = now() + 2500;
    CHECK_ERR(dtls_attach_client(u[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline && now() < deadline + 1000);
    /* The first ClientHello, and its repeat after 1 s (the next would come
       2 s later). */
    CHECK(q.count == 2);
    CHECK(hclose(b) == 0);
    CHECK(hclose(u[1]) == 0);
}

/* ---- Errors -------------------------------------------------------------- */

static void test_attach_errors(void) {
    struct dtls_storage mem;
    int u[2];
    udp_pair(u);
    CHECK_ERR(dtls_attach_client_mem(u[0], NULL, SOON), EINVAL);
    CHECK_ERR(hclose(u[0]), EBADF);
    CHECK_ERR(dtls_attach_server_mem(u[1], cert, key, NULL, SOON), EINVAL);
    CHECK_ERR(hclose(u[1]), EBADF);
    CHECK_ERR(dtls_attach_client(-1, SOON), EBADF);
    CHECK_ERR(dtls_attach_client_mem(12345, &mem, SOON), EBADF);
    CHECK_ERR(dtls_attach_server(12345, cert, key, SOON), EBADF);
    CHECK_ERR(dtls_attach_server_mem(-1, cert, key, &mem, SOON), EBADF);
    CHECK_ERR(dtls_done(-1, SOON), EBADF);
    CHECK_ERR(dtls_detach(12345, SOON), EBADF);
    /* A bytestream is not a message socket. */
    int s[2];
    CHECK(ipc_pair(s) == 0);
    CHECK_ERR(dtls_attach_client(s[0], SOON), EPROTO);
    CHECK_ERR(hclose(s[0]), EBADF);
    CHECK_ERR(dtls_attach_server(s[1], cert, key, SOON), EPROTO);
    CHECK_ERR(hclose(s[1]), EBADF);
    /* Not DTLS. */
    udp_pair(u);
    CHECK_ERR(dtls_done(u[0], SOON), ENOTSUP);
    CHECK_ERR(dtls_detach(u[0], SOON), ENOTSUP);
    CHECK(hclose(u[0]) == 0);
    CHECK(hclose(u[1]) == 0);
    /* Files OpenSSL refuses. */
    const char *bad[][2] = {{notcert, key}, {cert, notcert}, {NULL, key},
        {cert, NULL}, {"tests/dtls.tmp/missing.pem", key}};
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        udp_pair(u);
        CHECK_ERR(dtls_attach_server(u[0], bad[i][0], bad[i][1], SOON),
            EFAULT);
        CHECK_ERR(hclose(u[0]), EBADF);
        CHECK_ERR(dtls_attach_server_mem(u[1], bad[i][0], bad[i][1], &mem,
            SOON), EFAULT);
        CHECK_ERR(hclose(u[1]), EBADF);
    }
}

static void test_handshake_failures(void) {
    /* Our server, a peer that never sends anything. */
    int u[2];
    udp_pair(u);
    int64_t deadline = now() + 300;
    CHECK_ERR(dtls_attach_server(u[1], cert, key, deadline), ETIMEDOUT);
    CHECK(now() >= deadline && now() < deadline + 1000);
    CHECK(hclose(u[0]) == 0);
    /* Deadline 0. */
    udp_pair(u);
    int64_t start = now();
    CHECK_ERR(dtls_attach_client(u[0], 0), ETIMEDOUT);
    CHECK(now() - start < 1000);
    CHECK(hclose(u[1]) == 0);
    /* A peer answering garbage: DTLS drops what is not a record, so the
       handshake goes on until the deadline. */
    udp_pair(u);
    struct quiet q = {u[1], 0, "garbage, not DTLS", 17};
    int b = bundle();
    CHECK(bundle_go(b, quiet_peer(&q)) == 0);
    deadline = now() + 300;
    CHECK_ERR(dtls_attach_client(u[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline && q.count == 1);
    CHECK(hclose(b) == 0);
    CHECK(hclose(u[1]) == 0);
    /* A peer answering with a fatal alert (handshake_failure, in the clear,
       epoch 0): EFAULT at once. */
    static const uint8_t alert[] = {21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 2, 2, 40};
    udp_pair(u);
    struct quiet qa = {u[1], 0, alert, sizeof(alert)};
    b = bundle();
    CHECK(bundle_go(b, quiet_peer(&qa)) == 0);
    start = now();
    CHECK_ERR(dtls_attach_client(u[0], now() + 5000), EFAULT);
    CHECK(now() - start < 1000);
    CHECK(hclose(b) == 0);
    CHECK(hclose(u[1]) == 0);
    /* Cancelled in the handshake. */
    udp_pair(u);
    volatile struct res r;
    res_init(&r);
    int cr = go(server_attach(u[1], NULL, -1, &r));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 50) == 0);
    CHECK(!r.done);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK(hclose(u[0]) == 0);
}

coroutine static void receiver(int h, int64_t deadline, volatile struct res *r) {
    static uint8_t buf[16384];
    res_set(r, (int)mrecv(h, buf, sizeof(buf), deadline));
}

static void test_waits(void) {
    int h[2];
    dtls_pair(h);
    /* A timeout does not stick, nor does cancellation. */
    int64_t deadline = now() + 100;
    CHECK_ERR(mrecv(h[0], got, sizeof(got), deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    volatile struct res r;
    res_init(&r);
    int cr = go(receiver(h[0], -1, &r));
    CHECK(msleep(now() + 20) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK(msend(h[1], "still", 5, SOON) == 0);
    CHECK(mrecv(h[0], got, sizeof(got), SOON) == 5);
    /* EBUSY while a receive waits, for a receive, a detach, and (from
       the UDP socket below, which refuses it) a send. */
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, receiver(h[0], SOON, &r)) == 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK_ERR(mrecv(h[0], got, sizeof(got), SOON), EBUSY);
    CHECK_ERR(dtls_detach(h[0], SOON), EBUSY);
    CHECK_ERR(msend(h[0], "ping", 4, SOON), EBUSY);
    CHECK(msend(h[1], "pong", 4, SOON) == 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(r.rc == 4);
    /* Closed under a blocked receive: EBADF. */
    res_init(&r);
    CHECK(bundle_go(b, receiver(h[0], -1, &r)) == 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(hclose(h[0]) == 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(r.rc == -1 && r.err == EBADF);
    CHECK(hclose(b) == 0);
    CHECK(hclose(h[1]) == 0);
    /* dtls_detach waits for the peer's close_notify until its deadline;
       the stack is closed then. */
    dtls_pair(h);
    deadline = now() + 200;
    CHECK_ERR(dtls_detach(h[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline && now() < deadline + 1000);
    CHECK_ERR(hclose(h[0]), EBADF);
    CHECK_ERR(mrecv(h[1], got, sizeof(got), SOON), EPIPE);
    CHECK(hclose(h[1]) == 0);
}

/* ---- Real peers ---------------------------------------------------------- */

/* Wait until the file at path contains text (a condition, looked at every
   10 ms). */
static void wait_for_text(const char *path, const char *text, int64_t ms) {
    int64_t deadline = now() + ms;
    for(;;) {
        char buf[8192] = {0};
        FILE *f = fopen(path, "r");
        if(f) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            buf[n] = 0;
            fclose(f);
            if(strstr(buf, text)) return;
        }
        CHECK(now() < deadline);
        CHECK(msleep(now() + 10) == 0);
    }
}

static void test_s_server(void) {
    peer_require("openssl", "openssl");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    /* Read-write: opening it neither waits for a reader nor gives EOF. */
    int in = open(fifo, O_RDWR);
    CHECK(in >= 0);
    int port = udp_free_port();
    char log[300], cmd[1024];
    snprintf(log, sizeof(log), "%s/s_server.log", dir);
    snprintf(cmd, sizeof(cmd), "exec openssl s_server -dtls -accept "
        "127.0.0.1:%d -cert %s -key %s < %s", port, cert, key, fifo);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    pid_t pid = peer_start(argv, log);
    wait_for_text(log, "ACCEPT", 10000);
    int u = udp_to(udp_free_port(), port);
    int h = dtls_attach_client(u, SOON);
    CHECK(h >= 0);
    CHECK(msend(h, "hello libdill\n", 14, SOON) == 0);
    wait_for_text(log, "hello libdill\n", 10000);
    /* What s_server reads on its stdin it sends as one record. */
    CHECK(write(in, "pong\n", 5) == 5);
    CHECK(mrecv(h, got, sizeof(got), SOON) == 5);
    CHECK(memcmp(got, "pong\n", 5) == 0);
    /* It answers our close_notify with its own. */
    CHECK(dtls_done(h, SOON) == 0);
    CHECK_ERR(mrecv(h, got, sizeof(got), SOON), EPIPE);
    u = dtls_detach(h, SOON);
    CHECK(u >= 0);
    CHECK(hclose(u) == 0);
    peer_stop(pid);
    close(in);
}

coroutine static void our_server(int u, volatile struct res *r) {
    int h = dtls_attach_server(u, cert, key, SOON);
    if(h < 0) goto fail;
    char buf[100];
    if(mrecv(h, buf, sizeof(buf), SOON) != 5 || memcmp(buf, "ping\n", 5))
        goto fail;
    if(msend(h, "pong from libdill\n", 18, SOON) < 0) goto fail;
    if(dtls_done(h, SOON) < 0) goto fail;
    if(mrecv(h, buf, sizeof(buf), SOON) >= 0 || errno != EPIPE) goto fail;
    u = dtls_detach(h, SOON);
    if(u < 0) goto fail;
    hclose(u);
    res_set(r, 0);
    return;
fail:
    res_set(r, -1);
}

static void test_s_client(void) {
    peer_require("openssl", "openssl");
    int ps = udp_free_port(), pc = udp_free_port();
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, our_server(udp_to(ps, pc), &r)) == 0);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "printf 'ping\\n' | exec openssl s_client "
        "-dtls -connect 127.0.0.1:%d -bind 127.0.0.1:%d -quiet", ps, pc);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char out[256], log[300];
    snprintf(log, sizeof(log), "%s/s_client.log", dir);
    int status = peer_run(argv, out, sizeof(out), 20000, log);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc == 0);
    CHECK(status == 0);
    CHECK(strcmp(out, "pong from libdill\n") == 0);
}

int main(void) {
    make_certs();
    int h[2];
    dtls_pair(h);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
    int fds = count_fds();
    test_messages();
    test_mem();
    test_lost_flights();
    test_timer();
    CHECK(count_fds() == fds);
    test_attach_errors();
    test_handshake_failures();
    test_waits();
    CHECK(count_fds() == fds);
    test_s_server();
    test_s_client();
    CHECK(count_fds() == fds);
    return 0;
}
