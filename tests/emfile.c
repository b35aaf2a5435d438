/*
 * tests/emfile.c: running out of file descriptors. Each call that makes
 * descriptors runs with the table full up to a lowered RLIMIT_NOFILE but
 * for as many free numbers as it may take, so that exactly the descriptor
 * it needs next cannot be made. It must fail with EMFILE, leave no
 * descriptor (counted in /proc/self/fd) and no handle (every number asked
 * with hquery) behind, and work once the limit is back. A call that makes
 * two descriptors is failed at each of them, and shown to work with room
 * for both.
 *
 * Covers: tcp_listen, tcp_connect and the listener's end of that
 * connection (tcp_accept), ipc_listen, ipc_connect and ipc_accept alike,
 * ipc_pair (socketpair: no room, room for one), udp_open, the *_fromfd
 * functions (dup; the caller keeps its descriptor), ipc_recvfd (a
 * descriptor arriving with no room for it: EMFILE, and the stream stays
 * in step), ipaddr_local with an interface name (getifaddrs' netlink
 * socket), ipaddr_remote and ipaddr_remotes with a name to look up (the
 * resolver's configuration files, its UDP socket, its TCP socket after a
 * truncated reply) against a DNS server of the test's own,
 * happyeyeballs_connect (sockets.md §17: failed attempts are not
 * reported, the call ends at its deadline with ETIMEDOUT), the _mem
 * variants, and with --enable-tls the TLS and DTLS server attach (which
 * read the certificate and key files). Calls that make no descriptor
 * (chmake, bundle, go, fdin, hown, msleep) work with the table full.
 *
 * Runs in mount and network namespaces of its own (so it needs root): its
 * own /etc/resolv.conf and hosts on a tmpfs over /etc, loopback only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* unshare, prlimit */
#endif

#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "libdillimpl.h"
#include "check.h"
#include "peer.h"

/* A deadline for what must happen soon: a bug fails instead of hanging. */
#define SOON (now() + 10000)

/* ---- Counting what exists ------------------------------------------------ */

static int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while((e = readdir(d)))
        if(e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* A type no handle answers: hquery then says ENOTSUP for a live number
   and EBADF for a free one, and changes nothing. */
static const int probe_type;
#define HANDLE_SCAN 65536

static int handle_count(void) {
    int n = 0;
    for(int h = 0; h < HANDLE_SCAN; h++) {
        errno = 0;
        if(hquery(h, &probe_type) || errno != EBADF) n++;
    }
    return n;
}

struct census {
    int fds;
    int handles;
};

static struct census census(void) {
    struct census c = {fd_count(), handle_count()};
    return c;
}

/* Now as at c, give or take dfds descriptors and dhandles handles. */
static void check_census(const struct census *c, int dfds, int dhandles) {
    int fds = fd_count(), handles = handle_count();
    if(fds != c->fds + dfds || handles != c->handles + dhandles) {
        fprintf(stderr, "FAIL: %d descriptors and %d handles, expected "
            "%d and %d\n", fds, handles, c->fds + dfds,
            c->handles + dhandles);
        exit(1);
    }
}

/* ---- A full descriptor table --------------------------------------------- */

/* Free numbers below the lowered limit, filled by squeeze. */
#define SLACK 16
#define MAXFILL 8192

static struct {
    rlim_t saved;       /* the kernel's soft limit before squeeze */
    rlim_t room_first;  /* the lowest number squeeze left free */
    int fill[MAXFILL];
    int nfill;
} sq;

struct limit_req {
    rlim_t set;        /* 0: only read */
    struct rlimit old;
    int rc;
};

static void *limit_thread(void *arg) {
    struct limit_req *r = arg;
    pid_t self = (pid_t)syscall(SYS_gettid);
    r->rc = prlimit(self, RLIMIT_NOFILE, NULL, &r->old);
    if(r->rc == 0 && r->set) {
        struct rlimit lim = {r->set, r->old.rlim_max};
        r->rc = prlimit(self, RLIMIT_NOFILE, &lim, NULL);
    }
    return NULL;
}

/* Set the kernel's soft RLIMIT_NOFILE of the process to cur (0: leave it)
   and return the one before. Valgrind keeps a copy of the limit of its
   own for the program, which setrlimit changes, and does not apply it to
   every call (a socketpair past it "succeeds" with both ends closed, a
   descriptor received with SCM_RIGHTS is not checked at all); the
   kernel's limit stays a dozen higher, for valgrind's own descriptors.
   Asked through the id of another thread, which valgrind does not take
   for the process's, the kernel's limit itself changes, and the kernel
   refuses every descriptor past it, with valgrind or without. The thread
   makes no libdill call: its context would need a descriptor. */
static rlim_t kernel_limit(rlim_t cur) {
    struct limit_req r = {cur, {0, 0}, -1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, limit_thread, &r) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(r.rc == 0);
    return r.old.rlim_cur;
}

/* The highest descriptor the program has open. Under valgrind,
   valgrind's own sit above the limit getrlimit reports. */
static int highest_fd(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int top = -1;
    struct dirent *e;
    while((e = readdir(d))) {
        if(e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if((rlim_t)fd < rl.rlim_cur && fd > top) top = fd;
    }
    closedir(d);
    return top;
}

/* Lower the limit a little above the highest descriptor in use, fill
   every free number below it, then free the room highest fillers: the
   next room descriptors can be made, and not one more. */
static void squeeze(int room) {
    CHECK(sq.nfill == 0);
    rlim_t limit = (rlim_t)(highest_fd() + 1 + SLACK + room);
    sq.saved = kernel_limit(limit);
    CHECK(limit < sq.saved);
    int first = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(first >= 0);
    sq.fill[sq.nfill++] = first;
    for(;;) {
        int fd = fcntl(first, F_DUPFD_CLOEXEC, 0);
        if(fd < 0) break;
        CHECK(sq.nfill < MAXFILL);
        sq.fill[sq.nfill++] = fd;
    }
    CHECK(errno == EMFILE && sq.nfill > room);
    for(int i = 0; i < room; i++) CHECK(close(sq.fill[--sq.nfill]) == 0);
    sq.room_first = room ? (rlim_t)sq.fill[sq.nfill] : limit;
}

/* No more room, whoever holds what squeeze left free: the limit comes
   down to the lowest of those numbers. */
static void tighten(void) {
    kernel_limit(sq.room_first);
}

static void release(void) {
    CHECK(sq.nfill > 0);
    while(sq.nfill) CHECK(close(sq.fill[--sq.nfill]) == 0);
    kernel_limit(sq.saved);
}

/* ---- Small helpers -------------------------------------------------------- */

static void loopback(struct ipaddr *a, int port) {
    CHECK(ipaddr_local(a, "127.0.0.1", port, IPADDR_IPV4) == 0);
}

static int is_open(int fd) {
    return fcntl(fd, F_GETFD) >= 0;
}

/* One byte each way between two connected bytestream handles. */
static void check_stream(int a, int b) {
    char c = 0;
    CHECK(bsend(a, "x", 1, SOON) == 0);
    CHECK(brecv(b, &c, 1, SOON) == 0 && c == 'x');
    CHECK(bsend(b, "y", 1, SOON) == 0);
    CHECK(brecv(a, &c, 1, SOON) == 0 && c == 'y');
}

static const char *dir;

static const char *path(const char *name) {
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

/* ---- TCP ------------------------------------------------------------------ */

static void test_tcp_listen(void) {
    struct ipaddr a;
    loopback(&a, 0);
    struct tcp_listener_storage mem;
    struct census c = census();
    squeeze(0);
    CHECK_ERR(tcp_listen(&a, 10), EMFILE);
    CHECK_ERR(tcp_listen_mem(&a, 10, &mem), EMFILE);
    release();
    check_census(&c, 0, 0);
    /* No port was written back: nothing was bound. */
    CHECK(ipaddr_port(&a) == 0);
    squeeze(1);
    int l = tcp_listen_mem(&a, 10, &mem);
    release();
    CHECK(l >= 0 && ipaddr_port(&a) != 0);
    CHECK(hclose(l) == 0);
    check_census(&c, 0, 0);
}

/* A connection and the listener's end of it: two descriptors. */
static void test_tcp_connect_accept(void) {
    struct ipaddr a, peer;
    loopback(&a, 0);
    int l = tcp_listen(&a, 10);
    CHECK(l >= 0);
    struct tcp_storage mem;
    struct census c = census();
    /* The connecting socket cannot be made. */
    squeeze(0);
    CHECK_ERR(tcp_connect(&a, SOON), EMFILE);
    CHECK_ERR(tcp_connect_mem(&a, &mem, SOON), EMFILE);
    release();
    check_census(&c, 0, 0);
    /* It can, the accepted one cannot: the connection waits in the
       backlog meanwhile. */
    squeeze(1);
    int s = tcp_connect(&a, SOON);
    CHECK(s >= 0);
    CHECK_ERR(tcp_accept(l, &peer, SOON), EMFILE);
    CHECK_ERR(tcp_accept_mem(l, &peer, &mem, SOON), EMFILE);
    release();
    check_census(&c, 1, 1);
    int t = tcp_accept(l, &peer, SOON);
    CHECK(t >= 0);
    check_stream(s, t);
    CHECK(hclose(t) == 0 && hclose(s) == 0);
    check_census(&c, 0, 0);
    /* Room for both. */
    squeeze(2);
    s = tcp_connect_mem(&a, &mem, SOON);
    CHECK(s >= 0);
    t = tcp_accept(l, NULL, SOON);
    release();
    CHECK(t >= 0);
    check_stream(s, t);
    CHECK(hclose(t) == 0 && hclose(s) == 0);
    CHECK(hclose(l) == 0);
}

/* A socket of the test, not yet the library's: listening on a or not. */
static int raw_tcp(struct ipaddr *a, int listening) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    if(listening) {
        CHECK(bind(fd, ipaddr_sockaddr(a), ipaddr_len(a)) == 0);
        CHECK(listen(fd, 10) == 0);
    }
    return fd;
}

/* fromfd dups the caller's descriptor: without room it fails and the
   caller still has its own; with room the duplicate takes its place. */
static void test_tcp_fromfd(void) {
    struct ipaddr a;
    loopback(&a, 0);
    struct tcp_storage mem;
    struct tcp_listener_storage lmem;
    int conn = raw_tcp(&a, 0);
    int lst = raw_tcp(&a, 1);
    struct census c = census();
    squeeze(0);
    CHECK_ERR(tcp_fromfd(conn), EMFILE);
    CHECK_ERR(tcp_fromfd_mem(conn, &mem), EMFILE);
    CHECK_ERR(tcp_listener_fromfd(lst), EMFILE);
    CHECK_ERR(tcp_listener_fromfd_mem(lst, &lmem), EMFILE);
    release();
    check_census(&c, 0, 0);
    CHECK(is_open(conn) && is_open(lst));
    squeeze(1);
    int h = tcp_fromfd(conn);
    release();
    CHECK(h >= 0);
    squeeze(1);
    int hl = tcp_listener_fromfd_mem(lst, &lmem);
    release();
    CHECK(hl >= 0);
    check_census(&c, 0, 2);
    CHECK(hclose(h) == 0 && hclose(hl) == 0);
    check_census(&c, -2, 0);
}

/* ---- IPC ------------------------------------------------------------------ */

static void test_ipc_listen(void) {
    struct ipc_listener_storage mem;
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipc_listen(path("listen"), 10), EMFILE);
    CHECK_ERR(ipc_listen_mem(path("listen"), 10, &mem), EMFILE);
    release();
    check_census(&c, 0, 0);
    /* Nothing was bound. */
    CHECK(access(path("listen"), F_OK) < 0 && errno == ENOENT);
    squeeze(1);
    int l = ipc_listen_mem(path("listen"), 10, &mem);
    release();
    CHECK(l >= 0);
    CHECK(hclose(l) == 0);
    check_census(&c, 0, 0);
}

static void test_ipc_connect_accept(void) {
    int l = ipc_listen(path("accept"), 10);
    CHECK(l >= 0);
    struct ipc_storage mem;
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipc_connect(path("accept"), SOON), EMFILE);
    CHECK_ERR(ipc_connect_mem(path("accept"), &mem, SOON), EMFILE);
    release();
    check_census(&c, 0, 0);
    squeeze(1);
    int s = ipc_connect(path("accept"), SOON);
    CHECK(s >= 0);
    CHECK_ERR(ipc_accept(l, SOON), EMFILE);
    CHECK_ERR(ipc_accept_mem(l, &mem, SOON), EMFILE);
    release();
    check_census(&c, 1, 1);
    int t = ipc_accept(l, SOON);
    CHECK(t >= 0);
    check_stream(s, t);
    CHECK(hclose(t) == 0 && hclose(s) == 0);
    check_census(&c, 0, 0);
    squeeze(2);
    s = ipc_connect_mem(path("accept"), &mem, SOON);
    CHECK(s >= 0);
    t = ipc_accept(l, SOON);
    release();
    CHECK(t >= 0);
    check_stream(s, t);
    CHECK(hclose(t) == 0 && hclose(s) == 0);
    CHECK(hclose(l) == 0);
}

/* socketpair makes both descriptors or neither. */
static void test_ipc_pair(void) {
    struct ipc_pair_storage mem;
    struct census c = census();
    for(int room = 0; room < 2; room++) {
        int s[2] = {-7, -7};
        squeeze(room);
        CHECK_ERR(ipc_pair(s), EMFILE);
        CHECK_ERR(ipc_pair_mem(&mem, s), EMFILE);
        release();
        check_census(&c, 0, 0);
        CHECK(s[0] == -7 && s[1] == -7);
    }
    int s[2];
    squeeze(2);
    CHECK(ipc_pair_mem(&mem, s) == 0);
    release();
    check_stream(s[0], s[1]);
    CHECK(hclose(s[0]) == 0 && hclose(s[1]) == 0);
    CHECK(ipc_pair(s) == 0);
    check_stream(s[0], s[1]);
    CHECK(hclose(s[0]) == 0 && hclose(s[1]) == 0);
    check_census(&c, 0, 0);
}

static void test_ipc_fromfd(void) {
    struct ipc_storage mem;
    struct ipc_listener_storage lmem;
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    int lst = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(lst >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path("fromfd"));
    CHECK(bind(lst, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(listen(lst, 10) == 0);
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipc_fromfd(fds[0]), EMFILE);
    CHECK_ERR(ipc_fromfd_mem(fds[0], &mem), EMFILE);
    CHECK_ERR(ipc_listener_fromfd(lst), EMFILE);
    CHECK_ERR(ipc_listener_fromfd_mem(lst, &lmem), EMFILE);
    release();
    check_census(&c, 0, 0);
    CHECK(is_open(fds[0]) && is_open(lst));
    squeeze(1);
    int h = ipc_fromfd_mem(fds[0], &mem);
    release();
    CHECK(h >= 0);
    squeeze(1);
    int hl = ipc_listener_fromfd(lst);
    release();
    CHECK(hl >= 0);
    check_census(&c, 0, 2);
    CHECK(hclose(h) == 0 && hclose(hl) == 0);
    CHECK(close(fds[1]) == 0);
    check_census(&c, -3, 0);
}

/* A descriptor that arrives when there is no room for it: the kernel
   drops it and says so (MSG_CTRUNC). The byte that carried it is read,
   so the stream is still in step. */
static void test_ipc_recvfd(void) {
    int s[2];
    CHECK(ipc_pair(s) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(ipc_sendfd(s[0], p[0], SOON) == 0);
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipc_recvfd(s[1], SOON), EMFILE);
    release();
    check_census(&c, 0, 0);
    CHECK(ipc_sendfd(s[0], p[0], SOON) == 0);
    squeeze(1);
    int fd = ipc_recvfd(s[1], SOON);
    release();
    CHECK(fd >= 0);
    /* The same pipe. */
    char b = 0;
    CHECK(write(p[1], "z", 1) == 1);
    CHECK(read(fd, &b, 1) == 1 && b == 'z');
    check_stream(s[0], s[1]);
    CHECK(close(fd) == 0 && close(p[0]) == 0 && close(p[1]) == 0);
    CHECK(hclose(s[0]) == 0 && hclose(s[1]) == 0);
}

/* ---- UDP ------------------------------------------------------------------ */

static void test_udp_open(void) {
    struct ipaddr local, remote;
    loopback(&local, 0);
    loopback(&remote, 5555);
    struct udp_storage mem;
    struct census c = census();
    squeeze(0);
    CHECK_ERR(udp_open(NULL, NULL), EMFILE);
    CHECK_ERR(udp_open(&local, NULL), EMFILE);
    CHECK_ERR(udp_open(NULL, &remote), EMFILE);
    CHECK_ERR(udp_open_mem(&local, &remote, &mem), EMFILE);
    release();
    check_census(&c, 0, 0);
    CHECK(ipaddr_port(&local) == 0);
    squeeze(1);
    int u = udp_open_mem(&local, &remote, &mem);
    release();
    CHECK(u >= 0 && ipaddr_port(&local) != 0);
    CHECK(hclose(u) == 0);
    check_census(&c, 0, 0);
}

/* ---- Addresses ------------------------------------------------------------ */

/* An interface name: getifaddrs asks the kernel over a netlink socket. */
static void test_ipaddr_local(void) {
    struct ipaddr a;
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipaddr_local(&a, "lo", 80, IPADDR_IPV4), EMFILE);
    release();
    check_census(&c, 0, 0);
    squeeze(1);
    CHECK(ipaddr_local(&a, "lo", 80, IPADDR_IPV4) == 0);
    release();
    char buf[IPADDR_MAXSTRLEN];
    CHECK(strcmp(ipaddr_str(&a, buf), "127.0.0.1") == 0);
    CHECK(ipaddr_port(&a) == 80);
}

/* A DNS server of the test on 127.0.0.1:53, over UDP and TCP. Every name
   has the A record 10.0.0.1 and the AAAA record fd00::1, except that
   tc.test has 10.0.0.2 and over UDP gets a truncated reply (TC, no
   answer), to be asked again over TCP. With tighten_on_query set, the UDP
   server takes away the room squeeze left before it replies: the
   resolver's next descriptor, its TCP socket, cannot be made. */
static int tighten_on_query;

/* The reply to the query q of n bytes, in out; its length, or 0 if q is
   no query of one question. */
static size_t dns_reply(const uint8_t *q, size_t n, uint8_t *out, int udp) {
    if(n < 12 || q[4] != 0 || q[5] != 1) return 0;
    size_t at = 12;
    while(at < n && q[at]) at += 1 + (size_t)q[at];
    if(at + 5 > n) return 0;
    size_t qend = at + 5;
    int type = q[at + 1] << 8 | q[at + 2];
    int tc = q[12] == 2 && memcmp(q + 13, "tc", 2) == 0;
    memcpy(out, q, qend);
    out[2] = (uint8_t)(0x84 | (q[2] & 0x01) | (tc && udp ? 0x02 : 0));
    out[3] = 0x80;
    memset(out + 6, 0, 6);
    size_t len = type == 1 ? 4 : type == 28 ? 16 : 0;
    if(!len || (tc && udp)) return qend;
    out[7] = 1;
    uint8_t rr[10] = {0xc0, 0x0c, 0, (uint8_t)type, 0, 1, 0, 0, 0, 60};
    memcpy(out + qend, rr, sizeof(rr));
    out[qend + 10] = 0;
    out[qend + 11] = (uint8_t)len;
    uint8_t *data = out + qend + 12;
    memset(data, 0, len);
    if(type == 1) {
        data[0] = 10;
        data[3] = tc ? 2 : 1;
    } else {
        data[0] = 0xfd;
        data[15] = 1;
    }
    return qend + 12 + len;
}

coroutine static void dns_udp(int u) {
    uint8_t q[512], r[600];
    for(;;) {
        struct ipaddr from;
        ssize_t n = udp_recv(u, &from, q, sizeof(q), -1);
        if(n < 0) return;
        size_t len = dns_reply(q, (size_t)n, r, 1);
        if(!len) continue;
        if(tighten_on_query) tighten();
        udp_send(u, &from, r, len);
    }
}

/* One query per connection, then the server closes it. */
coroutine static void dns_tcp(int l) {
    uint8_t q[512], r[2 + 600];
    for(;;) {
        int s = tcp_accept(l, NULL, -1);
        if(s < 0 && errno == ECANCELED) return;
        if(s < 0) continue;
        uint8_t head[2];
        if(brecv(s, head, 2, SOON) == 0) {
            size_t n = (size_t)head[0] << 8 | head[1];
            size_t len = n <= sizeof(q) && brecv(s, q, n, SOON) == 0 ?
                dns_reply(q, n, r + 2, 0) : 0;
            r[0] = (uint8_t)(len >> 8);
            r[1] = (uint8_t)len;
            if(len) bsend(s, r, 2 + len, SOON);
        }
        hclose(s);
    }
}

static void check_addr(const struct ipaddr *a, const char *text) {
    char buf[IPADDR_MAXSTRLEN];
    CHECK(ipaddr_str(a, buf) != NULL);
    if(strcmp(buf, text) != 0) {
        fprintf(stderr, "FAIL: got %s, expected %s\n", buf, text);
        exit(1);
    }
    CHECK(ipaddr_port(a) == 80);
}

/* The first lookup reads the configuration files: the first of them
   cannot be opened. This must be the process's first lookup. */
static void test_resolver_files(void) {
    struct ipaddr a;
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipaddr_remote(&a, "one.test", 80, IPADDR_IPV4, SOON), EMFILE);
    release();
    check_census(&c, 0, 0);
    /* One descriptor at a time: each file is closed before the next one
       is opened, and before the query's socket. */
    squeeze(1);
    CHECK(ipaddr_remote(&a, "one.test", 80, IPADDR_IPV4, SOON) == 0);
    release();
    check_addr(&a, "10.0.0.1");
    check_census(&c, 0, 0);
}

/* The files are known now: the query's UDP socket cannot be made. */
static void test_resolver_udp(void) {
    struct ipaddr a, addrs[4];
    struct census c = census();
    squeeze(0);
    CHECK_ERR(ipaddr_remote(&a, "one.test", 80, IPADDR_IPV4, SOON), EMFILE);
    CHECK_ERR(ipaddr_remote(&a, "one.test", 80, IPADDR_IPV6, SOON), EMFILE);
    CHECK_ERR(ipaddr_remotes(addrs, 4, "one.test", 80, IPADDR_PREF_IPV6,
        SOON), EMFILE);
    release();
    check_census(&c, 0, 0);
    squeeze(1);
    CHECK(ipaddr_remotes(addrs, 4, "one.test", 80, IPADDR_PREF_IPV6,
        SOON) == 2);
    release();
    check_addr(&addrs[0], "fd00::1");
    check_addr(&addrs[1], "10.0.0.1");
    check_census(&c, 0, 0);
}

/* The UDP reply is truncated and the TCP socket cannot be made. */
static void test_resolver_tcp(void) {
    struct ipaddr a;
    struct census c = census();
    squeeze(1);
    tighten_on_query = 1;
    CHECK_ERR(ipaddr_remote(&a, "tc.test", 80, IPADDR_IPV4, SOON), EMFILE);
    tighten_on_query = 0;
    release();
    check_census(&c, 0, 0);
    CHECK(ipaddr_remote(&a, "tc.test", 80, IPADDR_IPV4, SOON) == 0);
    check_addr(&a, "10.0.0.2");
    check_census(&c, 0, 0);
}

/* §17: an attempt that fails just ends; with no descriptor for any, the
   call waits for its deadline. */
static void test_happyeyeballs(void) {
    struct ipaddr a;
    loopback(&a, 0);
    int l = tcp_listen(&a, 10);
    CHECK(l >= 0);
    int port = ipaddr_port(&a);
    struct census c = census();
    squeeze(0);
    CHECK_ERR(happyeyeballs_connect("127.0.0.1", port, now() + 400),
        ETIMEDOUT);
    CHECK_ERR(happyeyeballs_connect("one.test", port, now() + 400),
        ETIMEDOUT);
    release();
    check_census(&c, 0, 0);
    int s = happyeyeballs_connect("127.0.0.1", port, SOON);
    CHECK(s >= 0);
    int t = tcp_accept(l, NULL, SOON);
    CHECK(t >= 0);
    check_stream(s, t);
    CHECK(hclose(t) == 0 && hclose(s) == 0 && hclose(l) == 0);
}

/* ---- TLS and DTLS --------------------------------------------------------- */

#if defined HAVE_TLS

static char cert[256], key[256];

static void make_certs(void) {
    peer_require("openssl", "openssl");
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    char *req[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
        "-days", "2", "-subj", "/CN=localhost", NULL};
    CHECK(peer_run(req, NULL, 0, 30000, NULL) == 0);
}

coroutine static void tls_client(int s, int dgram, int *h) {
    *h = dgram ? dtls_attach_client(s, SOON) : tls_attach_client(s, SOON);
}

/* A client on s[0] and a server on s[1]; the server's handle, the
   client's in *client. */
static int tls_both(int s[2], int dgram, int *client) {
    *client = -2;
    int cr = go(tls_client(s[0], dgram, client));
    CHECK(cr >= 0);
    int h = dgram ? dtls_attach_server(s[1], cert, key, SOON) :
        tls_attach_server(s[1], cert, key, SOON);
    CHECK(h >= 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(*client >= 0);
    return h;
}

static void check_messages(int a, int b) {
    char buf[8];
    CHECK(msend(a, "abc", 3, SOON) == 0);
    CHECK(mrecv(b, buf, sizeof(buf), SOON) == 3 && memcmp(buf, "abc", 3) == 0);
}

/* Two UDP sockets that talk to each other. */
static void udp_pair(int s[2]) {
    struct ipaddr a, b;
    loopback(&a, 0);
    loopback(&b, 0);
    s[0] = udp_open(&a, NULL);
    CHECK(s[0] >= 0);
    s[1] = udp_open(&b, &a);
    CHECK(s[1] >= 0);
    CHECK(hclose(s[0]) == 0);
    s[0] = udp_open(&a, &b);
    CHECK(s[0] >= 0);
}

/* The server reads its certificate and key files. As after any failed
   attach, the socket passed in is closed (sockets.md §20.1). */
static void test_tls_server(int dgram) {
    int s[2], client;
    if(dgram) udp_pair(s);
    else CHECK(ipc_pair(s) == 0);
    /* OpenSSL is set up once and for all by the first attach: let that
       happen with room. */
    int h = tls_both(s, dgram, &client);
    if(dgram) check_messages(client, h);
    else check_stream(client, h);
    CHECK(hclose(client) == 0 && hclose(h) == 0);
    struct tls_storage tmem;
    struct dtls_storage dmem;
    for(int mem = 0; mem < 2; mem++) {
        if(dgram) udp_pair(s);
        else CHECK(ipc_pair(s) == 0);
        struct census c = census();
        squeeze(0);
        if(dgram && mem)
            CHECK_ERR(dtls_attach_server_mem(s[1], cert, key, &dmem, SOON),
                EMFILE);
        else if(dgram)
            CHECK_ERR(dtls_attach_server(s[1], cert, key, SOON), EMFILE);
        else if(mem)
            CHECK_ERR(tls_attach_server_mem(s[1], cert, key, &tmem, SOON),
                EMFILE);
        else
            CHECK_ERR(tls_attach_server(s[1], cert, key, SOON), EMFILE);
        release();
        check_census(&c, -1, -1);
        CHECK_ERR(hclose(s[1]), EBADF);
        CHECK(hclose(s[0]) == 0);
    }
    if(dgram) udp_pair(s);
    else CHECK(ipc_pair(s) == 0);
    h = tls_both(s, dgram, &client);
    if(dgram) check_messages(client, h);
    else check_stream(client, h);
    CHECK(hclose(client) == 0 && hclose(h) == 0);
}

#endif

/* ---- Calls that make no descriptor --------------------------------------- */

coroutine static void idle(void) {
    msleep(-1);
}

/* Channels, bundles, coroutines and timers are memory only, and waiting
   on a descriptor takes none. */
static void test_no_descriptor(void) {
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    CHECK(write(fds[0], "x", 1) == 1);
    struct chstorage chmem;
    struct census c = census();
    squeeze(0);
    int ch[2], ch2[2];
    CHECK(chmake(ch) == 0);
    CHECK(chmake_mem(&chmem, ch2) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, idle()) == 0);
    int cr = go(idle());
    CHECK(cr >= 0);
    int moved = hown(cr);
    CHECK(moved >= 0);
    CHECK(yield() == 0);
    CHECK(msleep(now() + 1) == 0);
    CHECK(fdin(fds[1], SOON) == 0);
    CHECK(fdout(fds[1], SOON) == 0);
    CHECK(hclose(moved) == 0 && hclose(b) == 0);
    CHECK(hclose(ch[0]) == 0 && hclose(ch[1]) == 0);
    CHECK(hclose(ch2[0]) == 0 && hclose(ch2[1]) == 0);
    CHECK(fdclean(fds[1]) == 0);
    release();
    check_census(&c, 0, 0);
    CHECK(close(fds[0]) == 0 && close(fds[1]) == 0);
}

/* A thread's first libdill call makes its scheduler, whose poller (epoll,
   kqueue) holds a descriptor: with none free that call fails with EMFILE,
   nothing is left of the attempt, and the thread's next call, with room,
   makes it. The poll backend needs no descriptor. */
struct first_calls {
    sem_t failed, released;
    int rc[2], err[2];
};

static void *two_first_calls(void *arg) {
    struct first_calls *fc = arg;
    int ch[2];
    for(int i = 0; i < 2; i++) {
        errno = 0;
        fc->rc[i] = chmake(ch);
        fc->err[i] = errno;
        if(i == 0 && fc->rc[0] == 0)
            CHECK(hclose(ch[0]) == 0 && hclose(ch[1]) == 0);
        if(i == 0) {
            CHECK(sem_post(&fc->failed) == 0);
            CHECK(sem_wait(&fc->released) == 0);
        }
    }
    CHECK(hclose(ch[0]) == 0 && hclose(ch[1]) == 0);
    return NULL;
}

static void test_thread_context(void) {
    struct first_calls fc;
    CHECK(sem_init(&fc.failed, 0, 0) == 0);
    CHECK(sem_init(&fc.released, 0, 0) == 0);
    int fds = fd_count();
    /* The thread itself takes no descriptor. */
    squeeze(0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, two_first_calls, &fc) == 0);
    CHECK(sem_wait(&fc.failed) == 0);
#if defined DILL_POLLER_HOLDS_FD
    CHECK(fc.rc[0] == -1 && fc.err[0] == EMFILE);
#else
    CHECK(fc.rc[0] == 0);
#endif
    release();
    CHECK(sem_post(&fc.released) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(fc.rc[1] == 0);
    /* The thread's scheduler went with it. */
    CHECK(fd_count() == fds);
    CHECK(sem_destroy(&fc.failed) == 0 && sem_destroy(&fc.released) == 0);
}

/* ---- The environment ------------------------------------------------------ */

static void write_file(const char *name, const char *text) {
    FILE *f = fopen(name, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

/* Mount and network namespaces of our own, lo up, and a tmpfs over /etc
   with the resolver's files only. */
static void enter_namespaces(void) {
    if(unshare(CLONE_NEWNS | CLONE_NEWNET) < 0) {
        fprintf(stderr, "tests/emfile: FAIL: unshare(CLONE_NEWNS | "
            "CLONE_NEWNET): %s. This test must run as root on a machine "
            "that allows mount and network namespaces (CI does).\n",
            strerror(errno));
        exit(1);
    }
    CHECK(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0);
    CHECK(mount("tmpfs", "/etc", "tmpfs", 0, "mode=755") == 0);
    write_file("/etc/resolv.conf",
        "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n");
    write_file("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n");
    write_file("/etc/nsswitch.conf", "hosts: files dns\n");
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
    ifr.ifr_flags |= IFF_UP;
    CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
    CHECK(close(s) == 0);
}

int main(void) {
    dir = peer_dir("emfile");
#if defined HAVE_TLS
    /* Before the namespaces: the openssl command reads its configuration
       from /etc. */
    make_certs();
#endif
    enter_namespaces();
    struct ipaddr ns;
    loopback(&ns, 53);
    int u = udp_open(&ns, NULL);
    CHECK(u >= 0);
    int l = tcp_listen(&ns, 10);
    CHECK(l >= 0);
    int servers = bundle();
    CHECK(servers >= 0);
    CHECK(bundle_go(servers, dns_udp(u)) == 0);
    CHECK(bundle_go(servers, dns_tcp(l)) == 0);

    int fds = fd_count();
    test_no_descriptor();
    test_thread_context();
    test_tcp_listen();
    test_tcp_connect_accept();
    test_tcp_fromfd();
    test_ipc_listen();
    test_ipc_connect_accept();
    test_ipc_pair();
    test_ipc_fromfd();
    test_ipc_recvfd();
    test_udp_open();
    test_ipaddr_local();
    test_resolver_files();
    test_resolver_udp();
    test_resolver_tcp();
    test_happyeyeballs();
#if defined HAVE_TLS
    test_tls_server(0);
    test_tls_server(1);
#endif
    CHECK(fd_count() == fds);

    CHECK(hclose(servers) == 0 && hclose(u) == 0 && hclose(l) == 0);
    return 0;
}
