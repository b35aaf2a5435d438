/*
 * perf/tcp_idle.c: what an idle TCP connection costs. A server accepts
 * 10,000 loopback connections and gives each one a coroutine that waits in
 * brecv for a 64-byte request (what an echo server's handler does between
 * requests). Prints the server's CPU time per connection (tcp_accept +
 * bundle_go + the handler's first brecv) and the resident memory each
 * connection adds, next to the same figures for a hand-written epoll
 * server in the same program (accept, O_NONBLOCK, a malloc'd state with a
 * 64-byte buffer, epoll_ctl).
 *
 * Each server runs in a child process of its own, so that neither sees the
 * other's freed memory, and the 10,000 client ends live in a process the
 * server spawns (they would not fit under a 20,000-descriptor limit beside
 * the server ends; see start_clients for why not a fork). CPU time rather than wall time, because the server also waits for
 * the clients to connect. At the end every connection sends one request
 * and gets its echo, which proves that all the handlers were waiting.
 *
 * Two figures: cold, the first batch of a new server process, and warm,
 * the second batch after a first one was served and closed (the kernel's
 * socket caches and the library's tables have grown; the stacks of the
 * finished coroutines were given back with MADV_FREE, and are used again
 * with no page fault while the kernel has not needed their pages).
 */
#include <fcntl.h>
#include <libdill.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "perf.h"

extern char **environ;

#if defined __linux__
#include <sys/epoll.h>
#endif

#define CONNS 10000
#define MSG 64
#define ROUNDS 5

/* What a server process reports to main. */
struct result {
    int64_t cpu_ns;  /* server CPU time to accept and set up them all */
    long rss_kib;    /* resident memory they added */
};

/* ---- The client ends ---------------------------------------------------- */

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while(len) {
        ssize_t n = write(fd, p, len);
        if(n < 0 && errno == EINTR) continue;
        PERF_CHECK(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static void read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while(len) {
        ssize_t n = read(fd, p, len);
        if(n < 0 && errno == EINTR) continue;
        PERF_CHECK(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Runs in the grandchild: CONNS blocking connects, then, when told to
   (one byte on go), one request and its echo on every connection, and a
   byte on done when all echoes are back. Exits when go is closed. */
static void clients(const struct sockaddr_in *sin, int go, int done) {
    static int fds[CONNS];
    for(int i = 0; i < CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        PERF_CHECK(fds[i] >= 0);
        PERF_CHECK(connect(fds[i], (const struct sockaddr *)sin,
            sizeof(*sin)) == 0);
    }
    char c;
    read_all(go, &c, 1);
    char msg[MSG], echo[MSG];
    memset(msg, 'q', sizeof(msg));
    for(int i = 0; i < CONNS; i++) write_all(fds[i], msg, MSG);
    for(int i = 0; i < CONNS; i++) {
        read_all(fds[i], echo, MSG);
        PERF_CHECK(memcmp(msg, echo, MSG) == 0);
    }
    write_all(done, "d", 1);
    /* Wait for the server to hang up, then leave without lingering. */
    PERF_CHECK(read(go, &c, 1) == 0);
    struct linger lng = {1, 0};
    for(int i = 0; i < CONNS; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lng, sizeof(lng));
        close(fds[i]);
    }
    _exit(0);
}

/* Starts the clients against the listener on sin. They run in a process
   made by posix_spawn from this program (main sees the arguments), not in
   a forked copy of the server: a fork shares the server's memory
   copy-on-write while the clients live, and every page the server writes
   during the batch, each coroutine stack included, would fault (about 2 us
   each here), a cost of the benchmark, not of either server. */
static pid_t start_clients(const struct sockaddr_in *sin, int *go,
      int *done) {
    int g[2], d[2];
    PERF_CHECK(pipe(g) == 0 && pipe(d) == 0);
    char port[16], gofd[16], donefd[16];
    snprintf(port, sizeof(port), "%d", ntohs(sin->sin_port));
    snprintf(gofd, sizeof(gofd), "%d", g[0]);
    snprintf(donefd, sizeof(donefd), "%d", d[1]);
#if defined __linux__
    char *argv[] = {"tcp_idle", "--clients", port, gofd, donefd, NULL};
    /* The ends the clients do not use are closed there. */
    posix_spawn_file_actions_t fa;
    PERF_CHECK(posix_spawn_file_actions_init(&fa) == 0);
    PERF_CHECK(posix_spawn_file_actions_addclose(&fa, g[1]) == 0);
    PERF_CHECK(posix_spawn_file_actions_addclose(&fa, d[0]) == 0);
    pid_t pid;
    PERF_CHECK(posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv,
        environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
#else
    /* No /proc/self/exe to start again: a forked copy. */
    pid_t pid = fork();
    PERF_CHECK(pid >= 0);
    if(pid == 0) {
        close(g[1]);
        close(d[0]);
        clients(sin, g[0], d[1]);
    }
#endif
    close(g[0]);
    close(d[1]);
    *go = g[1];
    *done = d[0];
    return pid;
}

/* The clients' process: tcp_idle --clients PORT GO_FD DONE_FD. */
static void clients_main(char **argv) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)atoi(argv[2]));
    clients(&sin, atoi(argv[3]), atoi(argv[4]));
}

static void stop_clients(pid_t pid, int go, int done) {
    close(go);
    close(done);
    int status;
    PERF_CHECK(waitpid(pid, &status, 0) == pid);
    PERF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- libdill server ------------------------------------------------------ */

/* Waits for one request, echoes it, then waits for the client to hang
   up. */
static coroutine void handler(int s) {
    char buf[MSG];
    PERF_CHECK(brecv(s, buf, MSG, -1) == 0);
    PERF_CHECK(bsend(s, buf, MSG, -1) == 0);
    int rc = brecv(s, buf, 1, -1);
    PERF_CHECK(rc == -1 && (errno == EPIPE || errno == ECONNRESET));
    PERF_CHECK(hclose(s) == 0);
}

/* One batch: CONNS connections accepted, each given its handler, served
   and closed. */
static void dill_batch(int l, const struct sockaddr_in *sin,
      struct result *res) {
    int b = bundle();
    PERF_CHECK(b >= 0);
    int go, done;
    pid_t pid = start_clients(sin, &go, &done);
    long before = perf_rss_kib();
    PERF_CHECK(before >= 0);
    int64_t start = perf_cpu_ns();
    for(int i = 0; i < CONNS; i++) {
        int s = tcp_accept(l, NULL, -1);
        PERF_CHECK(s >= 0);
        PERF_CHECK(bundle_go(b, handler(s)) == 0);
    }
    /* Every handler has run up to its brecv. */
    PERF_CHECK(yield() == 0);
    res->cpu_ns = perf_cpu_ns() - start;
    res->rss_kib = perf_rss_kib() - before;
    /* The requests, and the echoes, while main waits in the scheduler. */
    write_all(go, "g", 1);
    PERF_CHECK(fdin(done, -1) == 0);
    char c;
    read_all(done, &c, 1);
    /* Its number comes back in the next batch: the poller must forget it. */
    PERF_CHECK(fdclean(done) == 0);
    /* The clients hang up; the handlers see it and finish. */
    stop_clients(pid, go, done);
    PERF_CHECK(bundle_wait(b, -1) == 0);
    PERF_CHECK(hclose(b) == 0);
}

static void serve_dill(struct result *res, int warm) {
    /* The scheduler and its poller exist before the first figure. */
    PERF_CHECK(yield() == 0);
    struct ipaddr addr;
    PERF_CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int l = tcp_listen(&addr, 4096);
    PERF_CHECK(l >= 0);
    struct sockaddr_in sin;
    memcpy(&sin, ipaddr_sockaddr(&addr), sizeof(sin));
    if(warm) dill_batch(l, &sin, res);
    dill_batch(l, &sin, res);
    PERF_CHECK(hclose(l) == 0);
}

/* ---- raw epoll server ------------------------------------------------------ */

#if defined __linux__

struct conn {
    int fd;
    size_t have;
    char buf[MSG];
};

/* Reads what has arrived on c; once the request is complete, echoes it.
   Returns 1 when the echo has gone out. */
static int raw_serve_one(struct conn *c) {
    ssize_t n = recv(c->fd, c->buf + c->have, MSG - c->have, 0);
    if(n < 0 && errno == EAGAIN) return 0;
    PERF_CHECK(n > 0);
    c->have += (size_t)n;
    if(c->have < MSG) return 0;
    PERF_CHECK(send(c->fd, c->buf, MSG, MSG_NOSIGNAL) == MSG);
    return 1;
}

static void raw_batch(int l, const struct sockaddr_in *sin,
      struct result *res) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    PERF_CHECK(ep >= 0);
    static struct conn *conns[CONNS];
    int go, done;
    pid_t pid = start_clients(sin, &go, &done);
    long before = perf_rss_kib();
    PERF_CHECK(before >= 0);
    int64_t start = perf_cpu_ns();
    for(int i = 0; i < CONNS; i++) {
        int fd = accept(l, NULL, NULL);
        PERF_CHECK(fd >= 0);
        int flags = fcntl(fd, F_GETFL, 0);
        PERF_CHECK(flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
        struct conn *c = malloc(sizeof(struct conn));
        PERF_CHECK(c);
        c->fd = fd;
        c->have = 0;
        struct epoll_event ev = {0};
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
        conns[i] = c;
    }
    res->cpu_ns = perf_cpu_ns() - start;
    res->rss_kib = perf_rss_kib() - before;
    /* The requests and the echoes. */
    write_all(go, "g", 1);
    int echoed = 0;
    while(echoed < CONNS) {
        struct epoll_event events[64];
        int n = epoll_wait(ep, events, 64, -1);
        if(n < 0 && errno == EINTR) continue;
        PERF_CHECK(n > 0);
        for(int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if(!raw_serve_one(c)) continue;
            PERF_CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) == 0);
            echoed++;
        }
    }
    char c;
    read_all(done, &c, 1);
    stop_clients(pid, go, done);
    for(int i = 0; i < CONNS; i++) {
        close(conns[i]->fd);
        free(conns[i]);
    }
    close(ep);
}

static void serve_raw(struct result *res, int warm) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    PERF_CHECK(l >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    PERF_CHECK(bind(l, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    PERF_CHECK(listen(l, 4096) == 0);
    socklen_t len = sizeof(sin);
    PERF_CHECK(getsockname(l, (struct sockaddr *)&sin, &len) == 0);
    if(warm) raw_batch(l, &sin, res);
    raw_batch(l, &sin, res);
    close(l);
}

#endif

/* ---- main ------------------------------------------------------------------ */

/* The lowest CPU time of the rounds so far, with that round's memory. */
static void keep_best(struct result *best, const struct result *r,
      int round) {
    if(round == 0 || r->cpu_ns < best->cpu_ns) *best = *r;
}

/* Runs one server in a child process of its own and collects its figures.
   The parent never touches libdill, so the child starts from nothing. */
static void measure(void (*serve)(struct result *, int), int warm,
      struct result *res) {
    int p[2];
    PERF_CHECK(pipe(p) == 0);
    pid_t pid = fork();
    PERF_CHECK(pid >= 0);
    if(pid == 0) {
        close(p[0]);
        struct result r;
        serve(&r, warm);
        write_all(p[1], &r, sizeof(r));
        _exit(0);
    }
    close(p[1]);
    read_all(p[0], res, sizeof(*res));
    close(p[0]);
    int status;
    PERF_CHECK(waitpid(pid, &status, 0) == pid);
    PERF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Five rounds, each server in a fresh process, alternating; the best of
   each, since the machine is shared and noisy. Cold: the first batch of a
   new server, whose coroutine stacks are fresh memory (one page fault
   each). Warm: the second batch, after a first one has been served and
   closed, as in a server that has been running. */
static void report(int warm) {
    const char *kind = warm ? "warm" : "cold";
    struct result dill = {0, 0}, raw = {0, 0};
    /* Every other round the raw server goes first: the second one gets
       memory the first has just given back, which the kernel hands out
       faster than memory untouched for a while. */
    for(int round = 0; round < ROUNDS; round++) {
        for(int k = 0; k < 2; k++) {
            struct result r;
            if((round + k) % 2 == 0) {
                measure(serve_dill, warm, &r);
                keep_best(&dill, &r, round);
                continue;
            }
#if defined __linux__
            measure(serve_raw, warm, &r);
            keep_best(&raw, &r, round);
#endif
        }
    }
    char name[64];
    snprintf(name, sizeof(name), "tcp_idle_%s_dill", kind);
    perf_report(name, dill.cpu_ns, CONNS);
    printf("%s_rss: %.2f KiB per connection (target <= 4.25)\n", name,
        (double)dill.rss_kib / CONNS);
#if defined __linux__
    snprintf(name, sizeof(name), "tcp_idle_%s_raw", kind);
    perf_report(name, raw.cpu_ns, CONNS);
    printf("%s_rss: %.2f KiB per connection\n", name,
        (double)raw.rss_kib / CONNS);
    double ratio = (double)raw.cpu_ns / (double)dill.cpu_ns;
    printf("tcp_idle_%s_ratio: %.3f (libdill rate / raw epoll rate, server "
        "CPU time to accept and set up, best of %d each; target >= 0.70)%s\n",
        kind, ratio, ROUNDS, ratio >= 0.70 ? "" : " MISSED");
#else
    printf("tcp_idle_raw: no epoll on this system, no baseline\n");
#endif
}

int main(int argc, char **argv) {
    if(argc == 5 && strcmp(argv[1], "--clients") == 0) clients_main(argv);
    struct rlimit rl;
    PERF_CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if(rl.rlim_cur < CONNS + 100) {
        rl.rlim_cur = rl.rlim_max;
        if(rl.rlim_cur < CONNS + 100 || setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "tcp_idle: needs %d descriptors (ulimit -n)\n",
                CONNS + 100);
            return 1;
        }
    }
    report(0);
    report(1);
    return 0;
}
