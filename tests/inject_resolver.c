/*
 * tests/inject_resolver.c: allocation failures in the resolver (see
 * tests/inject.h) on its way through a truncated UDP answer to the same
 * question asked again over TCP: the lookup, the resolver's files (read
 * again in each run's own process), the UDP query socket's wait, the TCP
 * connection's waits and the buffer of the TCP answer. ipaddr_remote asks
 * for one family, ipaddr_remotes for both in turn; a name answered over
 * UDP alone is asked too, after the TCP one, in the same run.
 *
 * The DNS server is the test's own, on 127.0.0.1:53 over UDP and TCP, in
 * a process that uses plain sockets and poll, never the library. It runs in mount and network
 * namespaces of the test's own (so the test needs root, and fails saying
 * so without it), with its own /etc/resolv.conf on a tmpfs over /etc: the
 * library reads the real paths.
 */
#include "config.h"
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* unshare */
#endif

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"
#include "inject.h"

/* ---- The DNS server --------------------------------------------------------- */

/* Every name has the A record 10.0.0.1 and the AAAA record fd00::1, except
   names whose first label is "tc": 10.0.0.2 and fd00::2, and over UDP a
   truncated reply (TC set, no answer) that sends the resolver to TCP. */
static int truncated_name(const uint8_t *q) {
    return q[12] == 2 && memcmp(q + 13, "tc", 2) == 0;
}

/* The answer record of the given type (1: A, 28: AAAA) at out. */
static size_t put_answer(uint8_t *out, int type, int tc) {
    size_t len = type == 1 ? 4 : 16;
    uint8_t rr[12] = {0xc0, 0x0c, 0, (uint8_t)type, 0, 1, 0, 0, 0, 60,
        0, (uint8_t)len};
    memcpy(out, rr, sizeof(rr));
    uint8_t *data = out + sizeof(rr);
    memset(data, 0, len);
    data[0] = type == 1 ? 10 : 0xfd;
    data[len - 1] = tc ? 2 : 1;
    return sizeof(rr) + len;
}

/* The reply to the query q of n bytes, in out (room for n + 28 bytes);
   its length, or 0 if q is no query of one question. */
static size_t dns_reply(const uint8_t *q, size_t n, uint8_t *out, int udp) {
    if(n < 12 || q[4] != 0 || q[5] != 1) return 0;
    size_t at = 12;
    while(at < n && q[at]) at += 1 + (size_t)q[at];
    if(at + 5 > n) return 0;
    size_t qend = at + 5;
    int type = q[at + 1] << 8 | q[at + 2];
    int tc = truncated_name(q);
    memcpy(out, q, qend);
    /* QR, AA, RD as asked; RA; TC for a truncated one. */
    out[2] = (uint8_t)(0x84 | (q[2] & 0x01) | (tc && udp ? 0x02 : 0));
    out[3] = 0x80;
    memset(out + 6, 0, 6);
    if((type != 1 && type != 28) || (tc && udp)) return qend;
    out[7] = 1;
    return qend + put_answer(out + qend, type, tc);
}

struct server {
    int udp, tcp;  /* on 127.0.0.1:53 */
    int stop[2];   /* a pipe: a byte on it ends the server */
    pid_t pid;
};

static void serve_udp(int u) {
    uint8_t q[512], r[512 + 28];
    struct sockaddr_storage from;
    socklen_t flen = sizeof(from);
    ssize_t n = recvfrom(u, q, sizeof(q), 0, (struct sockaddr *)&from,
        &flen);
    if(n <= 0) return;
    size_t len = dns_reply(q, (size_t)n, r, 1);
    if(len) sendto(u, r, len, 0, (struct sockaddr *)&from, flen);
}

/* All len bytes, or -1 (the socket has a receive timeout). */
static int recv_all(int s, uint8_t *buf, size_t len) {
    while(len) {
        ssize_t n = recv(s, buf, len, 0);
        if(n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One query per connection, then the server closes it. A resolver that
   gave up before sending it (an allocation of its failed) just closes. */
static void serve_tcp(int l) {
    int s = accept(l, NULL, NULL);
    if(s < 0) return;
    struct timeval tv = {2, 0};
    CHECK(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
    uint8_t head[2], q[512], r[2 + 512 + 28];
    if(recv_all(s, head, 2) == 0) {
        size_t n = (size_t)head[0] << 8 | head[1];
        size_t len = n <= sizeof(q) && recv_all(s, q, n) == 0 ?
            dns_reply(q, n, r + 2, 0) : 0;
        r[0] = (uint8_t)(len >> 8);
        r[1] = (uint8_t)len;
        if(len) send(s, r, 2 + len, MSG_NOSIGNAL);
    }
    close(s);
}

static void serve(struct server *sv) {
    for(;;) {
        struct pollfd p[3] = {{sv->udp, POLLIN, 0}, {sv->tcp, POLLIN, 0},
            {sv->stop[0], POLLIN, 0}};
        int rc = poll(p, 3, -1);
        if(rc < 0 && errno == EINTR) continue;
        CHECK(rc > 0);
        if(p[2].revents) return;
        if(p[0].revents) serve_udp(sv->udp);
        if(p[1].revents) serve_tcp(sv->tcp);
    }
}

/* The server is a process of its own, not a thread: the runs fork, and a
   thread that holds a lock of the allocator (ASan's) when one does would
   leave it held in the child for ever. */
static void server_start(struct server *sv) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(sv->udp >= 0);
    CHECK(bind(sv->udp, (struct sockaddr *)&a, sizeof(a)) == 0);
    sv->tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(sv->tcp >= 0);
    int one = 1;
    CHECK(setsockopt(sv->tcp, SOL_SOCKET, SO_REUSEADDR, &one,
        sizeof(one)) == 0);
    CHECK(bind(sv->tcp, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(sv->tcp, 16) == 0);
    CHECK(pipe(sv->stop) == 0);
    sv->pid = fork();
    CHECK(sv->pid >= 0);
    if(sv->pid == 0) {
        serve(sv);
        _exit(0);
    }
    /* The sockets are the server's: the runs' processes must not keep a
       copy of the listener's queue. */
    CHECK(close(sv->udp) == 0 && close(sv->tcp) == 0);
    CHECK(close(sv->stop[0]) == 0);
}

static void server_stop(struct server *sv) {
    CHECK(write(sv->stop[1], "x", 1) == 1);
    int status;
    CHECK(waitpid(sv->pid, &status, 0) == sv->pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(close(sv->stop[1]) == 0);
}

/* ---- The scenarios ----------------------------------------------------------- */

static void check_addr(const struct dill_ipaddr *a, const char *text) {
    char buf[IPADDR_MAXSTRLEN];
    CHECK(ipaddr_str(a, buf) != NULL);
    if(strcmp(buf, text) != 0) {
        fprintf(stderr, "inject_resolver: got %s, expected %s\n", buf, text);
        exit(1);
    }
    CHECK(ipaddr_port(a) == 80);
}

/* One family over TCP, then a name answered over UDP. */
static void run_remote(void) {
    struct dill_ipaddr a;
    if(!OK(ipaddr_remote(&a, "tc.test", 80, IPADDR_IPV4, inject_deadline())))
        return;
    check_addr(&a, "10.0.0.2");
    if(!OK(ipaddr_remote(&a, "one.test", 80, IPADDR_IPV4,
          inject_deadline())))
        return;
    check_addr(&a, "10.0.0.1");
}

/* Both families, each over TCP after its truncated UDP answer. */
static void run_remotes(void) {
    struct dill_ipaddr a[4];
    int n;
    if(!OK(n = ipaddr_remotes(a, 4, "tc.test", 80, IPADDR_PREF_IPV6,
          inject_deadline())))
        return;
    CHECK(n == 2);
    check_addr(&a[0], "fd00::2");
    check_addr(&a[1], "10.0.0.2");
}

/* ---- The environment ---------------------------------------------------------- */

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
        fprintf(stderr, "tests/inject_resolver: FAIL: unshare(CLONE_NEWNS | "
            "CLONE_NEWNET): %s. This test must run as root on a machine "
            "that allows mount and network namespaces (CI does).\n",
            strerror(errno));
        exit(1);
    }
    /* A type, though the kernel ignores it here: valgrind checks it. */
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
    static const struct scenario scenarios[] = {
        /* The resolver reads its files once per process: a fresh one for
           each run, so that they are read under injection every time. */
        {"remote_tcp", run_remote, 1},
        {"remotes_tcp", run_remotes, 1},
    };
    enter_namespaces();
    static struct server sv;
    server_start(&sv);
    inject_run(scenarios, sizeof(scenarios) / sizeof(scenarios[0]));
    server_stop(&sv);
    return 0;
}
