/*
 * perf/httpd.c: requests per second of examples/httpd under wrk, against
 * perf/http_raw (a hand-written epoll responder doing the same work) in
 * the same run, with one server thread and with two.
 *
 * Three servers answer GET / with the same 200 response, keep-alive, with
 * the library's socket options (Nagle's algorithm on):
 * - libdill: examples/httpd, on the http_* functions; http_detach writes
 *   the head (with MSG_MORE), then bsend the body on the TCP connection;
 * - raw: perf/http_raw, the whole response in one send;
 * - raw-more: perf/http_raw making the two sends examples/httpd makes,
 *   the head with MSG_MORE then the body, so that libdill / raw-more is
 *   what the library's code costs, and raw-more / raw what the API's
 *   second send costs.
 *
 * The machine has two cores and wrk needs one. With one server thread the
 * server is pinned to CPU 0 and wrk (one thread) to CPU 1, so neither
 * steals the other's core and the figure is what one core of server
 * achieves. With two server threads nothing is pinned and wrk (two
 * threads) shares the cores with the server: requests/s can then not
 * double, so the scaling is also given per CPU second the server used
 * (read from /proc), which stays the same when threads do not get in each
 * other's way. Each measurement runs wrk -c 100 for SECONDS seconds; the
 * servers take turns, ROUNDS times, and the best run of each counts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "perf.h"

#define SECONDS 3
#define ROUNDS 5
#define TARGET 0.80

enum { LIBDILL, RAW, RAW_MORE, SERVERS };
static const char *names[SERVERS] = {"libdill", "raw", "raw-more"};

struct result {
    double rate;     /* requests/s, the best run */
    double per_cpu;  /* requests per CPU second of the server, same run */
};

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    PERF_CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    PERF_CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    PERF_CHECK(getsockname(s, (struct sockaddr *)&a, &len) == 0);
    close(s);
    return ntohs(a.sin_port);
}

static int listening(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    PERF_CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&a, sizeof(a));
    close(s);
    return rc == 0;
}

/* fork + exec argv, on CPU cpu when cpu >= 0, stdout to out (-1: the
   null device). */
static pid_t spawn(char *const argv[], int cpu, int out) {
    pid_t pid = fork();
    PERF_CHECK(pid >= 0);
    if(pid == 0) {
        if(cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if(sched_setaffinity(0, sizeof(set), &set) < 0) _exit(126);
        }
        int null = open("/dev/null", O_RDWR);
        dup2(out >= 0 ? out : null, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* CPU seconds a process has used (user + system, all threads). */
static double cpu_seconds(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if(!f) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields 14 and 15 (utime, stime) come after the command in (). */
    char *p = strrchr(buf, ')');
    PERF_CHECK(p != NULL);
    unsigned long utime, stime;
    PERF_CHECK(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
        "%lu %lu", &utime, &stime) == 2);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Requests/s from wrk's report; stops the benchmark on errors. */
static double parse_wrk(const char *report) {
    if(strstr(report, "Socket errors") || strstr(report, "Non-2xx")) {
        fprintf(stderr, "wrk reports errors:\n%s\n", report);
        exit(1);
    }
    const char *at = strstr(report, "Requests/sec:");
    PERF_CHECK(at != NULL);
    double rate;
    PERF_CHECK(sscanf(at, "Requests/sec: %lf", &rate) == 1);
    return rate;
}

/* One measurement: start the server, load it with wrk, stop it. */
static void measure(int server, int threads, int pinned, struct result *r) {
    int port = free_port();
    char p[16], t[16], url[64];
    snprintf(p, sizeof(p), "%d", port);
    snprintf(t, sizeof(t), "%d", threads);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    char *httpd[] = {"examples/httpd", p, t, NULL};
    char *raw[] = {"perf/http_raw", p, t, NULL};
    char *more[] = {"perf/http_raw", p, t, "more", NULL};
    char *const *argv = server == LIBDILL ? httpd : server == RAW ? raw :
        more;
    pid_t srv = spawn(argv, pinned ? 0 : -1, -1);
    for(int i = 0; !listening(port); i++) {
        PERF_CHECK(i < 500 && waitpid(srv, NULL, WNOHANG) == 0);
        usleep(10000);
    }
    char secs[16];
    snprintf(secs, sizeof(secs), "%ds", SECONDS);
    char *wrk[] = {"wrk", "-c", "100", "-t", t, "-d", secs, url,
        NULL};
    int pipefd[2];
    PERF_CHECK(pipe(pipefd) == 0);
    double cpu0 = cpu_seconds(srv);
    pid_t w = spawn(wrk, pinned ? 1 : -1, pipefd[1]);
    close(pipefd[1]);
    static char report[8192];
    size_t len = 0;
    ssize_t n;
    while((n = read(pipefd[0], report + len, sizeof(report) - 1 - len)) > 0)
        len += (size_t)n;
    close(pipefd[0]);
    report[len] = 0;
    int status;
    PERF_CHECK(waitpid(w, &status, 0) == w);
    double cpu = cpu_seconds(srv) - cpu0;
    PERF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The server must have lived through the load. */
    PERF_CHECK(waitpid(srv, NULL, WNOHANG) == 0);
    kill(srv, SIGTERM);
    PERF_CHECK(waitpid(srv, NULL, 0) == srv);
    double rate = parse_wrk(report);
    if(rate > r->rate) {
        r->rate = rate;
        r->per_cpu = cpu > 0 ? rate * SECONDS / cpu : 0;
    }
}

static void require(const char *path, const char *how) {
    if(access(path, X_OK) == 0) return;
    fprintf(stderr, "perf/httpd: %s is missing: %s\n", path, how);
    exit(1);
}

int main(void) {
    if(system("command -v wrk >/dev/null 2>&1") != 0) {
        fprintf(stderr, "perf/httpd: wrk is missing: apt-get install wrk\n");
        return 1;
    }
    require("examples/httpd", "make examples/httpd");
    require("perf/http_raw", "make perf/http_raw");
    signal(SIGPIPE, SIG_IGN);
    int pinned = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    struct result res[3][SERVERS];
    memset(res, 0, sizeof(res));
    for(int threads = 1; threads <= 2; threads++) {
        for(int round = 0; round < ROUNDS; round++)
            for(int s = 0; s < SERVERS; s++)
                measure(s, threads, pinned && threads == 1, &res[threads][s]);
        for(int s = 0; s < SERVERS; s++) {
            printf("http %d thread%s %s: %.0f requests/s (%.0f per server "
                "CPU second)\n", threads, threads > 1 ? "s" : "", names[s],
                res[threads][s].rate, res[threads][s].per_cpu);
            char name[64];
            snprintf(name, sizeof(name), "http_%dthread_%s", threads,
                names[s]);
            perf_report(name, (int64_t)(1e9 / res[threads][s].rate), 1);
        }
        printf("http %d thread%s: libdill / raw = %.2f (target >= %.2f), "
            "libdill / raw-more = %.2f\n", threads, threads > 1 ? "s" : "",
            res[threads][LIBDILL].rate / res[threads][RAW].rate, TARGET,
            res[threads][LIBDILL].rate / res[threads][RAW_MORE].rate);
    }
    for(int s = 0; s < SERVERS; s++)
        printf("http scaling 1 -> 2 threads %s: requests/s x%.2f, per server "
            "CPU second x%.2f\n", names[s], res[2][s].rate / res[1][s].rate,
            res[2][s].per_cpu / res[1][s].per_cpu);
    return 0;
}
