/*
 * tests/happyeyeballs.c: happyeyeballs_connect (sockets.md §17, §20.19,
 * §21), for real. The test moves itself into new mount and network
 * namespaces, brings lo up, gives it twelve more IPv6 addresses
 * (fd00::1 to fd00::c), adds iptables and ip6tables rules that drop SYNs
 * to some ports (for ever, or only the first one, so that an attempt
 * hangs or answers a second late), then puts a tmpfs over /etc with its
 * own hosts, resolv.conf and nsswitch.conf (the library reads the real
 * paths). Names the hosts file does not have go to a DNS server of the
 * test's own on 127.0.0.1:53, which answers some A or AAAA queries late,
 * never answers silent.test and says NXDOMAIN to everything else.
 *
 * Covers: EINVAL for a NULL name and for ports 0, negative and above
 * 65535; a name with ::1 and 127.0.0.1 where both listen (IPv6 wins at
 * once), only IPv4 listens (::1 refuses: IPv4 wins when its attempt starts
 * 300 ms later), only IPv6 listens, IPv6 hangs (SYN dropped: IPv4 starts
 * 300 ms later and wins), IPv6 refuses and IPv4 answers late (its first
 * SYN dropped); nothing listens (ETIMEDOUT at the deadline, never a
 * connect error); names with one family only; a name that does not exist
 * and the empty name (ETIMEDOUT at the deadline); literals of both
 * families; the 50 ms head start of IPv6 with a DNS server answering AAAA
 * 30 ms late (IPv6 waited for), 200 ms late (IPv4 after 50 ms), A 100 ms
 * and AAAA 130 ms late (IPv4 at once: the head start counts from the
 * call's start); alternation over the twelve addresses per family of the
 * hosts file, and the tenth address of each family tried, the eleventh
 * never; several calls at once; the second connection of two that
 * complete together closed (its server sees a reset); deadline 0 and a
 * past deadline (ETIMEDOUT at once, no SYN sent); the deadline passing
 * during the resolution and during the attempts; cancellation of the
 * caller during each (ECANCELED at once), and a call from a coroutine
 * already cancelled; no descriptors (ETIMEDOUT, not EMFILE); a caller on
 * a small go_mem stack. After every case: no descriptor and no handle
 * left behind, and the process idle (no coroutine left running).
 *
 * Needs root (namespaces), ip (iproute2), iptables and ip6tables
 * (iptables): without them it fails saying so.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"
#include "peer.h"

/* Ports, each with its own listeners and rules. */
#define P_BOTH 7001    /* listening on ::1 and 127.0.0.1 */
#define P_V4 7002      /* on 127.0.0.1 only: ::1 refuses */
#define P_V6 7003      /* on ::1 only: 127.0.0.1 refuses */
#define P_V6HANG 7004  /* both listen, SYNs to ::1 dropped */
#define P_V4LATE 7005  /* 127.0.0.1 only, its first SYN dropped */
#define P_NONE 7006    /* nothing listens */
#define P_HANG 7007    /* SYNs of both families dropped */
#define P_RACE 7008    /* both listen, the first SYN of each dropped */
#define P_MANY 7010    /* 7010-7015: the many-address cases */

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tests/happyeyeballs: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- The environment ---------------------------------------------------- */

/* Runs a command, output discarded; it must succeed. */
static void run_tool(char *const argv[]) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if(null >= 0) dup2(null, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if(!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("%s %s ... failed (status %d)", argv[0], argv[1], status);
}

static void rule(const char *tool, int port, int first_only) {
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *all[] = {(char *)tool, "-A", "INPUT", "-p", "tcp", "--syn",
        "--dport", p, "-j", "DROP", NULL};
    /* Every second SYN, starting with the first: the attempt's first SYN
       is lost, the kernel's retransmission a second later passes. */
    char *first[] = {(char *)tool, "-A", "INPUT", "-p", "tcp", "--syn",
        "--dport", p, "-m", "statistic", "--mode", "nth", "--every", "2",
        "--packet", "0", "-j", "DROP", NULL};
    run_tool(first_only ? first : all);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

static void enter_namespaces(void) {
    if(unshare(CLONE_NEWNS | CLONE_NEWNET) < 0) {
        fprintf(stderr, "tests/happyeyeballs: FAIL: unshare(CLONE_NEWNS | "
            "CLONE_NEWNET): %s. This test must run as root on a machine "
            "that allows mount and network namespaces (CI does).\n",
            strerror(errno));
        exit(1);
    }
    /* From here on every command acts on the new namespace only. The
       tools run before /etc is replaced: they may read files there. */
    char *lo_up[] = {"ip", "link", "set", "lo", "up", NULL};
    run_tool(lo_up);
    for(int i = 1; i <= 12; i++) {
        char a[32];
        snprintf(a, sizeof(a), "fd00::%x/128", i);
        char *add[] = {"ip", "-6", "addr", "add", a, "dev", "lo", "nodad",
            NULL};
        run_tool(add);
    }
    rule("ip6tables", P_V6HANG, 0);
    rule("iptables", P_V4LATE, 1);
    rule("ip6tables", P_HANG, 0);
    rule("iptables", P_HANG, 0);
    rule("ip6tables", P_RACE, 1);
    rule("iptables", P_RACE, 1);
    CHECK(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0);
    CHECK(mount("tmpfs", "/etc", "tmpfs", 0, "mode=755") == 0);
    /* No search list: a name is asked for as it is, once. */
    write_file("/etc/resolv.conf", "nameserver 127.0.0.1\nsearch\n"
        "options ndots:1 timeout:30 attempts:1\n");
    write_file("/etc/nsswitch.conf", "hosts: files dns\n");
    char hosts[4096];
    int n = snprintf(hosts, sizeof(hosts),
        "127.0.0.1 localhost\n::1 localhost\n"
        "::1 dual.test\n127.0.0.1 dual.test\n"
        "127.0.0.1 v4name.test\n::1 v6name.test\n");
    for(int i = 1; i <= 12; i++)
        n += snprintf(hosts + n, sizeof(hosts) - (size_t)n,
            "fd00::%x many.test many6.test\n"
            "127.0.1.%d many.test many4.test\n", i, i);
    write_file("/etc/hosts", hosts);
}

/* ---- The DNS server ----------------------------------------------------- */

/* How the server answers a name: each family after this many ms, or
   never (-1). Names not listed get NXDOMAIN. */
struct record {
    const char *name;
    int a_ms;
    int aaaa_ms;
};

static const struct record records[] = {
    {"slow6.test", 0, 30},
    {"slower6.test", 0, 200},
    {"slow4.test", 200, 0},
    {"lateboth.test", 100, 130},
    {"silent.test", -1, -1},
};

struct dns {
    int fd;
    int bundle;           /* the server loop and the late answers */
    int silent_queries;   /* queries for silent.test so far */
};

struct reply {
    int fd;
    struct sockaddr_in to;
    size_t len;
    int64_t at;
    uint8_t buf[512];
};

coroutine static void send_late(struct reply *r) {
    if(msleep(r->at) == 0)
        sendto(r->fd, r->buf, r->len, 0, (struct sockaddr *)&r->to,
            sizeof(r->to));
    free(r);
}

/* The question of query q (n bytes) as a dotted name in name, its type in
   *type; the length of header and question, or 0 if it is no query. */
static size_t question(const uint8_t *q, size_t n, char *name, size_t len,
      int *type) {
    size_t at = 12, out = 0;
    if(n < 12 || (q[2] & 0x80)) return 0;
    while(at < n && q[at]) {
        size_t l = q[at++];
        if(l > 63 || at + l > n || out + l + 2 > len) return 0;
        if(out) name[out++] = '.';
        memcpy(name + out, q + at, l);
        out += l;
        at += l;
    }
    name[out] = 0;
    if(at + 5 > n) return 0;
    *type = q[at + 1] << 8 | q[at + 2];
    return at + 5;
}

static void answer(struct dns *d, const uint8_t *q, size_t n,
      const struct sockaddr_in *from) {
    char name[256];
    int type;
    size_t qend = question(q, n, name, sizeof(name), &type);
    if(!qend || (type != 1 && type != 28)) return;
    const struct record *rec = NULL;
    for(size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        if(strcasecmp(records[i].name, name) == 0) rec = &records[i];
    if(rec && strcmp(rec->name, "silent.test") == 0) d->silent_queries++;
    int ms = !rec ? 0 : type == 1 ? rec->a_ms : rec->aaaa_ms;
    if(ms < 0) return;
    struct reply *r = malloc(sizeof(*r));
    CHECK(r != NULL);
    memcpy(r->buf, q, qend);
    r->buf[2] = 0x81;                /* a response; recursion desired */
    r->buf[3] = rec ? 0x80 : 0x83;   /* recursion available; NXDOMAIN */
    r->buf[4] = 0, r->buf[5] = 1;    /* the question */
    r->buf[6] = 0, r->buf[7] = rec ? 1 : 0;
    memset(r->buf + 8, 0, 4);
    r->len = qend;
    if(rec) {
        static const uint8_t v4[4] = {127, 0, 0, 1};
        static const uint8_t v6[16] = {[15] = 1};
        uint8_t rr[12] = {0xc0, 12, 0, (uint8_t)type, 0, 1, 0, 0, 0, 60, 0,
            type == 1 ? 4 : 16};
        memcpy(r->buf + r->len, rr, sizeof(rr));
        r->len += sizeof(rr);
        memcpy(r->buf + r->len, type == 1 ? v4 : v6, rr[11]);
        r->len += rr[11];
    }
    r->fd = d->fd;
    r->to = *from;
    r->at = now() + ms;
    CHECK(bundle_go(d->bundle, send_late(r)) == 0);
}

coroutine static void dns_loop(struct dns *d) {
    while(fdin(d->fd, -1) == 0) {
        uint8_t q[512];
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(d->fd, q, sizeof(q), 0,
            (struct sockaddr *)&from, &flen);
        if(n > 0) answer(d, q, (size_t)n, &from);
    }
}

static void dns_start(struct dns *d) {
    d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(d->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(d->fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    d->silent_queries = 0;
    d->bundle = bundle();
    CHECK(d->bundle >= 0);
    CHECK(bundle_go(d->bundle, dns_loop(d)) == 0);
}

/* ---- Listeners and checks ----------------------------------------------- */

static int listen_on(const char *ip, int port) {
    struct ipaddr a;
    CHECK(ipaddr_local(&a, ip, port, 0) == 0);
    int l = tcp_listen(&a, 16);
    CHECK(l >= 0);
    return l;
}

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

/* Live handles: hquery tells a free number (EBADF) from a live one. */
static int handle_count(void) {
    int n = 0;
    for(int h = 0; h < 4096; h++) {
        errno = 0;
        if(hquery(h, NULL) || errno != EBADF) n++;
    }
    return n;
}

static int64_t cpu_ms(void) {
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
        (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static int base_fds, base_handles;

/* Nothing of a call is left: no descriptor, no handle (each coroutine
   and channel is one), and the thread idles through 100 ms. */
static void check_clean(const char *what) {
    if(fd_count() != base_fds)
        fail("%s: %d descriptors open, %d before", what, fd_count(),
            base_fds);
    if(handle_count() != base_handles)
        fail("%s: %d handles live, %d before", what, handle_count(),
            base_handles);
    int64_t cpu = cpu_ms();
    CHECK(msleep(now() + 100) == 0);
    if(cpu_ms() - cpu >= 30)
        fail("%s: %lld ms of CPU in 100 ms of idling", what,
            (long long)(cpu_ms() - cpu));
}

static void check_took(const char *what, int64_t took, int64_t lo,
      int64_t hi) {
    if(took < lo || took >= hi)
        fail("%s: returned after %lld ms, not in [%lld, %lld)", what,
            (long long)took, (long long)lo, (long long)hi);
}

/* s is the connection that listener l accepted: a byte goes through it.
   Nothing connected to the other listener o (-1: none). */
static void check_conn(int s, int l, int o) {
    CHECK(s >= 0);
    int a = tcp_accept(l, NULL, now() + 2000);
    CHECK(a >= 0);
    CHECK(bsend(s, "x", 1, now() + 1000) == 0);
    char c = 0;
    CHECK(brecv(a, &c, 1, now() + 1000) == 0 && c == 'x');
    if(o >= 0) CHECK_ERR(tcp_accept(o, NULL, 0), ETIMEDOUT);
    CHECK(hclose(a) == 0);
    CHECK(hclose(s) == 0);
}

/* Calls happyeyeballs_connect, the time it took in *took. */
static int connect_timed(const char *name, int port, int64_t ms,
      int64_t *took) {
    int64_t t0 = now();
    int s = happyeyeballs_connect(name, port, ms < 0 ? -1 : t0 + ms);
    int err = errno;
    *took = now() - t0;
    errno = err;
    return s;
}

/* What a call in a coroutine returned. volatile: the launcher reads it
   after the coroutine wrote it. */
struct op {
    int done;
    int rc;
    int err;
    int64_t took;
};

coroutine static void connect_op(const char *name, int port, int64_t ms,
      volatile struct op *op) {
    int64_t took;
    op->done = 0;
    int rc = connect_timed(name, port, ms, &took);
    op->err = errno;
    op->rc = rc;
    op->took = took;
    op->done = 1;
}

/* Wait, polling every 10 ms for at most 5 s, until n descriptors are
   open (the attempts of a call have started). */
static void wait_fds(int n) {
    int64_t deadline = now() + 5000;
    while(fd_count() != n) {
        if(now() >= deadline)
            fail("%d descriptors open, waited for %d", fd_count(), n);
        CHECK(msleep(now() + 10) == 0);
    }
}

/* ---- The cases ---------------------------------------------------------- */

static int l6_both, l4_both, l4_v4, l6_v6, l6_v6hang, l4_v6hang, l4_v4late;
static int l6_race, l4_race;

static void test_arguments(void) {
    CHECK_ERR(happyeyeballs_connect(NULL, P_BOTH, -1), EINVAL);
    CHECK_ERR(happyeyeballs_connect(NULL, P_BOTH, 0), EINVAL);
    int bad[] = {0, -1, -80, 65536, 70000, INT_MAX, INT_MIN};
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_ERR(happyeyeballs_connect("dual.test", bad[i], -1), EINVAL);
        CHECK_ERR(happyeyeballs_connect("127.0.0.1", bad[i], -1), EINVAL);
        CHECK_ERR(happyeyeballs_connect("dual.test", bad[i], 0), EINVAL);
    }
    /* 65535 is a port: nothing listens there, so the deadline ends it. */
    int64_t took;
    CHECK_ERR(connect_timed("dual.test", 65535, 100, &took), ETIMEDOUT);
    check_took("port 65535", took, 100, 400);
    check_clean("arguments");
}

static void test_both_listen(void) {
    int64_t took;
    int s = connect_timed("dual.test", P_BOTH, 5000, &took);
    check_conn(s, l6_both, l4_both);
    check_took("both listening", took, 0, 200);
    /* The raw name and no deadline. */
    s = happyeyeballs_connect("dual.test", P_BOTH, -1);
    check_conn(s, l6_both, l4_both);
    check_clean("both listening");
}

static void test_one_listens(void) {
    int64_t took;
    /* ::1 refuses at once; the IPv4 attempt still starts 300 ms after the
       first (§17: a failed attempt does not bring the next forward). */
    int s = connect_timed("dual.test", P_V4, 5000, &took);
    check_conn(s, l4_v4, -1);
    check_took("::1 refused, IPv4 listening", took, 250, 1000);
    s = connect_timed("dual.test", P_V6, 5000, &took);
    check_conn(s, l6_v6, -1);
    check_took("IPv6 listening, 127.0.0.1 refused", took, 0, 200);
    check_clean("one family listening");
}

static void test_late(void) {
    int64_t took;
    /* The SYN to ::1 is dropped: the IPv4 attempt 300 ms later wins. */
    int s = connect_timed("dual.test", P_V6HANG, 5000, &took);
    check_conn(s, l4_v6hang, l6_v6hang);
    check_took("IPv6 hanging", took, 250, 1000);
    check_clean("IPv6 hanging");
    /* ::1 refuses, 127.0.0.1 answers the kernel's second SYN, 1 s after
       the first, which left 300 ms after the start. */
    s = connect_timed("dual.test", P_V4LATE, 5000, &took);
    check_conn(s, l4_v4late, -1);
    check_took("IPv6 refused, IPv4 late", took, 1250, 2500);
    check_clean("IPv4 late");
}

static void test_one_family(void) {
    int64_t took;
    /* The hosts file knows the name, so the AAAA lookup ends at once with
       nothing and IPv4 need not wait for the head start to end. */
    int s = connect_timed("v4name.test", P_BOTH, 5000, &took);
    check_conn(s, l4_both, l6_both);
    check_took("IPv4 only", took, 0, 40);
    s = connect_timed("v6name.test", P_BOTH, 5000, &took);
    check_conn(s, l6_both, l4_both);
    check_took("IPv6 only", took, 0, 40);
    /* The one family's port refuses: nothing else to try. */
    CHECK_ERR(connect_timed("v4name.test", P_V6, 400, &took), ETIMEDOUT);
    check_took("IPv4 only, refused", took, 400, 700);
    CHECK_ERR(connect_timed("v6name.test", P_V4, 400, &took), ETIMEDOUT);
    check_took("IPv6 only, refused", took, 400, 700);
    check_clean("one family");
}

static void test_no_address(void) {
    int64_t took;
    CHECK_ERR(connect_timed("nx.test", P_BOTH, 300, &took), ETIMEDOUT);
    check_took("no such name", took, 300, 600);
    CHECK_ERR(connect_timed("", P_BOTH, 300, &took), ETIMEDOUT);
    check_took("empty name", took, 300, 600);
    /* Every attempt refused: no connect error, the deadline ends it. */
    CHECK_ERR(connect_timed("dual.test", P_NONE, 700, &took), ETIMEDOUT);
    check_took("all refused", took, 700, 1000);
    CHECK_ERR(happyeyeballs_connect("dual.test", P_NONE, now() + 400),
        ETIMEDOUT);
    check_clean("no address");
}

static void test_literals(void) {
    int64_t took;
    int s = connect_timed("127.0.0.1", P_BOTH, 5000, &took);
    check_conn(s, l4_both, l6_both);
    check_took("IPv4 literal", took, 0, 40);
    s = connect_timed("::1", P_BOTH, 5000, &took);
    check_conn(s, l6_both, l4_both);
    check_took("IPv6 literal", took, 0, 40);
    s = connect_timed("::ffff:127.0.0.1", P_BOTH, 5000, &took);
    check_conn(s, l4_both, l6_both);
    CHECK_ERR(connect_timed("::1", P_V4, 300, &took), ETIMEDOUT);
    check_took("IPv6 literal refused", took, 300, 600);
    CHECK_ERR(connect_timed("127.0.0.1", P_V6, 300, &took), ETIMEDOUT);
    check_took("IPv4 literal refused", took, 300, 600);
    check_clean("literals");
}

static void test_dns_late(void) {
    int64_t took;
    /* AAAA 30 ms late: within the head start, IPv6 goes first. */
    int s = connect_timed("slow6.test", P_BOTH, 5000, &took);
    check_conn(s, l6_both, l4_both);
    check_took("AAAA 30 ms late", took, 25, 200);
    /* AAAA 200 ms late: IPv4 goes when the 50 ms head start is over. */
    s = connect_timed("slower6.test", P_BOTH, 5000, &took);
    check_conn(s, l4_both, l6_both);
    check_took("AAAA 200 ms late", took, 45, 190);
    /* A late, AAAA at once: IPv6 at once. */
    s = connect_timed("slow4.test", P_BOTH, 5000, &took);
    check_conn(s, l6_both, l4_both);
    check_took("A 200 ms late", took, 0, 40);
    /* A 100 ms late, AAAA 130 ms: the head start counts from the call's
       start (§17), so IPv4 goes at once when its answer comes. */
    s = connect_timed("lateboth.test", P_BOTH, 5000, &took);
    check_conn(s, l4_both, l6_both);
    check_took("A 100 ms, AAAA 130 ms late", took, 95, 128);
    check_clean("DNS answering late");
}

static void test_many(void) {
    /* Listeners on some of the twelve addresses per family, and calls to
       all of them at once. Attempts alternate v6, v4, v6, ... 300 ms
       apart, so v6[1] is the third attempt (600 ms) and v4[1] the fourth
       (900 ms); a name with one family gets an attempt per address,
       address k (from 0) at k x 300 ms, and ten addresses at most. */
    struct {
        const char *name;
        const char *listen;
        int ok;
        int64_t lo, hi;
    } cases[] = {
        {"many.test", "fd00::2", 1, 550, 1000},
        {"many.test", "127.0.1.2", 1, 850, 1400},
        {"many6.test", "fd00::a", 1, 2650, 3500},
        {"many4.test", "127.0.1.10", 1, 2650, 3500},
        {"many6.test", "fd00::b", 0, 3500, 3800},
        {"many4.test", "127.0.1.11", 0, 3500, 3800},
    };
    enum {N = sizeof(cases) / sizeof(cases[0])};
    int ls[N];
    volatile struct op ops[N];
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < N; i++) {
        ls[i] = listen_on(cases[i].listen, P_MANY + i);
        CHECK(bundle_go(b, connect_op(cases[i].name, P_MANY + i, 3500,
            &ops[i])) == 0);
    }
    CHECK(bundle_wait(b, now() + 10000) == 0);
    CHECK(hclose(b) == 0);
    for(int i = 0; i < N; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s, %s listening", cases[i].name,
            cases[i].listen);
        CHECK(ops[i].done);
        if(cases[i].ok) {
            check_conn(ops[i].rc, ls[i], -1);
        } else {
            CHECK(ops[i].rc == -1 && ops[i].err == ETIMEDOUT);
            /* The eleventh address was never tried. */
            CHECK_ERR(tcp_accept(ls[i], NULL, 0), ETIMEDOUT);
        }
        check_took(what, ops[i].took, cases[i].lo, cases[i].hi);
        CHECK(hclose(ls[i]) == 0);
    }
    check_clean("many addresses");
}

/* Both attempts connect while the thread is held: the call takes one and
   closes the other, whose server end then sees a reset. */
static void test_two_connect(void) {
    volatile struct op op;
    int cr = go(connect_op("dual.test", P_RACE, 5000, &op));
    CHECK(cr >= 0);
    /* Both attempts have started (IPv4 300 ms after IPv6) and lost their
       first SYN. The kernel sends the second one 1 s after the first;
       with the thread blocked for 1.6 s both handshakes complete before
       the library sees either. */
    wait_fds(base_fds + 2);
    struct timespec hold = {1, 600 * 1000 * 1000};
    CHECK(nanosleep(&hold, NULL) == 0);
    int64_t deadline = now() + 2000;
    while(!op.done) {
        CHECK(now() < deadline);
        CHECK(msleep(now() + 10) == 0);
    }
    CHECK(hclose(cr) == 0);
    int s = op.rc;
    CHECK(s >= 0);
    int a6 = tcp_accept(l6_race, NULL, now() + 1000);
    CHECK(a6 >= 0);
    int a4 = tcp_accept(l4_race, NULL, now() + 1000);
    CHECK(a4 >= 0);
    CHECK(bsend(s, "x", 1, now() + 1000) == 0);
    char c = 0;
    int rc6 = brecv(a6, &c, 1, now() + 1000);
    int err6 = errno;
    int winner = rc6 == 0 ? a6 : a4, loser = rc6 == 0 ? a4 : a6;
    if(rc6 != 0) {
        CHECK(err6 == ECONNRESET);
        CHECK(brecv(a4, &c, 1, now() + 1000) == 0);
    }
    CHECK(c == 'x');
    if(rc6 == 0) CHECK_ERR(brecv(loser, &c, 1, now() + 1000), ECONNRESET);
    CHECK(hclose(winner) == 0);
    CHECK(hclose(loser) == 0);
    CHECK(hclose(s) == 0);
    check_clean("two connections at once");
}

static void test_deadline_zero(void) {
    int64_t t0 = now();
    CHECK_ERR(happyeyeballs_connect("dual.test", P_BOTH, 0), ETIMEDOUT);
    CHECK_ERR(happyeyeballs_connect("127.0.0.1", P_BOTH, 0), ETIMEDOUT);
    CHECK_ERR(happyeyeballs_connect("silent.test", P_BOTH, 0), ETIMEDOUT);
    CHECK_ERR(happyeyeballs_connect("dual.test", P_BOTH, now() - 1),
        ETIMEDOUT);
    CHECK_ERR(happyeyeballs_connect("dual.test", P_BOTH, 1), ETIMEDOUT);
    CHECK(now() - t0 < 40);
    /* Nothing was even tried. */
    CHECK_ERR(tcp_accept(l6_both, NULL, 0), ETIMEDOUT);
    CHECK_ERR(tcp_accept(l4_both, NULL, 0), ETIMEDOUT);
    check_clean("deadline 0");
}

static void test_deadline_midway(void) {
    int64_t took;
    /* During the resolution: the server never answers. */
    CHECK_ERR(connect_timed("silent.test", P_BOTH, 300, &took), ETIMEDOUT);
    check_took("deadline while resolving", took, 300, 600);
    check_clean("deadline while resolving");
    /* During two hanging attempts. */
    CHECK_ERR(connect_timed("dual.test", P_HANG, 500, &took), ETIMEDOUT);
    check_took("deadline while connecting", took, 500, 800);
    check_clean("deadline while connecting");
}

/* Called once the coroutine is being cancelled: the deadline does not
   matter. */
coroutine static void call_cancelled(volatile struct op *op) {
    op->done = 0;
    CHECK_ERR(msleep(-1), ECANCELED);
    int64_t t0 = now();
    CHECK_ERR(happyeyeballs_connect("dual.test", P_BOTH, -1), ECANCELED);
    CHECK_ERR(happyeyeballs_connect("dual.test", P_BOTH, 0), ECANCELED);
    CHECK_ERR(happyeyeballs_connect("127.0.0.1", P_BOTH, now() + 1000),
        ECANCELED);
    op->took = now() - t0;
    op->done = 1;
}

static void test_cancel(struct dns *d) {
    volatile struct op op;
    /* While both lookups wait for the server. */
    int before = d->silent_queries;
    int cr = go(connect_op("silent.test", P_BOTH, -1, &op));
    CHECK(cr >= 0);
    int64_t deadline = now() + 5000;
    while(d->silent_queries < before + 2) {
        CHECK(now() < deadline);
        CHECK(msleep(now() + 10) == 0);
    }
    CHECK(!op.done);
    int64_t t0 = now();
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(now() - t0 < 40);
    check_clean("cancelled while resolving");
    /* While both attempts hang. */
    cr = go(connect_op("dual.test", P_HANG, -1, &op));
    CHECK(cr >= 0);
    wait_fds(base_fds + 2);
    CHECK(!op.done);
    t0 = now();
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    CHECK(now() - t0 < 40);
    check_clean("cancelled while connecting");
    /* While the first attempt hangs and the next waits its turn. */
    cr = go(connect_op("dual.test", P_HANG, -1, &op));
    CHECK(cr >= 0);
    wait_fds(base_fds + 1);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.rc == -1 && op.err == ECANCELED);
    check_clean("cancelled between attempts");
    /* Called by a coroutine already cancelled. */
    cr = go(call_cancelled(&op));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(op.done && op.took < 40);
    CHECK_ERR(tcp_accept(l6_both, NULL, 0), ETIMEDOUT);
    check_clean("called when cancelled");
}

static void test_no_descriptors(void) {
    struct rlimit rl, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(close(fd) == 0);
    /* The lowest free number is the limit: no new descriptor at all. */
    low.rlim_cur = (rlim_t)fd;
    low.rlim_max = rl.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    int64_t took;
    CHECK_ERR(connect_timed("127.0.0.1", P_BOTH, 300, &took), ETIMEDOUT);
    check_took("no descriptors", took, 300, 600);
    CHECK_ERR(connect_timed("dual.test", P_BOTH, 300, &took), ETIMEDOUT);
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    check_clean("no descriptors");
}

static void test_small_stack(void) {
    static char stack[SMALL_STACK];
    volatile struct op op;
    int cr = go_mem(connect_op("dual.test", P_BOTH, 5000, &op), stack,
        sizeof(stack));
    CHECK(cr >= 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(op.done);
    check_conn(op.rc, l6_both, l4_both);
    check_clean("small stack");
}

int main(void) {
    /* ip and the iptables commands live in sbin. */
    const char *path = getenv("PATH");
    char full[4096];
    snprintf(full, sizeof(full), "%s:/usr/sbin:/sbin:/usr/bin:/bin",
        path ? path : "");
    setenv("PATH", full, 1);
    peer_require("ip", "iproute2");
    peer_require("iptables", "iptables");
    peer_require("ip6tables", "iptables");
    enter_namespaces();

    struct dns d;
    dns_start(&d);
    l6_both = listen_on("::1", P_BOTH);
    l4_both = listen_on("127.0.0.1", P_BOTH);
    l4_v4 = listen_on("127.0.0.1", P_V4);
    l6_v6 = listen_on("::1", P_V6);
    l6_v6hang = listen_on("::1", P_V6HANG);
    l4_v6hang = listen_on("127.0.0.1", P_V6HANG);
    l4_v4late = listen_on("127.0.0.1", P_V4LATE);
    l6_race = listen_on("::1", P_RACE);
    l4_race = listen_on("127.0.0.1", P_RACE);
    CHECK(yield() == 0);
    /* The resolver reads its files once, on first use. */
    struct ipaddr a;
    CHECK(ipaddr_remote(&a, "dual.test", 1, IPADDR_IPV6, -1) == 0);
    base_fds = fd_count();
    base_handles = handle_count();

    test_arguments();
    test_both_listen();
    test_one_listens();
    test_late();
    test_one_family();
    test_no_address();
    test_literals();
    test_dns_late();
    test_many();
    test_two_connect();
    test_deadline_zero();
    test_deadline_midway();
    test_cancel(&d);
    test_no_descriptors();
    test_small_stack();

    int ls[] = {l6_both, l4_both, l4_v4, l6_v6, l6_v6hang, l4_v6hang,
        l4_v4late, l6_race, l4_race};
    for(size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++)
        CHECK(hclose(ls[i]) == 0);
    CHECK(hclose(d.bundle) == 0);
    CHECK(close(d.fd) == 0);
    return 0;
}
