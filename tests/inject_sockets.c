/*
 * tests/inject_sockets.c: allocation failures in the sockets (see
 * tests/inject.h): TCP and IPC listeners, connections, accepts, sends and
 * receives (the read-ahead buffer), done and close, the _mem variants,
 * *_fromfd (on failure the caller still owns its descriptor), IPC pairs
 * and descriptor passing, UDP (long I/O lists, dropped bytes, msend and
 * mrecv), ipaddr_local/ipaddr_remote(s) with literals and with
 * "localhost", and happyeyeballs_connect to a literal address. Everything
 * runs on loopback in one coroutine: the kernel's queues let one side act
 * before the other.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"
#include "inject.h"

static char ipc_path[256];

/* The handle in *h, which is dead from now on whatever the call taking it
   does with it. */
static int take(int *h) {
    int v = *h;
    *h = -1;
    return v;
}

static void close_all(int *hs, int n) {
    for(int i = n - 1; i >= 0; i--)
        if(hs[i] >= 0) CHECK(hclose(hs[i]) == 0);
}

/* Sends once the other side waits for it. */
coroutine static void send_later(int s, const char *msg, size_t len) {
    if(!OK_OR(yield(), ECANCELED)) return;
    OK_OR(bsend(s, msg, len, inject_deadline()), ECANCELED);
}

/* A request one way, sent before it is received; a reply the other way,
   which the receiver has to wait for: a TCP connection gets its
   read-ahead buffer then, and epoll a change of interest. */
static int exchange(int a, int b) {
    char buf[6] = {0};
    int cr = -1, rc = -1;
    if(!OK(bsend(a, "hello", 5, inject_deadline()))) goto out;
    if(!OK(brecv(b, buf, 5, inject_deadline()))) goto out;
    CHECK(strcmp(buf, "hello") == 0);
    if(!OK(cr = go(send_later(b, "world!", 6)))) goto out;
    /* A byte at a time: the read-ahead buffer serves the rest. */
    for(int i = 0; i < 6; i++)
        if(!OK(brecv(a, buf + i, 1, inject_deadline()))) goto out;
    CHECK(memcmp(buf, "world!", 6) == 0);
    if(!OK(bundle_wait(cr, inject_deadline()))) goto out;
    rc = 0;
out:
    if(cr >= 0) CHECK(hclose(cr) == 0);
    return rc;
}

/* The orderly end of a connection: done on one side, close on both. */
static int finish(int *a, int *b, int (*done)(int, int64_t),
      int (*close_fn)(int, int64_t)) {
    if(!OK(done(*a, inject_deadline()))) return -1;
    if(!OK(close_fn(take(b), inject_deadline()))) return -1;
    if(!OK(close_fn(take(a), inject_deadline()))) return -1;
    return 0;
}

/* ---- TCP ---------------------------------------------------------------- */

static void run_tcp(void) {
    struct dill_ipaddr addr;
    int h[3] = {-1, -1, -1}; /* listener, client, server */
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, 0) == 0);
    if(!OK(h[0] = tcp_listen(&addr, 10))) goto out;
    if(!OK(h[1] = tcp_connect(&addr, inject_deadline()))) goto out;
    struct dill_ipaddr peer;
    if(!OK(h[2] = tcp_accept(h[0], &peer, inject_deadline()))) goto out;
    if(exchange(h[1], h[2]) < 0) goto out;
    if(finish(&h[1], &h[2], tcp_done, tcp_close) < 0) goto out;
    if(!OK(tcp_close(take(&h[0]), inject_deadline()))) goto out;
out:
    close_all(h, 3);
}

static void run_tcp_mem(void) {
    struct dill_tcp_listener_storage lmem;
    struct dill_tcp_storage cmem, smem;
    struct dill_ipaddr addr;
    int h[3] = {-1, -1, -1};
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, 0) == 0);
    if(!OK(h[0] = tcp_listen_mem(&addr, 10, &lmem))) goto out;
    if(!OK(h[1] = tcp_connect_mem(&addr, &cmem, inject_deadline()))) goto out;
    if(!OK(h[2] = tcp_accept_mem(h[0], NULL, &smem, inject_deadline())))
        goto out;
    if(exchange(h[1], h[2]) < 0) goto out;
    if(finish(&h[1], &h[2], tcp_done, tcp_close) < 0) goto out;
out:
    close_all(h, 3);
}

/* A failed *_fromfd leaves the descriptor to the caller: still open. */
static int adopt(int (*fromfd)(int), int fd) {
    int h;
    if(OK(h = fromfd(fd))) return h;
    CHECK(fcntl(fd, F_GETFD) >= 0);
    CHECK(close(fd) == 0);
    return -1;
}

static void run_tcp_fromfd(void) {
    int h[3] = {-1, -1, -1};
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    CHECK(listen(lfd, 10) == 0);
    socklen_t len = sizeof(sin);
    CHECK(getsockname(lfd, (struct sockaddr *)&sin, &len) == 0);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(cfd >= 0);
    CHECK(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    if((h[0] = adopt(tcp_listener_fromfd, lfd)) < 0) {
        CHECK(close(cfd) == 0);
        goto out;
    }
    if((h[1] = adopt(tcp_fromfd, cfd)) < 0) goto out;
    if(!OK(h[2] = tcp_accept(h[0], NULL, inject_deadline()))) goto out;
    if(exchange(h[1], h[2]) < 0) goto out;
out:
    close_all(h, 3);
}

/* ---- IPC ---------------------------------------------------------------- */

/* Pass one end of a pipe across: what arrives is the same pipe. */
static int pass_fd(int a, int b) {
    int p[2];
    CHECK(pipe(p) == 0);
    int fd = -1, rc = -1;
    if(!OK(ipc_sendfd(a, p[1], inject_deadline()))) goto out;
    if(!OK(fd = ipc_recvfd(b, inject_deadline()))) goto out;
    CHECK(write(fd, "x", 1) == 1);
    char c;
    CHECK(read(p[0], &c, 1) == 1 && c == 'x');
    CHECK(close(fd) == 0);
    rc = 0;
out:
    CHECK(close(p[0]) == 0);
    CHECK(close(p[1]) == 0);
    return rc;
}

static void run_ipc(void) {
    int h[3] = {-1, -1, -1};
    unlink(ipc_path);
    if(!OK(h[0] = ipc_listen(ipc_path, 10))) goto out;
    if(!OK(h[1] = ipc_connect(ipc_path, inject_deadline()))) goto out;
    if(!OK(h[2] = ipc_accept(h[0], inject_deadline()))) goto out;
    if(exchange(h[1], h[2]) < 0) goto out;
    if(pass_fd(h[1], h[2]) < 0) goto out;
    if(finish(&h[1], &h[2], ipc_done, ipc_close) < 0) goto out;
    if(!OK(ipc_close(take(&h[0]), inject_deadline()))) goto out;
out:
    close_all(h, 3);
}

static void run_ipc_mem(void) {
    struct dill_ipc_listener_storage lmem;
    struct dill_ipc_storage cmem, smem;
    struct dill_ipc_pair_storage pmem;
    int h[5] = {-1, -1, -1, -1, -1};
    unlink(ipc_path);
    if(!OK(h[0] = ipc_listen_mem(ipc_path, 10, &lmem))) goto out;
    if(!OK(h[1] = ipc_connect_mem(ipc_path, &cmem, inject_deadline())))
        goto out;
    if(!OK(h[2] = ipc_accept_mem(h[0], &smem, inject_deadline()))) goto out;
    if(exchange(h[1], h[2]) < 0) goto out;
    if(!OK(ipc_pair_mem(&pmem, &h[3]))) goto out;
    if(exchange(h[3], h[4]) < 0) goto out;
out:
    close_all(h, 5);
}

static void run_ipc_pair(void) {
    int h[2] = {-1, -1};
    if(!OK(ipc_pair(h))) goto out;
    if(exchange(h[0], h[1]) < 0) goto out;
    if(pass_fd(h[1], h[0]) < 0) goto out;
    if(finish(&h[0], &h[1], ipc_done, ipc_close) < 0) goto out;
out:
    close_all(h, 2);
}

static void run_ipc_fromfd(void) {
    int h[3] = {-1, -1, -1};
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    if((h[0] = adopt(ipc_fromfd, fds[0])) < 0) {
        CHECK(close(fds[1]) == 0);
        goto out;
    }
    if((h[1] = adopt(ipc_fromfd, fds[1])) < 0) goto out;
    if(exchange(h[0], h[1]) < 0) goto out;
    unlink(ipc_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, ipc_path);
    CHECK(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    CHECK(listen(lfd, 10) == 0);
    if((h[2] = adopt(ipc_listener_fromfd, lfd)) < 0) goto out;
out:
    close_all(h, 3);
}

/* ---- UDP ---------------------------------------------------------------- */

/* More pieces than the 16 iovecs kept on the stack. */
#define PIECES 20

static void run_udp(void) {
    struct dill_udp_storage mem;
    struct dill_ipaddr a, b, from;
    int h[2] = {-1, -1};
    CHECK(ipaddr_local(&a, "127.0.0.1", 0, 0) == 0);
    CHECK(ipaddr_local(&b, "127.0.0.1", 0, 0) == 0);
    if(!OK(h[0] = udp_open(&a, NULL))) goto out;
    if(!OK(h[1] = udp_open_mem(&b, &a, &mem))) goto out;
    char buf[PIECES + 1] = {0};
    if(!OK(udp_send(h[0], &b, "0123456789abcdefghij", PIECES))) goto out;
    ssize_t n;
    if(!OK(n = udp_recv(h[1], &from, buf, sizeof(buf), inject_deadline())))
        goto out;
    CHECK(n == PIECES && memcmp(buf, "0123456789abcdefghij", PIECES) == 0);
    CHECK(ipaddr_equal(&from, &a, 0));
    /* A long list out, a long list in, the middle pieces dropped. */
    struct dill_iolist out[PIECES], in[PIECES];
    for(int i = 0; i < PIECES; i++) {
        out[i] = (struct dill_iolist){&"0123456789abcdefghij"[i], 1,
            i + 1 < PIECES ? &out[i + 1] : NULL, 0};
        in[i] = (struct dill_iolist){i % 2 ? NULL : &buf[i], 1,
            i + 1 < PIECES ? &in[i + 1] : NULL, 0};
    }
    memset(buf, 0, sizeof(buf));
    if(!OK(msendl(h[1], &out[0], &out[PIECES - 1], inject_deadline())))
        goto out;
    if(!OK(n = udp_recvl(h[0], NULL, &in[0], &in[PIECES - 1],
          inject_deadline())))
        goto out;
    CHECK(n == PIECES && buf[0] == '0' && buf[1] == 0 && buf[18] == 'i');
    if(!OK(udp_sendl(h[0], &b, &out[0], &out[PIECES - 1]))) goto out;
    if(!OK(n = mrecv(h[1], buf, sizeof(buf), inject_deadline()))) goto out;
    CHECK(n == PIECES);
out:
    close_all(h, 2);
}

/* ---- Addresses and happy eyeballs --------------------------------------- */

static void run_ipaddr(void) {
    struct dill_ipaddr a[4];
    if(!OK(ipaddr_local(&a[0], "127.0.0.1", 80, 0))) return;
    if(!OK(ipaddr_local(&a[0], NULL, 80, DILL_IPADDR_IPV6))) return;
    if(!OK(ipaddr_remote(&a[0], "127.0.0.1", 80, 0, inject_deadline())))
        return;
    CHECK(ipaddr_port(&a[0]) == 80);
    int n;
    if(!OK(n = ipaddr_remotes(a, 4, "::1", 80, 0, inject_deadline())))
        return;
    CHECK(n == 1 && ipaddr_family(&a[0]) == AF_INET6);
}

/* The hosts file (read into the resolver's cache) or the loopback
   answer: either way no DNS server is asked. */
static void run_localhost(void) {
    struct dill_ipaddr a[4];
    int n;
    if(!OK(n = ipaddr_remotes(a, 4, "localhost", 80, DILL_IPADDR_IPV4,
          inject_deadline())))
        return;
    CHECK(n >= 1 && ipaddr_family(&a[0]) == AF_INET);
    if(!OK(ipaddr_remote(&a[0], "localhost", 80, 0, inject_deadline())))
        return;
}

static void run_happyeyeballs(void) {
    struct dill_ipaddr addr;
    int h[3] = {-1, -1, -1};
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, 0) == 0);
    if(!OK(h[0] = tcp_listen(&addr, 10))) goto out;
    if(!OK(h[1] = happyeyeballs_connect("127.0.0.1", ipaddr_port(&addr),
          inject_deadline())))
        goto out;
    if(!OK(h[2] = tcp_accept(h[0], NULL, inject_deadline()))) goto out;
    if(exchange(h[1], h[2]) < 0) goto out;
out:
    close_all(h, 3);
}

int main(void) {
    char dir[] = "/tmp/dill-inject-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(ipc_path, sizeof(ipc_path), "%s/sock", dir);
    static const struct scenario scenarios[] = {
        {"tcp", run_tcp},
        {"tcp_mem", run_tcp_mem},
        {"tcp_fromfd", run_tcp_fromfd},
        {"ipc", run_ipc},
        {"ipc_mem", run_ipc_mem},
        {"ipc_pair", run_ipc_pair},
        {"ipc_fromfd", run_ipc_fromfd},
        {"udp", run_udp},
        {"ipaddr", run_ipaddr},
        /* The resolver reads its files once per process: a fresh one for
           each run, so that each of their allocations is made to fail. */
        {"localhost", run_localhost, 1},
        {"happyeyeballs", run_happyeyeballs},
    };
    inject_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
    unlink(ipc_path);
    CHECK(rmdir(dir) == 0);
    return 0;
}
