/*
 * perf/tcp_stream.c: streaming throughput over one loopback TCP
 * connection, 256 MiB sent in 64 KiB writes and received in 64 KiB reads,
 * and the same work done by a hand-written epoll loop in the same program.
 *
 * Both sides run in one thread in both versions:
 * - libdill: a sender coroutine calls bsend 4,096 times with 64 KiB;
 *   main calls brecv for 64 KiB until it has 256 MiB.
 * - raw: both non-blocking sockets in one epoll set (sender EPOLLOUT,
 *   receiver EPOLLIN, level-triggered); on readiness the sender sends
 *   from its 64 KiB buffer until EAGAIN and the receiver reads 64 KiB at a
 *   time until EAGAIN.
 * Each version runs 11 times on a fresh connection, alternating, and the
 * median run of each counts, not the best: most runs of either version
 * take within 10 % of each other, but now and then one runs up to twice
 * as fast as the rest (seen for both), and the best of a few runs then
 * says which version was lucky (ratios from 0.61 to 1.80 between runs of
 * the same build). Both versions make the same system calls: one recv and
 * one send per 64 KiB, and an epoll_wait per 32 (counted with an
 * LD_PRELOAD wrapper). Prints ns per 64 KiB write and MB/s for both, and
 * the ratio of the rates (libdill / raw; target >= 0.95).
 */
#include <fcntl.h>
#include <libdill.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "perf.h"

#if defined __linux__
#include <sys/epoll.h>
#endif

#define CHUNK 65536
#define TOTAL ((int64_t)1 << 28)
#define WRITES ((int)(TOTAL / CHUNK))
#define ROUNDS 11
#define TARGET 0.95

static char sbuf[CHUNK];
static char rbuf[CHUNK];

/* ---- libdill ------------------------------------------------------------- */

static coroutine void sender(int s) {
    for(int i = 0; i < WRITES; i++)
        PERF_CHECK(bsend(s, sbuf, CHUNK, -1) == 0);
}

static int64_t run_dill(void) {
    struct ipaddr addr;
    PERF_CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int l = tcp_listen(&addr, 10);
    PERF_CHECK(l >= 0);
    int c = tcp_connect(&addr, -1);
    PERF_CHECK(c >= 0);
    int s = tcp_accept(l, NULL, -1);
    PERF_CHECK(s >= 0);
    int64_t start = perf_ns();
    int cr = go(sender(c));
    PERF_CHECK(cr >= 0);
    for(int i = 0; i < WRITES; i++)
        PERF_CHECK(brecv(s, rbuf, CHUNK, -1) == 0);
    int64_t ns = perf_ns() - start;
    PERF_CHECK(rbuf[0] == sbuf[0] && rbuf[CHUNK - 1] == sbuf[CHUNK - 1]);
    PERF_CHECK(bundle_wait(cr, -1) == 0);
    PERF_CHECK(hclose(cr) == 0);
    PERF_CHECK(hclose(s) == 0);
    PERF_CHECK(hclose(c) == 0);
    PERF_CHECK(hclose(l) == 0);
    return ns;
}

/* ---- raw epoll ------------------------------------------------------------ */

#if defined __linux__

static void nonblock(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    PERF_CHECK(flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
}

/* A connected pair over loopback: c the client end, s the server end. */
static void raw_pair(int *c, int *s) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    PERF_CHECK(l >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    PERF_CHECK(bind(l, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    PERF_CHECK(listen(l, 10) == 0);
    socklen_t len = sizeof(sin);
    PERF_CHECK(getsockname(l, (struct sockaddr *)&sin, &len) == 0);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    PERF_CHECK(*c >= 0);
    PERF_CHECK(connect(*c, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    *s = accept(l, NULL, NULL);
    PERF_CHECK(*s >= 0);
    close(l);
    nonblock(*c);
    nonblock(*s);
}

static int64_t run_raw(void) {
    int c, s;
    raw_pair(&c, &s);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    PERF_CHECK(ep >= 0);
    struct epoll_event ev = {0};
    ev.events = EPOLLOUT;
    ev.data.fd = c;
    PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0);
    ev.events = EPOLLIN;
    ev.data.fd = s;
    PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
    int64_t sent = 0, received = 0;
    size_t off = 0; /* into the current 64 KiB write */
    int64_t start = perf_ns();
    while(received < TOTAL) {
        struct epoll_event events[2];
        int n = epoll_wait(ep, events, 2, -1);
        if(n < 0 && errno == EINTR) continue;
        PERF_CHECK(n > 0);
        for(int i = 0; i < n; i++) {
            if(events[i].data.fd == c) {
                while(sent < TOTAL) {
                    ssize_t k = send(c, sbuf + off, CHUNK - off, MSG_NOSIGNAL);
                    if(k < 0 && errno == EAGAIN) break;
                    PERF_CHECK(k > 0);
                    sent += k;
                    off = (off + (size_t)k) % CHUNK;
                }
                if(sent == TOTAL)
                    PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, c, NULL) == 0);
                continue;
            }
            for(;;) {
                ssize_t k = recv(s, rbuf, CHUNK, 0);
                if(k < 0 && errno == EAGAIN) break;
                PERF_CHECK(k > 0);
                received += k;
            }
        }
    }
    int64_t ns = perf_ns() - start;
    PERF_CHECK(received == TOTAL);
    close(ep);
    close(c);
    close(s);
    return ns;
}

#endif

static void report(const char *name, int64_t ns) {
    perf_report(name, ns, WRITES);
    printf("%s: %.0f MB/s\n", name, (double)TOTAL / 1e6 / ((double)ns / 1e9));
}

static int cmp_ns(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t median(int64_t *ns, int n) {
    qsort(ns, (size_t)n, sizeof(ns[0]), cmp_ns);
    return ns[n / 2];
}

int main(void) {
    for(int i = 0; i < CHUNK; i++) sbuf[i] = (char)(i * 7);
    int64_t dill_ns[ROUNDS];
#if defined __linux__
    int64_t raw_ns[ROUNDS];
#endif
    /* Alternate which version goes first, so that neither always runs on
       a machine the other has just warmed up (or heated up). */
    for(int r = 0; r < ROUNDS; r++) {
        for(int k = 0; k < 2; k++) {
            if((r + k) % 2 == 0) {
                dill_ns[r] = run_dill();
                continue;
            }
#if defined __linux__
            raw_ns[r] = run_raw();
#endif
        }
    }
    int64_t mid_dill = median(dill_ns, ROUNDS);
#if defined __linux__
    int64_t mid_raw = median(raw_ns, ROUNDS);
#endif
    report("tcp_stream_dill", mid_dill);
#if defined __linux__
    report("tcp_stream_raw", mid_raw);
    double ratio = (double)mid_raw / (double)mid_dill;
    printf("tcp_stream_ratio: %.3f (libdill rate / raw epoll rate, median "
        "of %d each; target >= %.2f)%s\n", ratio, ROUNDS, TARGET,
        ratio < TARGET ? " MISSED" : "");
#else
    printf("tcp_stream_raw: no epoll on this system, no baseline\n");
#endif
    return 0;
}
