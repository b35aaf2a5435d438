/*
 * tests/http_peers.c: our HTTP code against programs nobody here wrote,
 * all on 127.0.0.1. examples/httpd (two threads) is started and checked
 * with curl (GET / gives 200 and the text, an unknown path 404, GET /big
 * the whole MiB byte for byte, two requests kept alive on one connection,
 * Connection: close honoured) and with a 10-second wrk run (100
 * connections, 2 threads) whose output must show requests, no socket
 * errors and no non-2xx responses; then our client (http_sendrequest and
 * friends over tcp_connect) fetches a file of 200 KB and a missing one
 * from `python3 -m http.server` serving a directory made here, and a few
 * kept-alive requests from examples/httpd. The servers must still be
 * running at the end (they are stopped with SIGTERM, and each dies with
 * the test on any other exit path).
 *
 * Needs curl, wrk and python3 (Debian packages curl, wrk, python3); fails
 * saying so when one is missing.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"
#include "peer.h"

#define BIG_SIZE (1024 * 1024)

/* The body of /big, as examples/httpd makes it. */
static char big_byte(size_t i) {
    return "0123456789abcdefghijklmnopqrstuv"[(i ^ (i >> 5) ^ (i >> 10)) & 31];
}

static char out[BIG_SIZE + 4096];

static void run_curl(char *const argv[]) {
    int rc = peer_run(argv, out, sizeof(out), 20000, NULL);
    if(rc != 0) fprintf(stderr, "curl exited with %d, output: %s\n", rc, out);
    CHECK(rc == 0);
}

static void test_curl(int port, const char *dir) {
    char url[64], big_url[64], missing[64], file[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    snprintf(big_url, sizeof(big_url), "http://127.0.0.1:%d/big", port);
    snprintf(missing, sizeof(missing), "http://127.0.0.1:%d/nothing", port);

    char *get[] = {"curl", "-sS", "--max-time", "10", "-w", "|%{http_code}",
        url, NULL};
    run_curl(get);
    CHECK(strcmp(out, "Hello from libdill's httpd\n|200") == 0);

    char *nf[] = {"curl", "-sS", "--max-time", "10", "-w", "|%{http_code}",
        missing, NULL};
    run_curl(nf);
    CHECK(strcmp(out, "Not found\n|404") == 0);

    /* A method other than GET is not found either. */
    char *post[] = {"curl", "-sS", "--max-time", "10", "-w", "|%{http_code}",
        "-d", "a=1&b=2", url, NULL};
    run_curl(post);
    CHECK(strcmp(out, "Not found\n|404") == 0);

    /* The MiB, through a file, compared byte for byte. */
    snprintf(file, sizeof(file), "%s/big", dir);
    char *big[] = {"curl", "-sS", "--max-time", "10", "-o", file, "-w",
        "%{http_code} %{size_download}", big_url, NULL};
    run_curl(big);
    CHECK(strcmp(out, "200 1048576") == 0);
    FILE *f = fopen(file, "rb");
    CHECK(f != NULL);
    size_t n = fread(out, 1, sizeof(out), f);
    fclose(f);
    CHECK(n == BIG_SIZE);
    for(size_t i = 0; i < BIG_SIZE; i++) CHECK(out[i] == big_byte(i));

    /* Two requests on one connection: the second needs no new connect. */
    char *two[] = {"curl", "-sS", "--max-time", "10", "-o", "/dev/null",
        "-o", "/dev/null", "-w", "%{http_code} %{num_connects};", url,
        big_url, NULL};
    run_curl(two);
    CHECK(strcmp(out, "200 1;200 0;") == 0);

    /* Connection: close is answered in kind, and the server closes. */
    char *cl[] = {"curl", "-sS", "--max-time", "10", "-D", "-", "-o",
        "/dev/null", "-H", "Connection: close", url, NULL};
    run_curl(cl);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "\r\nConnection: close\r\n") != NULL);
    CHECK(strstr(out, "\r\nContent-Length: 27\r\n") != NULL);
    CHECK(strstr(out, "\r\nContent-Type: text/plain\r\n") != NULL);
}

/* wrk's report, every line of it: only the lines it prints for a clean
   run are accepted, and the totals must make sense. */
static void check_wrk(const char *report) {
    long requests = -1;
    double rate = -1;
    int threads = 0, conns = 0;
    const char *line = report;
    while(*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char l[512];
        CHECK(len < sizeof(l));
        memcpy(l, line, len);
        l[len] = 0;
        line += len + (end ? 1 : 0);
        char unit[16];
        double d;
        long v;
        if(strncmp(l, "Running ", 8) == 0) continue;
        int t, c;
        if(sscanf(l, " %d threads and %d connections", &t, &c) == 2) {
            threads = t;
            conns = c;
            continue;
        }
        if(strstr(l, "Thread Stats") || strstr(l, "Latency") ||
              strstr(l, "Req/Sec"))
            continue;
        if(sscanf(l, " %ld requests in %lf%15s", &v, &d, unit) == 3) {
            requests = v;
            continue;
        }
        if(sscanf(l, "Requests/sec: %lf", &d) == 1) {
            rate = d;
            continue;
        }
        if(strncmp(l, "Transfer/sec:", 13) == 0) continue;
        /* "Socket errors: ..." and "Non-2xx or 3xx responses: N" come
           only when something went wrong. */
        fprintf(stderr, "unexpected wrk output line: %s\nreport:\n%s\n", l,
            report);
        CHECK(0);
    }
    fprintf(stderr, "wrk: %ld requests, %.0f requests/s\n", requests, rate);
    CHECK(threads == 2 && conns == 100);
    CHECK(requests > 1000);
    CHECK(rate > 100);
}

static void test_wrk(int port) {
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    char *argv[] = {"wrk", "-c", "100", "-t", "2", "-d", "10s", url, NULL};
    int rc = peer_run(argv, out, sizeof(out), 60000, NULL);
    if(rc != 0) fprintf(stderr, "wrk exited with %d: %s\n", rc, out);
    CHECK(rc == 0);
    check_wrk(out);
}

/* One GET with our client on the connection s; returns the stream, for
   the next request, with the status in *status and the body in body
   (NUL-terminated, *len bytes). */
static int fetch(int s, const char *resource, int *status, char *body,
      size_t room, size_t *len) {
    int h = http_attach(s);
    CHECK(h >= 0);
    CHECK(http_sendrequest(h, "GET", resource, now() + 5000) == 0);
    CHECK(http_sendfield(h, "Host", "127.0.0.1", now() + 5000) == 0);
    CHECK(http_sendfield(h, "User-Agent", "libdill-test", now() + 5000) == 0);
    CHECK(http_done(h, now() + 5000) == 0);
    char reason[64];
    *status = http_recvstatus(h, reason, sizeof(reason), now() + 5000);
    CHECK(*status >= 100);
    long length = -1;
    for(;;) {
        char name[64], value[256];
        int rc = http_recvfield(h, name, sizeof(name), value, sizeof(value),
            now() + 5000);
        if(rc < 0) {
            CHECK(errno == EPIPE);
            break;
        }
        if(strcasecmp(name, "Content-Length") == 0) length = atol(value);
    }
    CHECK(length >= 0 && (size_t)length < room);
    s = http_detach(h, now() + 5000);
    CHECK(s >= 0);
    CHECK(brecv(s, body, (size_t)length, now() + 5000) == 0);
    body[length] = 0;
    *len = (size_t)length;
    return s;
}

static void test_python(void) {
    peer_require("/usr/bin/python3", "python3");
    const char *dir = peer_dir("http_peers_py");
    char path[256];
    snprintf(path, sizeof(path), "%s/file.txt", dir);
    static char content[200 * 1000];
    for(size_t i = 0; i < sizeof(content); i++)
        content[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(content, 1, sizeof(content), f) == sizeof(content));
    CHECK(fclose(f) == 0);
    int port = peer_free_port();
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *argv[] = {"/usr/bin/python3", "-m", "http.server", p, "--bind",
        "127.0.0.1", "--directory", (char *)dir, NULL};
    pid_t pid = peer_start(argv, NULL);
    peer_wait_tcp(port, 10000);

    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", port, IPADDR_IPV4) == 0);
    int status;
    size_t len;
    /* http.server speaks HTTP/1.0 and closes after each response. */
    int s = tcp_connect(&addr, now() + 5000);
    CHECK(s >= 0);
    s = fetch(s, "/file.txt", &status, out, sizeof(out), &len);
    CHECK(status == 200);
    CHECK(len == sizeof(content) && memcmp(out, content, len) == 0);
    CHECK(tcp_close(s, now() + 5000) == 0);

    s = tcp_connect(&addr, now() + 5000);
    CHECK(s >= 0);
    s = fetch(s, "/missing.txt", &status, out, sizeof(out), &len);
    CHECK(status == 404);
    CHECK(strstr(out, "404") != NULL);
    CHECK(tcp_close(s, now() + 5000) == 0);

    int st = peer_stop(pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

/* Our client against our server: several requests on one connection. */
static void test_own_client(int port) {
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", port, IPADDR_IPV4) == 0);
    int s = tcp_connect(&addr, now() + 5000);
    CHECK(s >= 0);
    for(int i = 0; i < 5; i++) {
        int status;
        size_t len;
        s = fetch(s, i % 2 ? "/big" : "/", &status, out, sizeof(out), &len);
        CHECK(s >= 0);
        CHECK(status == 200);
        if(i % 2) {
            CHECK(len == BIG_SIZE);
            for(size_t j = 0; j < BIG_SIZE; j++) CHECK(out[j] == big_byte(j));
        } else {
            CHECK(strcmp(out, "Hello from libdill's httpd\n") == 0);
        }
    }
    int status;
    size_t len;
    s = fetch(s, "/x", &status, out, sizeof(out), &len);
    CHECK(s >= 0 && status == 404);
    /* The server sees the end of our stream where a request line should
       be: http_recvrequest fails with EPIPE, and it closes the connection
       with hclose (there is nothing left to finish), which resets it. */
    CHECK(tcp_done(s, -1) == 0);
    char c;
    CHECK_ERR(brecv(s, &c, 1, now() + 5000), ECONNRESET);
    CHECK(hclose(s) == 0);
}

int main(void) {
    peer_require("curl", "curl");
    peer_require("wrk", "wrk");
    peer_require("/usr/bin/python3", "python3");
    if(access("examples/httpd", X_OK) != 0) {
        fprintf(stderr, "FAIL: examples/httpd is not built (make check "
            "builds it)\n");
        return 1;
    }
    int port = peer_free_port();
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char dir[256], log[300];
    snprintf(dir, sizeof(dir), "%s", peer_dir("http_peers"));
    snprintf(log, sizeof(log), "%s/httpd.log", dir);
    char *argv[] = {"examples/httpd", p, "2", NULL};
    pid_t httpd = peer_start(argv, log);
    peer_wait_tcp(port, 10000);
    test_curl(port, dir);
    test_own_client(port);
    test_wrk(port);
    /* Still serving after the load. */
    test_own_client(port);
    int st = peer_stop(httpd);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    test_python();
    return 0;
}
