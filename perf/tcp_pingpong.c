/*
 * perf/tcp_pingpong.c: TCP echo ping-pong over loopback, one connection,
 * 64-byte messages, and the same work done by a hand-written epoll loop in
 * the same program.
 *
 * Both sides run in one thread in both versions, so the figures compare
 * the event machinery and nothing else (no cross-CPU wake-ups):
 * - libdill: the client is main, the echo server a coroutine; each side
 *   does bsend then brecv of 64 bytes, parking in the scheduler when
 *   nothing has arrived.
 * - raw: both non-blocking sockets registered once (level-triggered
 *   EPOLLIN) in one epoll set; epoll_wait, then recv on each ready socket,
 *   and send the echo or the next ping straight away.
 * Neither sets TCP_NODELAY (libdill does not). Each version runs 15
 * times on a fresh connection, alternating; the best run of each counts.
 * Many short runs rather than a few long ones: this machine's speed drifts
 * by 10-20% over seconds, and a run caught in a slow spell only counts
 * when every run of its side was.
 * Prints ns per round trip for both and the ratio of the rates
 * (libdill / raw; target >= 0.97).
 */
#include <fcntl.h>
#include <libdill.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "perf.h"

#if defined __linux__
#include <sys/epoll.h>
#endif

#define MSG 64
#define TRIPS 30000
#define WARMUP 2000
#define ROUNDS 15
#define TARGET 0.97

/* ---- libdill ------------------------------------------------------------- */

static coroutine void echo(int s, int trips) {
    char buf[MSG];
    for(int i = 0; i < trips; i++) {
        PERF_CHECK(brecv(s, buf, MSG, -1) == 0);
        PERF_CHECK(bsend(s, buf, MSG, -1) == 0);
    }
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
    int cr = go(echo(s, WARMUP + TRIPS));
    PERF_CHECK(cr >= 0);
    char msg[MSG], buf[MSG];
    memset(msg, 'p', sizeof(msg));
    int64_t start = 0;
    for(int i = 0; i < WARMUP + TRIPS; i++) {
        if(i == WARMUP) start = perf_ns();
        PERF_CHECK(bsend(c, msg, MSG, -1) == 0);
        PERF_CHECK(brecv(c, buf, MSG, -1) == 0);
    }
    int64_t ns = perf_ns() - start;
    PERF_CHECK(memcmp(msg, buf, MSG) == 0);
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

/* A 64-byte message being received; returns 1 once it is complete. */
static int recv_msg(int fd, char *buf, size_t *have) {
    ssize_t n = recv(fd, buf + *have, MSG - *have, 0);
    if(n < 0 && errno == EAGAIN) return 0;
    PERF_CHECK(n > 0);
    *have += (size_t)n;
    if(*have < MSG) return 0;
    *have = 0;
    return 1;
}

/* 64 bytes always fit in an idle connection's send buffer. */
static void send_msg(int fd, const char *buf) {
    PERF_CHECK(send(fd, buf, MSG, MSG_NOSIGNAL) == MSG);
}

static int64_t run_raw(void) {
    int c, s;
    raw_pair(&c, &s);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    PERF_CHECK(ep >= 0);
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
    ev.data.fd = c;
    PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) == 0);
    ev.data.fd = s;
    PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
    char msg[MSG], cbuf[MSG], sbuf[MSG];
    memset(msg, 'p', sizeof(msg));
    size_t chave = 0, shave = 0;
    int trips = 0;
    int64_t start = 0;
    send_msg(c, msg);
    while(trips < WARMUP + TRIPS) {
        struct epoll_event events[2];
        int n = epoll_wait(ep, events, 2, -1);
        if(n < 0 && errno == EINTR) continue;
        PERF_CHECK(n > 0);
        for(int i = 0; i < n; i++) {
            if(events[i].data.fd == s) {
                if(recv_msg(s, sbuf, &shave)) send_msg(s, sbuf);
                continue;
            }
            if(!recv_msg(c, cbuf, &chave)) continue;
            trips++;
            if(trips == WARMUP) start = perf_ns();
            if(trips < WARMUP + TRIPS) send_msg(c, msg);
        }
    }
    int64_t ns = perf_ns() - start;
    PERF_CHECK(memcmp(msg, cbuf, MSG) == 0);
    close(ep);
    close(c);
    close(s);
    return ns;
}

#endif

int main(void) {
    int64_t best_dill = INT64_MAX;
#if defined __linux__
    int64_t best_raw = INT64_MAX;
#endif
    /* Alternate which version goes first, so that neither always runs on
       a machine the other has just warmed up (or heated up). */
    for(int r = 0; r < ROUNDS; r++) {
        for(int k = 0; k < 2; k++) {
            if((r + k) % 2 == 0) {
                int64_t dill = run_dill();
                if(dill < best_dill) best_dill = dill;
                continue;
            }
#if defined __linux__
            int64_t raw = run_raw();
            if(raw < best_raw) best_raw = raw;
#endif
        }
    }
    perf_report("tcp_pingpong_dill", best_dill, TRIPS);
#if defined __linux__
    perf_report("tcp_pingpong_raw", best_raw, TRIPS);
    double ratio = (double)best_raw / (double)best_dill;
    printf("tcp_pingpong_ratio: %.3f (libdill rate / raw epoll rate; "
        "target >= %.2f)%s\n", ratio, TARGET,
        ratio < TARGET ? " MISSED" : "");
#else
    printf("tcp_pingpong_raw: no epoll on this system, no baseline\n");
#endif
    return 0;
}
