/*
 * tests/tcp.c: TCP (sockets.md §8, with §3 for connections, §6 socket
 * set-up, §20 items 2-9, §21 on the drain loop). Covers every function and
 * its errno: tcp_listen(_mem) (EINVAL, EAFNOSUPPORT, EADDRINUSE,
 * EADDRNOTAVAIL, EACCES, the ephemeral port written back, storage at every
 * alignment), tcp_accept(_mem) (peer address, deadlines, EBADF, ENOTSUP,
 * EINVAL), tcp_connect(_mem) with each errno produced for real
 * (ECONNREFUSED, EINVAL, EMFILE under a lowered RLIMIT_NOFILE, ECANCELED,
 * deadline 0, and in a network namespace of its own ETIMEDOUT at a 500 ms
 * deadline through a DROP rule, ENETUNREACH, EHOSTUNREACH through a REJECT
 * rule), tcp_done, tcp_close (orderly, ETIMEDOUT against an idle peer and
 * against a peer that never stops sending, ECONNRESET after a failure, on
 * a listener), tcp_fromfd and tcp_listener_fromfd (every kind of wrong fd,
 * the caller's number consumed), the socket options of §6, IPv6 and
 * IPv4-mapped peers, read-ahead and skipping, sticky errors (a peer reset
 * mid-transfer, a brecv deadline expiring mid-message, a malformed iolist
 * found by the layer), EBUSY, SIGPIPE never raised, 100 MB each way at once
 * checked byte for byte, 1,000 concurrent connections on one thread,
 * cancellation of a coroutine blocked in each blocking call, a handle
 * closed under a blocked call (the listener's fd number then reused by
 * working sockets), and no fd leaked by any test.
 *
 * The network-namespace part needs root (CI runs as root) and the ip
 * (iproute2) and iptables commands; without them the test fails saying
 * so. Its iptables rules only ever exist inside that namespace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- Helpers ------------------------------------------------------------ */

/* What a coroutine's call returned. volatile: the launcher reads the
   fields after blocking calls while the coroutine writes them. */
struct op {
    int done;
    int rc;
    int err;
    int64_t when;
};

static void op_init(volatile struct op *op) {
    op->done = 0;
    op->rc = 99;
    op->err = 0;
    op->when = 0;
}

static void op_finish(volatile struct op *op, int rc) {
    op->err = errno;
    op->rc = rc;
    op->when = now();
    op->done = 1;
}

static void make_addr(struct ipaddr *a, const char *ip, int port) {
    memset(a, 0, sizeof(*a));
    if(strchr(ip, ':')) {
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons((uint16_t)port);
        CHECK(inet_pton(AF_INET6, ip, &sa.sin6_addr) == 1);
        memcpy(a, &sa, sizeof(sa));
    } else {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        CHECK(inet_pton(AF_INET, ip, &sa.sin_addr) == 1);
        memcpy(a, &sa, sizeof(sa));
    }
}

static int addr_port(const struct ipaddr *a) {
    struct sockaddr_in sa;
    memcpy(&sa, a, sizeof(sa));
    return ntohs(sa.sin_port);
}

static int addr_family(const struct ipaddr *a) {
    struct sockaddr sa;
    memcpy(&sa, a, sizeof(sa));
    return sa.sa_family;
}

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

/* The number the next socket() will get. */
static int lowest_free_fd(void) {
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    close(fd);
    return fd;
}

/* The local port of OS socket fd, or -1 if fd is not a bound socket. */
static int fd_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if(getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* The remote port of OS socket fd, or -1 if it is not connected. */
static int fd_peer_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if(getpeername(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static const struct sockaddr *sa_of(const struct ipaddr *a) {
    return (const struct sockaddr *)a;
}

static int is_open(int fd) {
    return fcntl(fd, F_GETFD) >= 0;
}

/* A listener on 127.0.0.1 with a kernel-chosen port, stored in a. */
static int listener(struct ipaddr *a, int backlog) {
    make_addr(a, "127.0.0.1", 0);
    int ls = tcp_listen(a, backlog);
    CHECK(ls >= 0);
    CHECK(addr_port(a) > 0);
    return ls;
}

/* A connected pair of TCP handles over loopback. */
static void tcp_pair(int *client, int *server) {
    struct ipaddr a;
    int ls = listener(&a, 10);
    *client = tcp_connect(&a, now() + 5000);
    CHECK(*client >= 0);
    *server = tcp_accept(ls, NULL, now() + 5000);
    CHECK(*server >= 0);
    CHECK(hclose(ls) == 0);
}

/* A raw blocking client socket connected to a. */
static int raw_connect(const struct ipaddr *a) {
    int fd = socket(addr_family(a), SOCK_STREAM, 0);
    CHECK(fd >= 0);
    socklen_t len = addr_family(a) == AF_INET ? sizeof(struct sockaddr_in) :
        sizeof(struct sockaddr_in6);
    CHECK(connect(fd, sa_of(a), len) == 0);
    return fd;
}

/* §6: O_NONBLOCK, SO_REUSEADDR, and no TCP_NODELAY. */
static void check_setup(int fd) {
    int flags = fcntl(fd, F_GETFL);
    CHECK(flags >= 0 && (flags & O_NONBLOCK));
    int val = 0;
    socklen_t len = sizeof(val);
    CHECK(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &val, &len) == 0);
    CHECK(val == 1);
    len = sizeof(val);
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &val, &len) == 0);
    CHECK(val == 0);
}

coroutine static void do_accept(int ls, int64_t deadline,
      volatile struct op *op) {
    int rc = tcp_accept(ls, NULL, deadline);
    op_finish(op, rc);
}

coroutine static void do_connect(const struct ipaddr *a, int64_t deadline,
      volatile struct op *op) {
    int rc = tcp_connect(a, deadline);
    op_finish(op, rc);
}

coroutine static void do_brecv(int s, void *buf, size_t len, int64_t deadline,
      volatile struct op *op) {
    int rc = brecv(s, buf, len, deadline);
    op_finish(op, rc);
}

coroutine static void do_bsend(int s, const void *buf, size_t len,
      int64_t deadline, volatile struct op *op) {
    int rc = bsend(s, buf, len, deadline);
    op_finish(op, rc);
}

coroutine static void do_tcp_close(int s, int64_t deadline,
      volatile struct op *op) {
    int rc = tcp_close(s, deadline);
    op_finish(op, rc);
}

/* Run until the coroutine behind bundle b has finished, then close b. */
static void join(int b) {
    CHECK(bundle_wait(b, now() + 10000) == 0);
    CHECK(hclose(b) == 0);
}

/* ---- Listening ---------------------------------------------------------- */

static void test_listen(void) {
    struct ipaddr a;
    struct tcp_listener_storage mem;
    CHECK_ERR(tcp_listen(NULL, 10), EINVAL);
    CHECK_ERR(tcp_listen_mem(NULL, 10, &mem), EINVAL);
    make_addr(&a, "127.0.0.1", 0);
    CHECK_ERR(tcp_listen_mem(&a, 10, NULL), EINVAL);
    /* An address never set: socket() has no family to use. */
    memset(&a, 0, sizeof(a));
    CHECK_ERR(tcp_listen(&a, 10), EAFNOSUPPORT);
    CHECK_ERR(tcp_listen_mem(&a, 10, &mem), EAFNOSUPPORT);

    /* Port 0: the kernel's choice is written back, and it works. */
    int f = lowest_free_fd();
    int ls = listener(&a, 10);
    CHECK(fd_port(f) == addr_port(&a));
    check_setup(f);
    int val = 0;
    socklen_t len = sizeof(val);
    CHECK(getsockopt(f, SOL_SOCKET, SO_ACCEPTCONN, &val, &len) == 0);
    CHECK(val == 1);
    /* A second listener on the port: SO_REUSEADDR does not allow it. */
    CHECK_ERR(tcp_listen(&a, 10), EADDRINUSE);
    /* 192.0.2.1 (TEST-NET-1) is not an address of this machine. */
    struct ipaddr b;
    make_addr(&b, "192.0.2.1", 0);
    CHECK_ERR(tcp_listen(&b, 10), EADDRNOTAVAIL);

    /* A listener is not a bytestream, nor a connection. */
    char c = 0;
    CHECK(hquery(ls, bsock_type) == NULL && errno == ENOTSUP);
    CHECK_ERR(bsend(ls, &c, 1, -1), ENOTSUP);
    CHECK_ERR(brecv(ls, &c, 1, -1), ENOTSUP);
    CHECK_ERR(msend(ls, &c, 1, -1), ENOTSUP);
    CHECK_ERR(tcp_done(ls, -1), ENOTSUP);

    /* tcp_close of a listener is hclose. */
    CHECK(tcp_close(ls, -1) == 0);
    CHECK(!is_open(f));
    CHECK_ERR(hclose(ls), EBADF);
    CHECK_ERR(tcp_close(ls, -1), EBADF);

    /* The port is free again at once. */
    ls = tcp_listen(&a, 10);
    CHECK(ls >= 0);
    CHECK(hclose(ls) == 0);

    /* The wildcard address accepts loopback connections. */
    make_addr(&a, "0.0.0.0", 0);
    ls = tcp_listen(&a, 10);
    CHECK(ls >= 0);
    int port = addr_port(&a);
    make_addr(&b, "127.0.0.1", port);
    int s = tcp_connect(&b, now() + 5000);
    CHECK(s >= 0);
    int t = tcp_accept(ls, NULL, now() + 5000);
    CHECK(t >= 0);
    CHECK(hclose(s) == 0);
    CHECK(hclose(t) == 0);
    CHECK(hclose(ls) == 0);

    /* Caller storage at every alignment, in a buffer of exactly the size
       (AddressSanitizer reports any byte written past it). */
    for(int off = 0; off < 8; off++) {
        char *raw = malloc(off + sizeof(struct tcp_listener_storage));
        CHECK(raw != NULL);
        struct tcp_listener_storage *m = (void *)(raw + off);
        make_addr(&a, "127.0.0.1", 0);
        ls = tcp_listen_mem(&a, 10, m);
        CHECK(ls >= 0);
        s = tcp_connect(&a, now() + 5000);
        CHECK(s >= 0);
        t = tcp_accept(ls, NULL, now() + 5000);
        CHECK(t >= 0);
        CHECK(bsend(s, "abc", 3, -1) == 0);
        char buf[3];
        CHECK(brecv(t, buf, 3, now() + 5000) == 0);
        CHECK(memcmp(buf, "abc", 3) == 0);
        CHECK(hclose(s) == 0);
        CHECK(hclose(t) == 0);
        CHECK(tcp_close(ls, 0) == 0);
        free(raw);
    }
}

/* ---- Accepting ---------------------------------------------------------- */

static void test_accept(void) {
    struct ipaddr a, peer;
    struct tcp_storage mem;
    int ls = listener(&a, 10);
    CHECK_ERR(tcp_accept_mem(ls, NULL, NULL, -1), EINVAL);
    CHECK_ERR(tcp_accept(-1, NULL, -1), EBADF);
    CHECK_ERR(tcp_accept(12345, NULL, -1), EBADF);
    CHECK_ERR(tcp_accept_mem(12345, NULL, &mem, -1), EBADF);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(tcp_accept(ch[0], NULL, -1), ENOTSUP);
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);

    /* Nothing pending: deadline 0 fails at once, a deadline when due. */
    int64_t t0 = now();
    CHECK_ERR(tcp_accept(ls, NULL, 0), ETIMEDOUT);
    CHECK_ERR(tcp_accept(ls, NULL, t0 - 1000), ETIMEDOUT);
    CHECK(now() - t0 < 50);
    t0 = now();
    CHECK_ERR(tcp_accept(ls, &peer, t0 + 60), ETIMEDOUT);
    int64_t took = now() - t0;
    CHECK(took >= 60 && took < 400);

    /* The peer's address, exactly what the client's getsockname says. */
    int raw = raw_connect(&a);
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    CHECK(getsockname(raw, (struct sockaddr *)&local, &len) == 0);
    memset(&peer, 0x55, sizeof(peer));
    int f = lowest_free_fd();
    int s = tcp_accept(ls, &peer, 0); /* pending: deadline 0 is enough */
    CHECK(s >= 0);
    CHECK(fd_port(f) == addr_port(&a));
    check_setup(f);
    CHECK(addr_family(&peer) == AF_INET);
    CHECK(addr_port(&peer) == ntohs(local.sin_port));
    struct sockaddr_in got;
    memcpy(&got, &peer, sizeof(got));
    CHECK(got.sin_addr.s_addr == local.sin_addr.s_addr);
    /* The rest of the 32 bytes is cleared. */
    for(size_t i = sizeof(struct sockaddr_in); i < sizeof(peer); i++)
        CHECK(((unsigned char *)&peer)[i] == 0);
    CHECK(write(raw, "ping", 4) == 4);
    char buf[4];
    CHECK(brecv(s, buf, 4, now() + 5000) == 0);
    CHECK(memcmp(buf, "ping", 4) == 0);
    /* An accepted connection is not a listener. */
    CHECK_ERR(tcp_accept(s, NULL, 0), ENOTSUP);
    CHECK(hclose(s) == 0);
    close(raw);

    /* A blocked accept wakes for a connection made later. */
    volatile struct op op;
    op_init(&op);
    int cr = go(do_accept(ls, now() + 5000, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    int c = tcp_connect(&a, now() + 5000);
    CHECK(c >= 0);
    join(cr);
    CHECK(op.rc >= 0);
    CHECK(bsend(op.rc, "x", 1, -1) == 0);
    CHECK(brecv(c, buf, 1, now() + 5000) == 0 && buf[0] == 'x');
    CHECK(hclose(op.rc) == 0);
    CHECK(hclose(c) == 0);

    /* _mem at every alignment, exactly sized. */
    for(int off = 0; off < 8; off++) {
        char *m = malloc(off + sizeof(struct tcp_storage));
        CHECK(m != NULL);
        c = tcp_connect(&a, now() + 5000);
        CHECK(c >= 0);
        s = tcp_accept_mem(ls, NULL, (void *)(m + off), now() + 5000);
        CHECK(s >= 0);
        CHECK(bsend(c, "0123456789", 10, -1) == 0);
        char b10[10];
        CHECK(brecv(s, b10, 5, now() + 5000) == 0);
        CHECK(brecv(s, b10 + 5, 5, now() + 5000) == 0);
        CHECK(memcmp(b10, "0123456789", 10) == 0);
        CHECK(tcp_done(s, -1) == 0);
        CHECK(brecv(c, b10, 1, now() + 5000) == -1 && errno == EPIPE);
        CHECK(tcp_close(c, now() + 5000) == 0);
        CHECK(tcp_close(s, now() + 5000) == 0);
        free(m);
    }
    CHECK(hclose(ls) == 0);
    CHECK_ERR(tcp_accept(ls, NULL, 0), EBADF);
}

/* ---- Connecting --------------------------------------------------------- */

static void test_connect(void) {
    struct ipaddr a;
    struct tcp_storage mem;
    CHECK_ERR(tcp_connect(NULL, -1), EINVAL);
    CHECK_ERR(tcp_connect_mem(NULL, &mem, -1), EINVAL);
    memset(&a, 0, sizeof(a));
    CHECK_ERR(tcp_connect(&a, -1), EINVAL);
    CHECK_ERR(tcp_connect_mem(&a, &mem, -1), EINVAL);
    /* A family that is not IP. */
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    memcpy(&a, &sa, sizeof(sa));
    CHECK_ERR(tcp_connect(&a, -1), EINVAL);
    make_addr(&a, "127.0.0.1", 80);
    CHECK_ERR(tcp_connect_mem(&a, NULL, -1), EINVAL);

    /* A port bound by nobody who listens: the kernel answers RST. The
       bound socket keeps anyone from listening there meanwhile. */
    int closed = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(closed >= 0);
    make_addr(&a, "127.0.0.1", 0);
    CHECK(bind(closed, sa_of(&a), sizeof(struct sockaddr_in)) ==
        0);
    make_addr(&a, "127.0.0.1", fd_port(closed));
    int fds = count_fds();
    CHECK_ERR(tcp_connect(&a, now() + 5000), ECONNREFUSED);
    CHECK_ERR(tcp_connect(&a, -1), ECONNREFUSED);
    CHECK_ERR(tcp_connect_mem(&a, &mem, -1), ECONNREFUSED);
    CHECK(count_fds() == fds);
    close(closed);

    /* Success, with each kind of deadline; the socket is set up per §6. */
    int ls = listener(&a, 64);
    int64_t deadlines[] = {-1, now() + 5000, 0, now() - 1000};
    for(int i = 0; i < 4; i++) {
        int f = lowest_free_fd();
        int c = tcp_connect(&a, deadlines[i]);
        /* Over loopback the handshake is over when connect() returns, and
           a ready socket wins over a deadline that has passed. */
        CHECK(c >= 0);
        check_setup(f);
        int s = tcp_accept(ls, NULL, now() + 5000);
        CHECK(s >= 0);
        CHECK(bsend(c, "hello", 5, -1) == 0);
        char buf[5];
        CHECK(brecv(s, buf, 5, now() + 5000) == 0);
        CHECK(memcmp(buf, "hello", 5) == 0);
        CHECK(hclose(s) == 0);
        CHECK(hclose(c) == 0);
    }
    /* _mem at every alignment, exactly sized. */
    for(int off = 0; off < 8; off++) {
        char *m = malloc(off + sizeof(struct tcp_storage));
        CHECK(m != NULL);
        int c = tcp_connect_mem(&a, (void *)(m + off), now() + 5000);
        CHECK(c >= 0);
        int s = tcp_accept(ls, NULL, now() + 5000);
        CHECK(s >= 0);
        CHECK(bsend(s, "hey", 3, -1) == 0);
        char buf[3];
        CHECK(brecv(c, buf, 3, now() + 5000) == 0);
        CHECK(memcmp(buf, "hey", 3) == 0);
        CHECK(hclose(s) == 0);
        CHECK(hclose(c) == 0);
        free(m);
    }
    CHECK(hclose(ls) == 0);

    /* A connection that cannot complete: a listener with backlog 0 holds
       one connection in its queue and drops the SYNs of later ones, so
       connect() stays in progress. */
    ls = listener(&a, 0);
    int first = tcp_connect(&a, now() + 5000);
    CHECK(first >= 0);
    fds = count_fds();
    int64_t t0 = now();
    CHECK_ERR(tcp_connect(&a, t0 + 100), ETIMEDOUT);
    int64_t took = now() - t0;
    CHECK(took >= 100 && took < 500);
    t0 = now();
    CHECK_ERR(tcp_connect(&a, 0), ETIMEDOUT);
    CHECK(now() - t0 < 50);
    CHECK(count_fds() == fds);
    CHECK(hclose(first) == 0);
    CHECK(hclose(ls) == 0);
}

/* ---- Adopting OS sockets ------------------------------------------------ */

static void test_fromfd(void) {
    struct tcp_storage mem;
    struct tcp_listener_storage lmem;
    CHECK_ERR(tcp_fromfd(-1), EINVAL);
    CHECK_ERR(tcp_fromfd_mem(-1, &mem), EINVAL);
    CHECK_ERR(tcp_listener_fromfd(-1), EINVAL);
    CHECK_ERR(tcp_listener_fromfd_mem(-1, &lmem), EINVAL);

    /* Not a socket, not open: the system's errno; the fd stays ours. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_ERR(tcp_fromfd(p[0]), ENOTSOCK);
    CHECK_ERR(tcp_listener_fromfd(p[0]), ENOTSOCK);
    CHECK(is_open(p[0]));
    close(p[0]);
    close(p[1]);
    CHECK_ERR(tcp_fromfd(p[0]), EBADF);
    CHECK_ERR(tcp_fromfd_mem(p[0], &mem), EBADF);
    CHECK_ERR(tcp_listener_fromfd(p[0]), EBADF);

    /* The wrong kind of socket: EINVAL, the fd stays ours. */
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(u >= 0);
    CHECK_ERR(tcp_fromfd(u), EINVAL);
    CHECK_ERR(tcp_listener_fromfd(u), EINVAL);
    CHECK(is_open(u));
    close(u);
    int sp[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
    CHECK_ERR(tcp_fromfd(sp[0]), EINVAL);
    CHECK_ERR(tcp_fromfd_mem(sp[0], &mem), EINVAL);
    CHECK(is_open(sp[0]));
    close(sp[0]);
    close(sp[1]);

    struct ipaddr a;
    make_addr(&a, "127.0.0.1", 0);
    int rawl = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(rawl >= 0);
    CHECK(bind(rawl, sa_of(&a), sizeof(struct sockaddr_in)) ==
        0);
    CHECK(listen(rawl, 10) == 0);
    make_addr(&a, "127.0.0.1", fd_port(rawl));
    CHECK_ERR(tcp_fromfd(rawl), EINVAL);
    CHECK_ERR(tcp_fromfd_mem(rawl, NULL), EINVAL);
    CHECK_ERR(tcp_listener_fromfd_mem(rawl, NULL), EINVAL);
    CHECK(is_open(rawl));
    int rawc = raw_connect(&a);
    CHECK_ERR(tcp_listener_fromfd(rawc), EINVAL);
    CHECK_ERR(tcp_listener_fromfd_mem(rawc, &lmem), EINVAL);
    CHECK(is_open(rawc));

    /* Adopted: the caller's numbers are closed, the handles work, and the
       copies are set up per §6. */
    int f = lowest_free_fd();
    int ls = tcp_listener_fromfd(rawl);
    CHECK(ls >= 0);
    CHECK(!is_open(rawl));
    CHECK(fd_port(f) == addr_port(&a));
    check_setup(f);
    f = lowest_free_fd();
    int c = tcp_fromfd(rawc);
    CHECK(c >= 0);
    CHECK(!is_open(rawc));
    CHECK(fd_port(f) > 0);
    check_setup(f);
    int s = tcp_accept(ls, NULL, now() + 5000);
    CHECK(s >= 0);
    CHECK(bsend(c, "adopted", 7, -1) == 0);
    char buf[7];
    CHECK(brecv(s, buf, 7, now() + 5000) == 0);
    CHECK(memcmp(buf, "adopted", 7) == 0);
    CHECK(tcp_done(c, -1) == 0);
    CHECK(tcp_done(s, -1) == 0);
    CHECK(tcp_close(c, now() + 5000) == 0);
    CHECK(tcp_close(s, now() + 5000) == 0);
    CHECK(tcp_close(ls, -1) == 0);

    /* The _mem variants, at odd addresses. */
    char *lraw = malloc(1 + sizeof(struct tcp_listener_storage));
    char *craw = malloc(3 + sizeof(struct tcp_storage));
    CHECK(lraw && craw);
    make_addr(&a, "127.0.0.1", 0);
    rawl = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(rawl >= 0);
    CHECK(bind(rawl, sa_of(&a), sizeof(struct sockaddr_in)) ==
        0);
    CHECK(listen(rawl, 10) == 0);
    make_addr(&a, "127.0.0.1", fd_port(rawl));
    ls = tcp_listener_fromfd_mem(rawl, (void *)(lraw + 1));
    CHECK(ls >= 0);
    rawc = raw_connect(&a);
    c = tcp_fromfd_mem(rawc, (void *)(craw + 3));
    CHECK(c >= 0);
    s = tcp_accept(ls, NULL, now() + 5000);
    CHECK(s >= 0);
    CHECK(bsend(s, "mem", 3, -1) == 0);
    CHECK(brecv(c, buf, 3, now() + 5000) == 0);
    CHECK(memcmp(buf, "mem", 3) == 0);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
    CHECK(hclose(ls) == 0);
    free(lraw);
    free(craw);
}

/* ---- Data path ---------------------------------------------------------- */

static void test_data(void) {
    int c, s;
    tcp_pair(&c, &s);
    char buf[6000];
    char big[6000];
    for(size_t i = 0; i < sizeof(big); i++) big[i] = (char)(i * 7 + 3);

    /* The handle is a bytestream and nothing else. */
    CHECK(hquery(c, bsock_type) != NULL);
    CHECK(hquery(c, msock_type) == NULL && errno == ENOTSUP);
    CHECK_ERR(msend(c, "x", 1, -1), ENOTSUP);
    /* Zero bytes: nothing to do. */
    CHECK(bsend(c, NULL, 0, 0) == 0);
    CHECK(brecv(s, NULL, 0, 0) == 0);
    /* Front-end checks leave the socket as it was. */
    struct iolist e1 = {buf, 1, NULL, 0};
    CHECK_ERR(brecvl(s, NULL, NULL, -1), EINVAL);
    CHECK_ERR(brecvl(s, &e1, NULL, -1), EINVAL);
    CHECK_ERR(bsendl(c, NULL, &e1, -1), EINVAL);

    /* Small reads served from the read-ahead, a large one straight. */
    CHECK(bsend(c, big, 6000, -1) == 0);
    CHECK(brecv(s, buf, 1, now() + 5000) == 0);
    CHECK(brecv(s, buf + 1, 10, now() + 5000) == 0);
    CHECK(brecv(s, buf + 11, 1989, now() + 5000) == 0);
    CHECK(brecv(s, buf + 2000, 4000, now() + 5000) == 0);
    CHECK(memcmp(buf, big, 6000) == 0);

    /* Skipping with a NULL buffer, small and large, and inside a list. */
    CHECK(bsend(c, big, 6000, -1) == 0);
    CHECK(brecv(s, NULL, 3, now() + 5000) == 0);
    CHECK(brecv(s, buf, 7, now() + 5000) == 0);
    CHECK(memcmp(buf, big + 3, 7) == 0);
    CHECK(brecv(s, NULL, 4000, now() + 5000) == 0);
    struct iolist r3 = {buf + 10, 1480, NULL, 0};
    struct iolist r2 = {NULL, 500, &r3, 0};
    struct iolist r1 = {buf, 10, &r2, 0};
    CHECK(brecvl(s, &r1, &r3, now() + 5000) == 0);
    CHECK(memcmp(buf, big + 4010, 10) == 0);
    CHECK(memcmp(buf + 10, big + 4520, 1480) == 0);
    CHECK(r1.iol_rsvd == 0 && r2.iol_rsvd == 0 && r3.iol_rsvd == 0);

    /* Gather on send, with an empty element. */
    struct iolist s3 = {big + 100, 900, NULL, 0};
    struct iolist s2 = {NULL, 0, &s3, 0};
    struct iolist s1 = {big, 100, &s2, 0};
    CHECK(bsendl(c, &s1, &s3, -1) == 0);
    CHECK(brecv(s, buf, 1000, now() + 5000) == 0);
    CHECK(memcmp(buf, big, 1000) == 0);

    /* hown: the connection moves to a new number. */
    int moved = hown(c);
    CHECK(moved >= 0 && moved != c);
    CHECK_ERR(bsend(c, "x", 1, -1), EBADF);
    c = moved;
    CHECK(bsend(c, "y", 1, -1) == 0);
    CHECK(brecv(s, buf, 1, now() + 5000) == 0 && buf[0] == 'y');

    /* Two receivers, two senders: the second gets EBUSY, nothing else
       changes. */
    volatile struct op op;
    op_init(&op);
    int cr = go(do_brecv(s, buf, 4, now() + 5000, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK_ERR(brecv(s, buf + 100, 1, 0), EBUSY);
    CHECK(bsend(c, "abcd", 4, -1) == 0);
    join(cr);
    CHECK(op.rc == 0 && memcmp(buf, "abcd", 4) == 0);
    CHECK(bsend(c, "e", 1, -1) == 0);
    CHECK(brecv(s, buf, 1, now() + 5000) == 0 && buf[0] == 'e');

    /* A peer that does not read: a large send waits; meanwhile another
       send is refused and receiving on the same handle works. */
    size_t huge = 64 << 20;
    char *hbuf = calloc(1, huge);
    CHECK(hbuf != NULL);
    op_init(&op);
    cr = go(do_bsend(c, hbuf, huge, now() + 20000, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK_ERR(bsend(c, "z", 1, 0), EBUSY);
    CHECK(bsend(s, "back", 4, -1) == 0);
    CHECK(brecv(c, buf, 4, now() + 5000) == 0);
    CHECK(memcmp(buf, "back", 4) == 0);
    CHECK(brecv(s, NULL, huge, now() + 20000) == 0);
    join(cr);
    CHECK(op.rc == 0);
    free(hbuf);

    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
}

/* ---- Done and close ----------------------------------------------------- */

/* Sends forever on a blocking socket until the connection breaks. */
static void *flood(void *arg) {
    int fd = *(int *)arg;
    static char chunk[65536];
    while(send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) >= 0) {}
    close(fd);
    return NULL;
}

static void test_done_close(void) {
    int c, s;
    char buf[16];

    CHECK_ERR(tcp_done(-1, -1), EBADF);
    CHECK_ERR(tcp_close(-1, -1), EBADF);
    CHECK_ERR(tcp_close(54321, -1), EBADF);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(tcp_done(ch[0], -1), ENOTSUP);
    CHECK_ERR(tcp_close(ch[0], -1), ENOTSUP);
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);

    /* done: our sends stop, the peer reads our data then EPIPE for ever,
       and the other direction keeps working. */
    tcp_pair(&c, &s);
    CHECK(bsend(c, "last", 4, -1) == 0);
    CHECK(tcp_done(c, 0) == 0);
    CHECK_ERR(tcp_done(c, -1), EPIPE);
    CHECK_ERR(bsend(c, "x", 1, -1), EPIPE);
    CHECK(brecv(s, buf, 4, now() + 5000) == 0);
    CHECK(memcmp(buf, "last", 4) == 0);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), EPIPE);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), EPIPE);
    CHECK(bsend(s, "reply", 5, -1) == 0);
    CHECK(brecv(c, buf, 5, now() + 5000) == 0);
    CHECK(memcmp(buf, "reply", 5) == 0);
    /* Orderly close on both sides: s has seen c's FIN, so it finishes
       with deadline 0; c then gets s's FIN. */
    CHECK(tcp_close(s, 0) == 0);
    CHECK(tcp_close(c, now() + 5000) == 0);
    CHECK_ERR(hclose(s), EBADF);
    CHECK_ERR(hclose(c), EBADF);

    /* tcp_close drains and discards what the peer still sends. */
    tcp_pair(&c, &s);
    CHECK(bsend(s, "unread data", 11, -1) == 0);
    CHECK(brecv(c, buf, 2, now() + 5000) == 0); /* rest in read-ahead */
    volatile struct op op;
    op_init(&op);
    int cr = go(do_tcp_close(c, now() + 5000, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), EPIPE);
    CHECK(bsend(s, "more", 4, -1) == 0);
    CHECK(tcp_close(s, now() + 5000) == 0);
    join(cr);
    CHECK(op.rc == 0);

    /* An idle peer: ETIMEDOUT at the deadline, and the socket is closed
       anyway. The peer gets our FIN first, then the reset. */
    tcp_pair(&c, &s);
    int64_t t0 = now();
    CHECK_ERR(tcp_close(c, t0 + 80), ETIMEDOUT);
    int64_t took = now() - t0;
    CHECK(took >= 80 && took < 500);
    CHECK_ERR(hclose(c), EBADF);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), EPIPE);
    CHECK_ERR(bsend(s, "x", 1, -1), ECONNRESET);
    CHECK_ERR(tcp_close(s, now() + 5000), ECONNRESET);
    CHECK_ERR(hclose(s), EBADF);

    /* Deadline 0 against an idle peer. */
    tcp_pair(&c, &s);
    t0 = now();
    CHECK_ERR(tcp_close(c, 0), ETIMEDOUT);
    CHECK(now() - t0 < 50);
    CHECK(hclose(s) == 0);

    /* A peer that never stops sending: the drain sees data on every
       pass, and still stops at its deadline (§21). */
    struct ipaddr a;
    int ls = listener(&a, 10);
    int raw = raw_connect(&a);
    s = tcp_accept(ls, NULL, now() + 5000);
    CHECK(s >= 0);
    CHECK(hclose(ls) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, flood, &raw) == 0);
    CHECK(brecv(s, NULL, 1 << 20, now() + 5000) == 0); /* it is flowing */
    t0 = now();
    CHECK_ERR(tcp_close(s, t0 + 300), ETIMEDOUT);
    took = now() - t0;
    CHECK(took >= 300 && took < 800);
    /* Our reset stops the flood. */
    CHECK(pthread_join(th, NULL) == 0);

    /* A failed direction: tcp_close says ECONNRESET and closes anyway. */
    tcp_pair(&c, &s);
    CHECK_ERR(brecv(c, buf, 1, 0), ETIMEDOUT);
    CHECK_ERR(tcp_close(c, now() + 5000), ECONNRESET);
    CHECK_ERR(hclose(c), EBADF);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), ECONNRESET);
    CHECK(hclose(s) == 0);

    /* hclose is abortive: the peer sees ECONNRESET, not EOF, and so do
       its later receives; tcp_done then finds the socket unconnected. */
    tcp_pair(&c, &s);
    CHECK(bsend(c, "dropped", 7, -1) == 0);
    CHECK(brecv(s, buf, 1, now() + 5000) == 0); /* the rest sits buffered */
    CHECK(hclose(s) == 0);
    CHECK_ERR(brecv(c, buf, 1, now() + 5000), ECONNRESET);
    CHECK_ERR(brecv(c, buf, 1, now() + 5000), ECONNRESET);
    CHECK_ERR(tcp_done(c, -1), ECONNRESET);
    CHECK_ERR(bsend(c, "x", 1, -1), ECONNRESET);
    CHECK_ERR(tcp_done(c, -1), ECONNRESET);
    CHECK_ERR(tcp_close(c, -1), ECONNRESET);
}

/* ---- Failures in the middle ------------------------------------------- */

static void test_reset_mid_transfer(void) {
    int c, s;
    size_t total = 100 << 20;
    char *big = calloc(1, total);
    CHECK(big != NULL);

    /* The receiver resets while a 100 MB send is under way. SIGPIPE is at
       its default action: raising it would kill the test. */
    tcp_pair(&c, &s);
    volatile struct op op;
    op_init(&op);
    int cr = go(do_bsend(c, big, total, now() + 20000, &op));
    CHECK(cr >= 0);
    CHECK(brecv(s, NULL, 1 << 20, now() + 5000) == 0);
    CHECK(hclose(s) == 0);
    join(cr);
    CHECK(op.rc == -1 && op.err == ECONNRESET);
    CHECK_ERR(bsend(c, "x", 1, -1), ECONNRESET);
    CHECK_ERR(bsend(c, "x", 1, 0), ECONNRESET);
    CHECK_ERR(tcp_done(c, -1), ECONNRESET);
    CHECK_ERR(tcp_close(c, -1), ECONNRESET);

    /* The sender resets while a 100 MB receive is under way. */
    tcp_pair(&c, &s);
    op_init(&op);
    cr = go(do_brecv(c, big, total, now() + 20000, &op));
    CHECK(cr >= 0);
    static char part[1 << 20];
    CHECK(bsend(s, part, sizeof(part), now() + 5000) == 0);
    CHECK(hclose(s) == 0);
    join(cr);
    CHECK(op.rc == -1 && op.err == ECONNRESET);
    CHECK_ERR(brecv(c, big, 1, now() + 5000), ECONNRESET);
    CHECK_ERR(brecv(c, big, 1, 0), ECONNRESET);
    CHECK(hclose(c) == 0);
    free(big);
}

static void test_brecv_deadline(void) {
    int c, s;
    char buf[100];
    tcp_pair(&c, &s);
    /* Half a message arrives, then nothing until the deadline. */
    CHECK(bsend(s, "0123456789", 10, -1) == 0);
    int64_t t0 = now();
    CHECK_ERR(brecv(c, buf, 20, t0 + 60), ETIMEDOUT);
    int64_t took = now() - t0;
    CHECK(took >= 60 && took < 400);
    /* The stream is out of step now: receiving stays failed. */
    CHECK(bsend(s, "0123456789", 10, -1) == 0);
    CHECK_ERR(brecv(c, buf, 10, now() + 5000), ECONNRESET);
    CHECK_ERR(brecv(c, buf, 1, 0), ECONNRESET);
    /* Sending is a separate direction and still works. */
    CHECK(bsend(c, "fine", 4, -1) == 0);
    CHECK(brecv(s, buf, 4, now() + 5000) == 0);
    CHECK(memcmp(buf, "fine", 4) == 0);
    /* Deadline 0 with nothing there fails the same way. */
    CHECK_ERR(brecv(s, buf, 1, 0), ETIMEDOUT);
    CHECK_ERR(brecv(s, buf, 1, -1), ECONNRESET);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);

    /* A new connection's first receive waits for readability before it
       reads (nothing is likely there yet), and data already there is
       ready at once: deadline 0 gets it, on either end, small or large. */
    tcp_pair(&c, &s);
    CHECK(bsend(c, "early", 5, -1) == 0);
    CHECK(bsend(s, "reply", 5, -1) == 0);
    CHECK(brecv(s, buf, 5, 0) == 0);
    CHECK(memcmp(buf, "early", 5) == 0);
    CHECK(brecv(c, buf, 5, 0) == 0);
    CHECK(memcmp(buf, "reply", 5) == 0);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
    static char large[8192];
    tcp_pair(&c, &s);
    CHECK(bsend(c, large, sizeof(large), -1) == 0);
    CHECK(brecv(s, large, sizeof(large), 0) == 0);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);

    /* A skip that runs into the end of the stream reports it (§21). */
    tcp_pair(&c, &s);
    CHECK(bsend(s, "short", 5, -1) == 0);
    CHECK(tcp_done(s, -1) == 0);
    CHECK_ERR(brecv(c, NULL, 10, now() + 5000), EPIPE);
    CHECK_ERR(brecv(c, buf, 1, now() + 5000), EPIPE);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
    tcp_pair(&c, &s);
    static char three[3000];
    CHECK(bsend(s, three, sizeof(three), -1) == 0);
    CHECK(tcp_done(s, -1) == 0);
    CHECK_ERR(brecv(c, NULL, 5000, now() + 5000), EPIPE);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
}

/* ---- 100 MB each way at once -------------------------------------------- */

/* Stream byte i is pattern[(start + i) % PATTERN_LEN]; the length is prime
   so that no chunk size lines up with it. */
#define PATTERN_LEN 65521
static uint8_t pattern[PATTERN_LEN];

static void fill(uint8_t *dst, uint64_t at, size_t len) {
    while(len) {
        size_t pos = at % PATTERN_LEN;
        size_t n = PATTERN_LEN - pos;
        if(n > len) n = len;
        memcpy(dst, pattern + pos, n);
        dst += n;
        at += n;
        len -= n;
    }
}

static const size_t send_sizes[] = {1, 100, 1983, 1984, 1985, 4096, 65536,
    1 << 20, 7, 300000, 12345};
static const size_t recv_sizes[] = {1, 2, 1000, 1984, 3000, 65536, 131072,
    1 << 20, 13, 500000, 77777};
#define MAX_CHUNK (1 << 20)

coroutine static void stream_out(int s, uint64_t start, uint64_t total,
      volatile struct op *op) {
    uint8_t *buf = malloc(MAX_CHUNK);
    uint64_t off = 0;
    size_t k = 0;
    int rc = 0;
    while(buf && off < total) {
        size_t n = send_sizes[k % (sizeof(send_sizes) / sizeof(size_t))];
        if(n > total - off) n = (size_t)(total - off);
        fill(buf, start + off, n);
        if(k % 3 == 1 && n >= 3) {
            /* The same bytes as a three-element list. */
            struct iolist i3 = {buf + n / 2, n - n / 2, NULL, 0};
            struct iolist i2 = {buf + 1, n / 2 - 1, &i3, 0};
            struct iolist i1 = {buf, 1, &i2, 0};
            rc = bsendl(s, &i1, &i3, now() + 30000);
        } else {
            rc = bsend(s, buf, n, now() + 30000);
        }
        if(rc < 0) break;
        off += n;
        k++;
    }
    if(!buf) rc = -1;
    free(buf);
    op_finish(op, rc);
}

coroutine static void stream_in(int s, uint64_t start, uint64_t total,
      volatile struct op *op) {
    uint8_t *buf = malloc(MAX_CHUNK);
    uint8_t *want = malloc(MAX_CHUNK);
    uint64_t off = 0;
    size_t k = 0;
    int rc = 0;
    while(buf && want && off < total) {
        size_t n = recv_sizes[k % (sizeof(recv_sizes) / sizeof(size_t))];
        if(n > total - off) n = (size_t)(total - off);
        if(k % 4 == 2 && n >= 2) {
            struct iolist i2 = {buf + n / 3, n - n / 3, NULL, 0};
            struct iolist i1 = {buf, n / 3, &i2, 0};
            rc = brecvl(s, &i1, &i2, now() + 30000);
        } else {
            rc = brecv(s, buf, n, now() + 30000);
        }
        if(rc < 0) break;
        fill(want, start + off, n);
        if(memcmp(buf, want, n) != 0) {
            fprintf(stderr, "stream corrupted near byte %llu\n",
                (unsigned long long)off);
            rc = -1;
            errno = EPROTO;
            break;
        }
        off += n;
        k++;
    }
    if(!buf || !want) rc = -1;
    free(buf);
    free(want);
    op_finish(op, rc);
}

static void test_bulk(void) {
    uint32_t x = 2463534242u;
    for(size_t i = 0; i < PATTERN_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        pattern[i] = (uint8_t)x;
    }
    uint64_t total = 100ull << 20;
    int c, s;
    tcp_pair(&c, &s);
    volatile struct op ops[4];
    for(int i = 0; i < 4; i++) op_init(&ops[i]);
    int b = bundle();
    CHECK(b >= 0);
    /* The two directions carry different parts of the pattern, so bytes
       crossing over would show. */
    CHECK(bundle_go(b, stream_out(c, 0, total, &ops[0])) == 0);
    CHECK(bundle_go(b, stream_in(s, 0, total, &ops[1])) == 0);
    CHECK(bundle_go(b, stream_out(s, 30011, total, &ops[2])) == 0);
    CHECK(bundle_go(b, stream_in(c, 30011, total, &ops[3])) == 0);
    CHECK(bundle_wait(b, now() + 60000) == 0);
    CHECK(hclose(b) == 0);
    for(int i = 0; i < 4; i++) CHECK(ops[i].done && ops[i].rc == 0);
    /* And the orderly close on top. */
    CHECK(tcp_done(c, -1) == 0);
    CHECK(tcp_done(s, -1) == 0);
    CHECK(tcp_close(c, now() + 5000) == 0);
    CHECK(tcp_close(s, now() + 5000) == 0);
}

/* ---- 1,000 connections on one thread ------------------------------------ */

#define NCONNS 1000

static volatile int served;
static volatile int clients_ok;

coroutine static void echo_one(int s) {
    char buf[100];
    if(brecv(s, buf, sizeof(buf), now() + 20000) < 0) return;
    if(bsend(s, buf, sizeof(buf), now() + 20000) < 0) return;
    if(tcp_close(s, now() + 20000) < 0) return;
    served++;
}

coroutine static void acceptor(int ls, int workers) {
    for(int i = 0; i < NCONNS; i++) {
        int s = tcp_accept(ls, NULL, now() + 20000);
        if(s < 0) return;
        if(bundle_go(workers, echo_one(s)) < 0) {
            hclose(s);
            return;
        }
    }
}

coroutine static void client(const struct ipaddr *a, int id) {
    int s = tcp_connect(a, now() + 20000);
    if(s < 0) return;
    char out[100], in[100];
    for(int i = 0; i < 100; i++) out[i] = (char)(id + i);
    if(bsend(s, out, sizeof(out), now() + 20000) < 0 ||
          brecv(s, in, sizeof(in), now() + 20000) < 0 ||
          memcmp(in, out, sizeof(in)) != 0) {
        hclose(s);
        return;
    }
    if(tcp_close(s, now() + 20000) < 0) return;
    clients_ok++;
}

static void test_many(void) {
    struct ipaddr a;
    int ls = listener(&a, NCONNS + 24);
    int workers = bundle();
    CHECK(workers >= 0);
    int clients = bundle();
    CHECK(clients >= 0);
    int acc = go(acceptor(ls, workers));
    CHECK(acc >= 0);
    for(int i = 0; i < NCONNS; i++)
        CHECK(bundle_go(clients, client(&a, i)) == 0);
    CHECK(bundle_wait(clients, now() + 25000) == 0);
    CHECK(bundle_wait(workers, now() + 25000) == 0);
    join(acc);
    CHECK(clients_ok == NCONNS);
    CHECK(served == NCONNS);
    CHECK(hclose(clients) == 0);
    CHECK(hclose(workers) == 0);
    CHECK(hclose(ls) == 0);
}

/* ---- Cancellation and handles closed under a call ----------------------- */

coroutine static void cancelled_calls(const struct ipaddr *a,
      volatile struct op *op) {
    /* Wait to be cancelled, then try to create handles. */
    int rc = msleep(-1);
    if(rc != -1 || errno != ECANCELED) {
        op_finish(op, 1);
        return;
    }
    struct ipaddr any;
    make_addr(&any, "127.0.0.1", 0);
    rc = tcp_listen(&any, 10);
    if(rc != -1 || errno != ECANCELED) {
        op_finish(op, 2);
        return;
    }
    rc = tcp_connect(a, now() + 5000);
    op_finish(op, rc);
}

static void test_cancel(void) {
    struct ipaddr a;
    volatile struct op op;
    char buf[16];

    /* accept */
    int ls = listener(&a, 0);
    op_init(&op);
    int cr = go(do_accept(ls, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    int64_t t0 = now();
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(op.when - t0 < 100);

    /* connect: backlog 0 keeps a second connection in progress */
    int first = tcp_connect(&a, now() + 5000);
    CHECK(first >= 0);
    int fds = count_fds();
    op_init(&op);
    cr = go(do_connect(&a, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    t0 = now();
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(op.when - t0 < 100);
    CHECK(count_fds() == fds);
    CHECK(hclose(first) == 0);

    /* creating handles in a cancelled coroutine */
    op_init(&op);
    cr = go(cancelled_calls(&a, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(hclose(ls) == 0);

    /* brecv */
    int c, s;
    tcp_pair(&c, &s);
    op_init(&op);
    cr = go(do_brecv(c, buf, 4, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(bsend(s, "data", 4, -1) == 0);
    CHECK_ERR(brecv(c, buf, 4, now() + 5000), ECONNRESET);
    CHECK(bsend(c, "ok", 2, -1) == 0); /* the other direction is fine */
    CHECK(brecv(s, buf, 2, now() + 5000) == 0);

    /* bsend with the buffers full */
    size_t huge = 64 << 20;
    char *hbuf = calloc(1, huge);
    CHECK(hbuf != NULL);
    op_init(&op);
    cr = go(do_bsend(c, hbuf, huge, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK_ERR(bsend(c, "x", 1, -1), ECONNRESET);
    free(hbuf);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);

    /* tcp_close while it drains: cancelled, and the handle is gone */
    tcp_pair(&c, &s);
    op_init(&op);
    cr = go(do_tcp_close(c, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK_ERR(hclose(c), EBADF);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), EPIPE);
    CHECK(hclose(s) == 0);
}

static void test_closed_under(void) {
    struct ipaddr a;
    volatile struct op op;
    char buf[16];

    /* A listener closed while a coroutine waits in tcp_accept on it: the
       waiter gets EBADF at once. */
    int f = lowest_free_fd();
    int ls = listener(&a, 10);
    CHECK(fd_port(f) == addr_port(&a));
    op_init(&op);
    int cr = go(do_accept(ls, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    int64_t t0 = now();
    CHECK(hclose(ls) == 0);
    join(cr);
    CHECK(op.rc == -1 && op.err == EBADF);
    CHECK(op.when - t0 < 100);

    /* A new listener gets the same fd number and works normally: no stale
       poller state. */
    CHECK(lowest_free_fd() == f);
    ls = listener(&a, 10);
    CHECK(fd_port(f) == addr_port(&a));
    op_init(&op);
    cr = go(do_accept(ls, now() + 5000, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    int c = tcp_connect(&a, now() + 5000);
    CHECK(c >= 0);
    join(cr);
    CHECK(op.rc >= 0);
    int s = op.rc;
    CHECK(hclose(ls) == 0);

    /* A connection that takes the number over waits on it normally too.
       The listener that had it first was registered with the poller. */
    CHECK(lowest_free_fd() == f);
    int l1 = listener(&a, 10);
    CHECK(fd_port(f) == addr_port(&a));
    CHECK_ERR(tcp_accept(l1, NULL, 0), ETIMEDOUT);
    struct ipaddr a2;
    int l2 = listener(&a2, 10);
    CHECK(hclose(l1) == 0);
    CHECK(lowest_free_fd() == f);
    int c2 = tcp_connect(&a2, now() + 5000);
    CHECK(c2 >= 0);
    CHECK(fd_peer_port(f) == addr_port(&a2));
    int s2 = tcp_accept(l2, NULL, now() + 5000);
    CHECK(s2 >= 0);
    CHECK(hclose(l2) == 0);
    op_init(&op);
    cr = go(do_brecv(c2, buf, 3, now() + 5000, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(bsend(s2, "new", 3, -1) == 0);
    join(cr);
    CHECK(op.rc == 0 && memcmp(buf, "new", 3) == 0);
    CHECK(hclose(c2) == 0);
    CHECK(hclose(s2) == 0);

    /* A connection closed under a blocked brecv: EBADF at once. */
    op_init(&op);
    cr = go(do_brecv(c, buf, 3, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(c) == 0);
    join(cr);
    CHECK(op.rc == -1 && op.err == EBADF);
    CHECK(hclose(s) == 0);

    /* A connection closed under tcp_close's drain: EBADF, and nothing of
       the freed connection is touched afterwards. */
    tcp_pair(&c, &s);
    op_init(&op);
    cr = go(do_tcp_close(c, -1, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    CHECK(hclose(c) == 0);
    join(cr);
    CHECK(op.rc == -1 && op.err == EBADF);
    CHECK(hclose(s) == 0);
}

/* A malformed list that only the layer can find (a loop, iol_rsvd set)
   fails the direction like any other error (§3): later calls get
   ECONNRESET. */
static void test_layer_einval(void) {
    int c, s;
    char buf[16];
    tcp_pair(&c, &s);
    /* A malformed list found by the layer fails the direction (§3). */
    struct iolist l2 = {buf, 1, NULL, 0};
    struct iolist l1 = {buf, 1, &l2, 0};
    l2.iol_next = &l1; /* a loop that does not end at last */
    struct iolist lend = {buf, 1, NULL, 0};
    CHECK_ERR(brecvl(s, &l1, &lend, -1), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0 && lend.iol_rsvd == 0);
    CHECK(bsend(c, "q", 1, -1) == 0);
    CHECK_ERR(brecv(s, buf, 1, now() + 5000), ECONNRESET);
    struct iolist bad = {buf, 1, NULL, 1}; /* iol_rsvd not 0 */
    CHECK_ERR(bsendl(c, &bad, &bad, -1), EINVAL);
    CHECK_ERR(bsend(c, "q", 1, -1), ECONNRESET);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
}

/* ---- Child processes: network namespace and descriptor limit ------------ */

/* Runs a command (output discarded); a missing command fails the test
   with the package to install. */
static void run_tool(const char *package, char *const argv[]) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if(null >= 0) dup2(null, 1);
        const char *path = getenv("PATH");
        char full[4096];
        snprintf(full, sizeof(full), "%s:/usr/sbin:/sbin:/usr/bin:/bin",
            path ? path : "");
        setenv("PATH", full, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if(WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr, "FAIL: the %s command is missing: install the %s "
            "package\n", argv[0], package);
        exit(1);
    }
    if(!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: %s %s ... failed (status %d)\n", argv[0],
            argv[1], status);
        exit(1);
    }
}

#define DROP_PORT "5555"
#define REJECT_PORT "5556"

coroutine static void connect_forever(const struct ipaddr *a,
      volatile struct op *op) {
    int rc = tcp_connect(a, -1);
    op_finish(op, rc);
}

static void netns_tests(void) {
    if(unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "FAIL: cannot create a network namespace "
            "(unshare(CLONE_NEWNET): %s); this test must run as root, as "
            "it does in CI\n", strerror(errno));
        exit(1);
    }
    /* From here on every command acts on the new namespace only. */
    char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    run_tool("iproute2", lo_up);
    char *drop[] = {"iptables", "-A", "INPUT", "-p", "tcp", "--dport",
        DROP_PORT, "-j", "DROP", NULL};
    run_tool("iptables", drop);
    char *reject[] = {"iptables", "-A", "OUTPUT", "-p", "tcp", "--dport",
        REJECT_PORT, "-j", "REJECT", "--reject-with",
        "icmp-host-unreachable", NULL};
    run_tool("iptables", reject);

    CHECK(yield() == 0); /* the scheduler's own fds exist from here */
    int fds = count_fds();
    struct ipaddr a;

    /* ETIMEDOUT: the SYN is dropped, the deadline ends the wait. */
    make_addr(&a, "127.0.0.1", atoi(DROP_PORT));
    int64_t t0 = now();
    CHECK_ERR(tcp_connect(&a, t0 + 500), ETIMEDOUT);
    int64_t took = now() - t0;
    if(took < 450 || took > 700) {
        fprintf(stderr, "FAIL: tcp_connect timed out after %lld ms, "
            "not 450-700\n", (long long)took);
        exit(1);
    }
    struct tcp_storage mem;
    t0 = now();
    CHECK_ERR(tcp_connect_mem(&a, &mem, t0 + 100), ETIMEDOUT);
    took = now() - t0;
    CHECK(took >= 100 && took < 400);
    /* Deadline 0, and one already past: at once. */
    t0 = now();
    CHECK_ERR(tcp_connect(&a, 0), ETIMEDOUT);
    CHECK_ERR(tcp_connect(&a, now() - 1), ETIMEDOUT);
    CHECK(now() - t0 < 50);

    /* ECANCELED: the connecting coroutine's bundle is closed. */
    volatile struct op op;
    op_init(&op);
    int cr = go(connect_forever(&a, &op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!op.done);
    t0 = now();
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(op.when - t0 < 100);

    /* ENETUNREACH: only lo exists, so 10.1.2.3 has no route; the kernel
       refuses at once and nothing leaves the machine. */
    make_addr(&a, "10.1.2.3", 80);
    t0 = now();
    CHECK_ERR(tcp_connect(&a, now() + 5000), ENETUNREACH);
    CHECK(now() - t0 < 100);

    /* EHOSTUNREACH: the REJECT rule answers the SYN with an ICMP host
       unreachable. */
    make_addr(&a, "127.0.0.1", atoi(REJECT_PORT));
    CHECK_ERR(tcp_connect(&a, now() + 5000), EHOSTUNREACH);
    make_addr(&a, "127.0.0.2", atoi(REJECT_PORT));
    CHECK_ERR(tcp_connect(&a, now() + 5000), EHOSTUNREACH);

    /* ECONNREFUSED: nothing at all listens in this namespace. */
    make_addr(&a, "127.0.0.1", 5557);
    CHECK_ERR(tcp_connect(&a, now() + 5000), ECONNREFUSED);

    /* IPv6 over ::1. */
    make_addr(&a, "::1", 0);
    int ls = tcp_listen(&a, 10);
    CHECK(ls >= 0);
    CHECK(addr_port(&a) > 0);
    int c = tcp_connect(&a, now() + 5000);
    CHECK(c >= 0);
    struct ipaddr peer;
    int s = tcp_accept(ls, &peer, now() + 5000);
    CHECK(s >= 0);
    CHECK(addr_family(&peer) == AF_INET6);
    CHECK(bsend(c, "six", 3, -1) == 0);
    char buf[3];
    CHECK(brecv(s, buf, 3, now() + 5000) == 0);
    CHECK(memcmp(buf, "six", 3) == 0);
    CHECK(tcp_done(c, -1) == 0);
    CHECK(tcp_done(s, -1) == 0);
    CHECK(tcp_close(c, now() + 5000) == 0);
    CHECK(tcp_close(s, now() + 5000) == 0);
    CHECK(hclose(ls) == 0);
    /* IPV6_V6ONLY is left alone: a wildcard IPv6 listener takes IPv4
       peers too, as IPv4-mapped addresses. */
    make_addr(&a, "::", 0);
    ls = tcp_listen(&a, 10);
    CHECK(ls >= 0);
    struct ipaddr v4;
    make_addr(&v4, "127.0.0.1", addr_port(&a));
    c = tcp_connect(&v4, now() + 5000);
    CHECK(c >= 0);
    s = tcp_accept(ls, &peer, now() + 5000);
    CHECK(s >= 0);
    CHECK(addr_family(&peer) == AF_INET6);
    struct sockaddr_in6 p6;
    memcpy(&p6, &peer, sizeof(p6));
    CHECK(IN6_IS_ADDR_V4MAPPED(&p6.sin6_addr));
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
    CHECK(hclose(ls) == 0);
    CHECK(count_fds() == fds);

    /* EACCES: a privileged port for a process without privileges (this
       namespace has the default ip_unprivileged_port_start of 1024). The
       child does nothing after dropping root. */
    CHECK(setgid(65534) == 0);
    CHECK(setuid(65534) == 0);
    make_addr(&a, "127.0.0.1", 80);
    CHECK_ERR(tcp_listen(&a, 10), EACCES);
    CHECK(count_fds() == fds);
}

static void emfile_tests(void) {
    struct ipaddr a;
    int ls = listener(&a, 10);
    /* Every fd the library needs for itself is open by now. */
    CHECK_ERR(tcp_accept(ls, NULL, 0), ETIMEDOUT);
    int raw = raw_connect(&a); /* pending in the listener's queue */
    int spare = raw_connect(&a);
    /* The lowest free number is the limit: no new descriptor at all. */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    struct rlimit low = {(rlim_t)lowest_free_fd(), rl.rlim_max};
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    CHECK_ERR(tcp_connect(&a, now() + 5000), EMFILE);
    struct tcp_storage mem;
    CHECK_ERR(tcp_connect_mem(&a, &mem, now() + 5000), EMFILE);
    struct ipaddr b;
    make_addr(&b, "127.0.0.1", 0);
    CHECK_ERR(tcp_listen(&b, 10), EMFILE);
    CHECK_ERR(tcp_accept(ls, NULL, now() + 5000), EMFILE);
    /* fromfd needs a dup(): the caller keeps its fd. */
    CHECK_ERR(tcp_fromfd(spare), EMFILE);
    CHECK(is_open(spare));
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    /* Accepting works again. (Under valgrind, which enforces the limit
       itself, the kernel did accept raw's connection and valgrind closed
       it, so either connection may be the one accepted now.) */
    int s = tcp_accept(ls, NULL, now() + 5000);
    CHECK(s >= 0);
    CHECK(send(raw, "ok", 2, MSG_NOSIGNAL) == 2 || errno == EPIPE ||
        errno == ECONNRESET);
    CHECK(send(spare, "ok", 2, MSG_NOSIGNAL) == 2);
    char buf[2];
    CHECK(brecv(s, buf, 2, now() + 5000) == 0);
    CHECK(memcmp(buf, "ok", 2) == 0);
    CHECK(hclose(s) == 0);
    CHECK(hclose(ls) == 0);
    close(raw);
    close(spare);
}

/* Runs fn in a child process forked before this process uses libdill, so
   the child starts with no scheduler of its parent's. */
static void in_child(const char *name, void (*fn)(void)) {
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) {
        fn();
        exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if(!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: %s (child status %d)\n", name, status);
        exit(1);
    }
}

/* ---- Main --------------------------------------------------------------- */

static void run(const char *name, void (*fn)(void)) {
    int before = count_fds();
    fn();
    int after = count_fds();
    if(after != before) {
        fprintf(stderr, "FAIL: %s leaked %d fds\n", name, after - before);
        exit(1);
    }
}

int main(void) {
    /* A SIGPIPE would kill the test: the library must never raise it. */
    signal(SIGPIPE, SIG_DFL);
    /* 1,000 connections take 2,000 descriptors. */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if(rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2 * NCONNS + 64) {
        fprintf(stderr, "FAIL: RLIMIT_NOFILE hard limit %llu is below the "
            "%d descriptors this test needs\n",
            (unsigned long long)rl.rlim_max, 2 * NCONNS + 64);
        return 1;
    }
    if(rl.rlim_cur < 2 * NCONNS + 64) {
        rl.rlim_cur = 2 * NCONNS + 64;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    }

    in_child("network namespace tests", netns_tests);
    in_child("RLIMIT_NOFILE tests", emfile_tests);

    CHECK(yield() == 0); /* the scheduler's own fds exist from here */
    run("listen", test_listen);
    run("accept", test_accept);
    run("connect", test_connect);
    run("fromfd", test_fromfd);
    run("data", test_data);
    run("done and close", test_done_close);
    run("reset mid-transfer", test_reset_mid_transfer);
    run("brecv deadline", test_brecv_deadline);
    run("bulk", test_bulk);
    run("many", test_many);
    run("cancel", test_cancel);
    run("closed under", test_closed_under);
    run("layer EINVAL", test_layer_einval);
    return 0;
}
