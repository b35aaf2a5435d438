/*
 * tests/resolver.c: host names through ipaddr_remote and ipaddr_remotes
 * (resolver.c), against a real dnsmasq. The test moves itself into new
 * mount and network namespaces, brings lo up, puts a tmpfs over /etc and
 * writes its own resolv.conf, hosts and nsswitch.conf there (the library
 * reads the real paths: no test-only knob), and starts dnsmasq on
 * 127.0.0.1:53. Other "servers" are sockets of the test itself: one on
 * 127.0.0.2:53 that reads queries and never answers; one on 127.0.0.3:53
 * (UDP and TCP) that answers forge.test with stray, forged and broken
 * replies before the right one, and oversize.test with a UDP reply longer
 * than 512 bytes; nothing on 127.0.0.4:53 (the kernel refuses with ICMP).
 *
 * Covers: no resolv.conf (ENOENT for names, while literals still work, so
 * they read no file); A, AAAA, both families in both preference orders,
 * ports; a CNAME chain; NXDOMAIN and no such record (0 results,
 * EADDRNOTAVAIL); names only in /etc/hosts (aliases, case, trailing dot,
 * several lines, an IPv6 zone), which the file answers for both families;
 * localhost without DNS; search domains and ndots; an absolute name;
 * answers too big for UDP (40 records with TC set; a reply longer than 512
 * bytes) fetched over TCP, a TCP reply arriving in pieces; a server that
 * never answers (ETIMEDOUT at the caller's deadline, other coroutines
 * running meanwhile); the resolver's own timeout x attempts (two queries
 * sent, then ETIMEDOUT); a second server after the first times out; a
 * server that refuses; replies that do not match the question; deadline 0;
 * cancellation; nsswitch.conf order and [NOTFOUND=return] after either
 * source; a nameserver at ::1; resolv.conf and nsswitch.conf re-read after
 * they change; 1,000 concurrent lookups from 1,000 coroutines; no fd
 * leaked.
 *
 * Needs root (namespaces) and dnsmasq (Debian: dnsmasq-base): without
 * either it fails and says so.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* unshare, CLONE_NEWNS */
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"

#define CONCURRENT 1000
#define BIG 40

/* ---- Environment -------------------------------------------------------- */

static pid_t dnsmasq = -1;

static void fail(const char *what) {
    fprintf(stderr, "tests/resolver: FAIL: %s\n", what);
    exit(1);
}

static void stop_dnsmasq(void) {
    if(dnsmasq <= 0) return;
    kill(dnsmasq, SIGKILL);
    waitpid(dnsmasq, NULL, 0);
    dnsmasq = -1;
}

static int fd_count(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    int n = 0;
    while(readdir(d)) n++;
    closedir(d);
    return n;
}

/* Replaced, not rewritten: the new file has a new inode. */
static void write_file(const char *path, const char *text) {
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    CHECK(f);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
    CHECK(rename(tmp, path) == 0);
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if(!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

/* The resolver looks at its files at most once a second: after a change,
   wait that long (the behaviour under test, not a guess). */
static void configure(const char *resolv, const char *nsswitch) {
    if(resolv) write_file("/etc/resolv.conf", resolv);
    else unlink("/etc/resolv.conf");
    write_file("/etc/nsswitch.conf", nsswitch);
    CHECK(msleep(now() + 1100) == 0);
}

static const char *find_dnsmasq(void) {
    static const char *paths[] = {"/usr/sbin/dnsmasq", "/sbin/dnsmasq",
        "/usr/bin/dnsmasq", "/usr/local/sbin/dnsmasq", "/bin/dnsmasq"};
    for(size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if(access(paths[i], X_OK) == 0) return paths[i];
    return NULL;
}

/* Mount and network namespaces of our own, lo up, a tmpfs over /etc
   holding only what the test writes (plus passwd and group, which
   dnsmasq needs to drop its privileges). */
static void enter_namespaces(void) {
    char *passwd = read_file("/etc/passwd");
    char *group = read_file("/etc/group");
    if(unshare(CLONE_NEWNS | CLONE_NEWNET) < 0) {
        fprintf(stderr, "tests/resolver: FAIL: unshare(CLONE_NEWNS | "
            "CLONE_NEWNET): %s. This test must run as root on a machine "
            "that allows mount and network namespaces (CI does).\n",
            strerror(errno));
        exit(1);
    }
    CHECK(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0);
    CHECK(mount("tmpfs", "/etc", "tmpfs", 0, "mode=755") == 0);
    if(passwd) write_file("/etc/passwd", passwd);
    if(group) write_file("/etc/group", group);
    free(passwd);
    free(group);
    /* ip link set lo up */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
    ifr.ifr_flags |= IFF_UP;
    CHECK(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
    close(s);
}

static const char hosts[] =
    "# the hosts file of the test\n"
    "127.0.0.1 localhost\n"
    "::1 localhost ip6-localhost\n"
    "10.9.9.9 hostsonly.test hostsonly-alias # a comment\n"
    "fd00::99\thostsonly.test\n"
    "10.9.9.10 multi.test\n"
    "10.9.9.11 multi.test\n"
    "10.9.9.20 order.test\n"
    "fe80::1%lo scoped.test\n"
    "10.9.9.30 v4only.localhost\n";

/* dnsmasq's own records. */
static void write_dns_hosts(void) {
    FILE *f = fopen("/etc/dns.hosts", "w");
    CHECK(f);
    fputs("10.0.0.5 a.test\n10.0.0.20 order.test\n10.0.0.30 svc.test\n"
        "10.0.0.31 svc.test.corp.test\n10.0.0.8 web.corp.test\n"
        "10.0.0.9 deep.web.corp.test\n", f);
    for(int i = 1; i <= BIG; i++) fprintf(f, "10.2.0.%d big.test\n", i);
    for(int i = 0; i < CONCURRENT; i++)
        fprintf(f, "10.1.%d.%d h%d.test\n", i / 256, i % 256, i);
    CHECK(fclose(f) == 0);
}

static int port53_open(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&a, sizeof(a));
    close(s);
    return rc == 0;
}

/* Whether lo has ::1 (a kernel can have IPv6 turned off). */
static int have_ipv6(void) {
    int s = socket(AF_INET6, SOCK_DGRAM, 0);
    if(s < 0) return 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    a.sin6_addr = in6addr_loopback;
    int ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

static void start_dnsmasq(void) {
    const char *path = find_dnsmasq();
    if(!path)
        fail("dnsmasq not found; install it: apt-get install dnsmasq-base");
    write_dns_hosts();
    pid_t parent = getpid();
    dnsmasq = fork();
    CHECK(dnsmasq >= 0);
    if(dnsmasq == 0) {
        /* Dies with the test, however the test ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if(getppid() != parent) _exit(1);
        int log = open("/etc/dnsmasq.log", O_WRONLY | O_CREAT | O_TRUNC,
            0644);
        if(log >= 0) {
            dup2(log, 1);
            dup2(log, 2);
        }
        const char *argv[] = {"dnsmasq", "-k", "-C", "/dev/null",
            "--pid-file", "--no-resolv", "--no-hosts", "--no-poll",
            "--bind-interfaces", "--port=53", "--log-facility=-",
            "--local=/test/", "--addn-hosts=/etc/dns.hosts",
            "--host-record=v6.test,fd00::6",
            "--host-record=both.test,10.0.0.7,fd00::7",
            "--cname=c1.test,c2.test", "--cname=c2.test,c3.test",
            "--cname=c3.test,both.test", "--listen-address=127.0.0.1",
            have_ipv6() ? "--listen-address=::1" : NULL, NULL};
        execv(path, (char **)argv);
        _exit(127);
    }
    atexit(stop_dnsmasq);
    /* Ready when it accepts on port 53 (it binds UDP and TCP together). */
    for(int i = 0; !port53_open(); i++) {
        int status;
        if(waitpid(dnsmasq, &status, WNOHANG) == dnsmasq) {
            dnsmasq = -1;
            char *log = read_file("/etc/dnsmasq.log");
            fprintf(stderr, "%s", log ? log : "");
            fail("dnsmasq exited at start (log above)");
        }
        if(i == 500) fail("dnsmasq not listening on 127.0.0.1:53 after 5 s");
        usleep(10000);
    }
}

/* A UDP socket of the test on addr:53. */
static int udp_server(const char *addr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    CHECK(inet_pton(AF_INET, addr, &a.sin_addr) == 1);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    return s;
}

/* 1,000 lookups at once hold 1,000 sockets. Only the soft limit is
   raised (valgrind keeps the hard one for itself). */
static void raise_fd_limit(void) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rlim_t need = CONCURRENT + 100;
    if(rl.rlim_cur >= need) return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 2 * need ?
        2 * need : rl.rlim_max;
    if(rl.rlim_cur < need || setrlimit(RLIMIT_NOFILE, &rl) < 0)
        fail("RLIMIT_NOFILE too low for 1,000 concurrent lookups");
}

static int tcp_server(const char *addr) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(s >= 0);
    int one = 1;
    CHECK(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    CHECK(inet_pton(AF_INET, addr, &a.sin_addr) == 1);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(s, 16) == 0);
    return s;
}

/* ---- The server that never answers ------------------------------------ */

struct dropper {
    int fd;
    int count;
    uint16_t ids[8];
    uint16_t ports[8];
};

coroutine static void drop_loop(struct dropper *d) {
    while(fdin(d->fd, -1) == 0) {
        uint8_t buf[600];
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(d->fd, buf, sizeof(buf), 0,
            (struct sockaddr *)&from, &flen);
        if(n < 12) continue;
        if(d->count < 8) {
            d->ids[d->count] = (uint16_t)(buf[0] << 8 | buf[1]);
            d->ports[d->count] = ntohs(from.sin_port);
        }
        d->count++;
    }
}

/* ---- The forger ------------------------------------------------------- */

/* Answers forge.test (A) with, in this order: a reply with another id, one
   for another name, one for another type, a non-response, one whose answer
   record is cut short, one sent from another address, and only then the
   true answer 10.7.7.7. Answers oversize.test (A) over UDP with 600 bytes
   (10.8.8.8 and padding), more than a reply may have without EDNS, and
   over TCP with 10.8.8.9, in two pieces. Every other query is REFUSED. */
struct forger {
    int fd;
    int other; /* UDP on 127.0.0.5:53 */
    int tcp;   /* listening on 127.0.0.3:53 */
    int answered;
    int tcp_answered;
};

static const uint8_t forge_name[] = "\x05" "forge" "\x04" "test";
static const uint8_t oversize_name[] = "\x08" "oversize" "\x04" "test";

/* The query of length n asks for this name (wire form, root label
   included) and type A. */
static int asks_for(const uint8_t *q, size_t n, const uint8_t *name,
      size_t nlen) {
    return n >= 12 + nlen + 4 && memcmp(q + 12, name, nlen) == 0 &&
        q[12 + nlen] == 0 && q[12 + nlen + 1] == 1;
}

/* A reply to the query (header and question, qend bytes) with one A
   record for the question's name, or none when addr is NULL. */
static size_t reply(uint8_t *out, const uint8_t *query, size_t qend,
      uint16_t flags, const uint8_t *addr, int cut) {
    memcpy(out, query, qend);
    out[2] = (uint8_t)(flags >> 8);
    out[3] = (uint8_t)flags;
    out[6] = 0;
    out[7] = addr ? 1 : 0;
    if(!addr) return qend;
    static const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
    memcpy(out + qend, rr, sizeof(rr));
    memcpy(out + qend + sizeof(rr), addr, 4);
    return qend + sizeof(rr) + (cut ? 2 : 4);
}

static void forge(struct forger *f, const uint8_t *q, size_t n,
      struct sockaddr *to, socklen_t tolen) {
    uint8_t r[700];
    size_t nlen = sizeof(forge_name);
    size_t qend = 12 + nlen + 4;
    static const uint8_t bad[4] = {10, 6, 6, 6};
    static const uint8_t good[4] = {10, 7, 7, 7};
    static const uint8_t udp[4] = {10, 8, 8, 8};
    if(asks_for(q, n, oversize_name, sizeof(oversize_name))) {
        size_t len = reply(r, q, 12 + sizeof(oversize_name) + 4, 0x8180, udp,
            0);
        memset(r + len, 0, 600 - len);
        sendto(f->fd, r, 600, 0, to, tolen);
        return;
    }
    if(!asks_for(q, n, forge_name, nlen)) {
        size_t len = reply(r, q, n, 0x8185, NULL, 0);
        sendto(f->fd, r, len, 0, to, tolen);
        return;
    }
    size_t len = reply(r, q, qend, 0x8180, bad, 0);
    r[1] ^= 1;                                   /* another id */
    sendto(f->fd, r, len, 0, to, tolen);
    len = reply(r, q, qend, 0x8180, bad, 0);
    r[13] = 'g';                                 /* gorge.test */
    sendto(f->fd, r, len, 0, to, tolen);
    len = reply(r, q, qend, 0x8180, bad, 0);
    r[12 + nlen + 1] = 28;                       /* AAAA question */
    sendto(f->fd, r, len, 0, to, tolen);
    len = reply(r, q, qend, 0x0100, bad, 0);     /* QR not set */
    sendto(f->fd, r, len, 0, to, tolen);
    len = reply(r, q, qend, 0x8180, bad, 1);     /* record cut short */
    sendto(f->fd, r, len, 0, to, tolen);
    len = reply(r, q, qend, 0x8180, bad, 0);     /* not the server */
    sendto(f->other, r, len, 0, to, tolen);
    len = reply(r, q, qend, 0x8180, good, 0);
    sendto(f->fd, r, len, 0, to, tolen);
    f->answered++;
}

coroutine static void forge_loop(struct forger *f) {
    while(fdin(f->fd, -1) == 0) {
        uint8_t q[512];
        struct sockaddr_in from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(f->fd, q, sizeof(q), 0,
            (struct sockaddr *)&from, &flen);
        if(n >= 12) forge(f, q, (size_t)n, (struct sockaddr *)&from, flen);
    }
}

static int tcp_read(int fd, uint8_t *buf, size_t len) {
    while(len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if(n < 0 && errno == EAGAIN) {
            if(fdin(fd, now() + 2000) < 0) return -1;
            continue;
        }
        if(n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One TCP exchange: the length-prefixed query, the length-prefixed
   reply in two pieces, 20 ms apart. */
static void forge_tcp_one(struct forger *f, int c) {
    uint8_t head[2], q[512], r[600];
    if(tcp_read(c, head, 2) < 0) return;
    size_t n = (size_t)head[0] << 8 | head[1];
    if(n > sizeof(q) || tcp_read(c, q, n) < 0) return;
    if(!asks_for(q, n, oversize_name, sizeof(oversize_name))) return;
    static const uint8_t addr[4] = {10, 8, 8, 9};
    size_t len = reply(r + 2, q, n, 0x8180, addr, 0);
    r[0] = (uint8_t)(len >> 8);
    r[1] = (uint8_t)len;
    CHECK(send(c, r, 5, MSG_NOSIGNAL) == 5);
    CHECK(msleep(now() + 20) == 0);
    CHECK(send(c, r + 5, len - 3, MSG_NOSIGNAL) == (ssize_t)(len - 3));
    f->tcp_answered++;
}

coroutine static void forge_tcp(struct forger *f) {
    while(fdin(f->tcp, -1) == 0) {
        int c = accept4(f->tcp, NULL, NULL, SOCK_NONBLOCK);
        if(c < 0) continue;
        forge_tcp_one(f, c);
        fdclean(c);
        close(c);
    }
}

/* ---- Checks ------------------------------------------------------------- */

static int64_t later(void) {
    return now() + 5000;
}

static void check_addr(const struct ipaddr *a, const char *ip, int port) {
    char buf[IPADDR_MAXSTRLEN];
    CHECK(ipaddr_str(a, buf) == buf);
    if(strcmp(buf, ip) != 0)
        fprintf(stderr, "got %s, expected %s\n", buf, ip);
    CHECK(strcmp(buf, ip) == 0);
    CHECK(ipaddr_family(a) == (strchr(ip, ':') ? AF_INET6 : AF_INET));
    CHECK(ipaddr_port(a) == port);
}

static void expect(const char *name, int mode, const char *ip) {
    struct ipaddr a;
    CHECK(ipaddr_remote(&a, name, 5353, mode, later()) == 0);
    check_addr(&a, ip, 5353);
}

static void expect_none(const char *name, int mode) {
    struct ipaddr a[4];
    CHECK(ipaddr_remotes(a, 4, name, 1, mode, later()) == 0);
    CHECK_ERR(ipaddr_remote(a, name, 1, mode, later()), EADDRNOTAVAIL);
}

/* ---- No resolv.conf ----------------------------------------------------- */

static void test_no_resolv_conf(void) {
    int fds = fd_count();
    struct ipaddr a;
    CHECK_ERR(ipaddr_remote(&a, "localhost", 80, 0, later()), ENOENT);
    CHECK_ERR(ipaddr_remote(&a, "hostsonly.test", 80, IPADDR_IPV4, later()),
        ENOENT);
    CHECK_ERR(ipaddr_remotes(&a, 1, "a.test", 80, IPADDR_IPV6, later()),
        ENOENT);
    /* A literal of the other family goes to the resolver (sockets.md
       §7.2), which loads its configuration first. */
    CHECK_ERR(ipaddr_remotes(&a, 1, "::1", 80, IPADDR_IPV4, later()), ENOENT);
    CHECK_ERR(ipaddr_remote(&a, "1.2.3.4", 80, IPADDR_IPV6, later()), ENOENT);
    /* Literals of the right family never touch a file: they work. */
    CHECK(ipaddr_remote(&a, "127.0.0.1", 80, IPADDR_IPV4, later()) == 0);
    check_addr(&a, "127.0.0.1", 80);
    CHECK(ipaddr_remote(&a, "::1", 81, 0, later()) == 0);
    check_addr(&a, "::1", 81);
    CHECK(ipaddr_remotes(&a, 1, "10.1.2.3", 82, IPADDR_PREF_IPV6, 0) == 1);
    check_addr(&a, "10.1.2.3", 82);
    CHECK(fd_count() == fds);
}

/* ---- One nameserver that works ---------------------------------------- */

static void test_records(void) {
    /* A, AAAA, and names with both. */
    expect("a.test", IPADDR_IPV4, "10.0.0.5");
    expect("a.test", 0, "10.0.0.5");
    expect("a.test", IPADDR_PREF_IPV6, "10.0.0.5");
    expect_none("a.test", IPADDR_IPV6);
    expect("v6.test", IPADDR_IPV6, "fd00::6");
    expect("v6.test", 0, "fd00::6");
    expect("v6.test", IPADDR_PREF_IPV4, "fd00::6");
    expect_none("v6.test", IPADDR_IPV4);
    expect("A.Test", IPADDR_IPV4, "10.0.0.5");
    struct ipaddr a[8];
    CHECK(ipaddr_remotes(a, 8, "both.test", 8080, 0, later()) == 2);
    check_addr(&a[0], "10.0.0.7", 8080);
    check_addr(&a[1], "fd00::7", 8080);
    CHECK(ipaddr_remotes(a, 8, "both.test", 8081, IPADDR_PREF_IPV6,
        later()) == 2);
    check_addr(&a[0], "fd00::7", 8081);
    check_addr(&a[1], "10.0.0.7", 8081);
    /* One slot: the preferred family fills it. */
    CHECK(ipaddr_remotes(a, 1, "both.test", 1, IPADDR_PREF_IPV6,
        later()) == 1);
    check_addr(&a[0], "fd00::7", 1);
    CHECK(ipaddr_remotes(a, 8, "both.test", 2, IPADDR_IPV6, later()) == 1);
    check_addr(&a[0], "fd00::7", 2);
    /* A chain of three CNAMEs. */
    expect("c1.test", IPADDR_IPV4, "10.0.0.7");
    expect("c1.test", IPADDR_IPV6, "fd00::7");
    expect("c3.test", 0, "10.0.0.7");
    /* NXDOMAIN; a name outside every zone dnsmasq knows (REFUSED). */
    expect_none("nosuch.test", 0);
    expect_none("nosuch.test", IPADDR_IPV6);
    expect_none("outside.example", IPADDR_IPV4);
    /* A literal of the other family in a strict mode: 0 results. */
    expect_none("1.2.3.4", IPADDR_IPV6);
    expect_none("::1", IPADDR_IPV4);
    /* Not names at all. */
    expect_none("", IPADDR_IPV4);
    expect_none("a..test", IPADDR_IPV4);
}

static void test_hosts_file(void) {
    expect("hostsonly.test", IPADDR_IPV4, "10.9.9.9");
    expect("hostsonly.test", IPADDR_IPV6, "fd00::99");
    expect("hostsonly-alias", IPADDR_IPV4, "10.9.9.9");
    expect("HostsOnly.TEST.", 0, "10.9.9.9");
    expect("localhost", IPADDR_IPV4, "127.0.0.1");
    expect("localhost", IPADDR_IPV6, "::1");
    expect("ip6-localhost", IPADDR_PREF_IPV4, "::1");
    /* files before dns: the file's address, not dnsmasq's. */
    expect("order.test", IPADDR_IPV4, "10.9.9.20");
    struct ipaddr a[4];
    CHECK(ipaddr_remotes(a, 4, "hostsonly.test", 7, IPADDR_PREF_IPV6,
        later()) == 2);
    check_addr(&a[0], "fd00::99", 7);
    check_addr(&a[1], "10.9.9.9", 7);
    CHECK(ipaddr_remotes(a, 4, "multi.test", 7, IPADDR_IPV4, later()) == 2);
    check_addr(&a[0], "10.9.9.10", 7);
    check_addr(&a[1], "10.9.9.11", 7);
    /* The file speaks for its names: no AAAA query, nothing found. */
    CHECK(ipaddr_remotes(a, 4, "multi.test", 7, IPADDR_IPV6, later()) == 0);
    CHECK(ipaddr_remotes(a, 4, "scoped.test", 7, IPADDR_IPV6, later()) == 1);
    check_addr(&a[0], "fe80::1", 7);
    struct sockaddr_in6 sa6;
    memcpy(&sa6, ipaddr_sockaddr(&a[0]), sizeof(sa6));
    CHECK(sa6.sin6_scope_id == if_nametoindex("lo"));
    CHECK(sa6.sin6_scope_id != 0);
    /* Without the network: deadline 0 is enough. */
    CHECK(ipaddr_remote(a, "hostsonly.test", 1, 0, 0) == 0);
    CHECK(ipaddr_remote(a, "hostsonly.test", 1, 0, now() - 1000) == 0);
}

static void test_search(void) {
    /* "search corp.test", ndots 1: no dot, the search list first. */
    expect("web", IPADDR_IPV4, "10.0.0.8");
    /* Absolute: never expanded. */
    expect_none("web.", IPADDR_IPV4);
    /* One dot >= ndots: the name as it is first. */
    expect("svc.test", IPADDR_IPV4, "10.0.0.30");
    /* Not found as it is (REFUSED: no zone of dnsmasq's): then with the
       search domain. */
    expect("deep.web", IPADDR_IPV4, "10.0.0.9");
    expect("a.test.", IPADDR_IPV4, "10.0.0.5");
}

static void test_tcp(void) {
    /* 40 A records do not fit in 512 bytes: dnsmasq sets TC, we ask again
       over TCP and get them all. */
    struct ipaddr a[64];
    int n = ipaddr_remotes(a, 64, "big.test", 443, IPADDR_IPV4, later());
    CHECK(n == BIG);
    int seen[BIG + 1] = {0};
    for(int i = 0; i < n; i++) {
        char buf[IPADDR_MAXSTRLEN];
        CHECK(ipaddr_str(&a[i], buf));
        int last;
        CHECK(sscanf(buf, "10.2.0.%d", &last) == 1);
        CHECK(last >= 1 && last <= BIG && !seen[last]);
        seen[last] = 1;
        CHECK(ipaddr_port(&a[i]) == 443);
    }
    /* Same over the preference mode (AAAA finds nothing) and with room for
       fewer addresses than the answer holds. */
    CHECK(ipaddr_remotes(a, 64, "big.test", 443, 0, later()) == BIG);
    CHECK(ipaddr_remotes(a, 5, "big.test", 443, 0, later()) == 5);
    CHECK(ipaddr_remote(a, "big.test", 443, 0, later()) == 0);
}

/* A lookup with nothing to wait for must not succeed at deadline 0. */
static void test_deadline_zero(void) {
    struct ipaddr a;
    CHECK_ERR(ipaddr_remote(&a, "a.test", 1, IPADDR_IPV4, 0), ETIMEDOUT);
    CHECK_ERR(ipaddr_remote(&a, "a.test", 1, IPADDR_IPV4, now() - 1),
        ETIMEDOUT);
}

coroutine static void one_lookup(int i, int *ok) {
    char name[32], ip[32], buf[IPADDR_MAXSTRLEN];
    snprintf(name, sizeof(name), "h%d.test", i);
    snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
    struct ipaddr a;
    if(ipaddr_remote(&a, name, i, IPADDR_IPV4, now() + 20000) != 0) {
        fprintf(stderr, "lookup of %s: %s\n", name, strerror(errno));
        return;
    }
    if(strcmp(ipaddr_str(&a, buf), ip) == 0 && ipaddr_port(&a) == i)
        (*ok)++;
}

static void test_concurrent(void) {
    int ok = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < CONCURRENT; i++)
        CHECK(bundle_go(b, one_lookup(i, &ok)) == 0);
    CHECK(bundle_wait(b, now() + 30000) == 0);
    CHECK(hclose(b) == 0);
    CHECK(ok == CONCURRENT);
}

/* ---- Servers that fail -------------------------------------------------- */

coroutine static void ticker(int *ticks) {
    while(msleep(now() + 10) == 0) (*ticks)++;
}

coroutine static void lookup_forever(int *rc, int *err) {
    struct ipaddr a;
    *rc = ipaddr_remote(&a, "a.test.", 1, IPADDR_IPV4, -1);
    *err = errno;
}

static void test_never_answers(struct dropper *d) {
    int ticks = 0;
    int t = go(ticker(&ticks));
    CHECK(t >= 0);
    int before = d->count;
    struct ipaddr a;
    int64_t start = now();
    CHECK_ERR(ipaddr_remote(&a, "a.test.", 1, IPADDR_IPV4, start + 800),
        ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 800 && took < 1200);
    CHECK(d->count == before + 1);   /* timeout 5 s: no second query yet */
    CHECK(ticks >= 30);              /* the thread was not blocked */
    CHECK(hclose(t) == 0);
    /* Cancelled while it waits. */
    int rc = 0, err = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, lookup_forever(&rc, &err)) == 0);
    CHECK(msleep(now() + 100) == 0);
    CHECK(hclose(b) == 0);
    CHECK(rc == -1 && err == ECANCELED);
    /* Names the resolver answers itself still work, without a query: for
       a name in the hosts file, not even for its other family. */
    before = d->count;
    struct ipaddr m[4];
    CHECK(ipaddr_remotes(m, 4, "multi.test", 7, 0, now() + 500) == 2);
    CHECK(ipaddr_remotes(m, 4, "ip6-localhost", 7, 0, now() + 500) == 1);
    check_addr(&m[0], "::1", 7);
    expect("hostsonly.test", IPADDR_IPV4, "10.9.9.9");
    expect("foo.localhost", IPADDR_IPV4, "127.0.0.1");
    expect("LOCALHOST.", IPADDR_IPV6, "::1");
    expect("x.y.localhost", IPADDR_IPV6, "::1");
    /* Unless the hosts file lists them. */
    expect("v4only.localhost", IPADDR_IPV4, "10.9.9.30");
    expect_none("v4only.localhost", IPADDR_IPV6);
    CHECK(d->count == before);
}

static void test_second_server(void) {
    struct ipaddr a;
    int64_t start = now();
    CHECK(ipaddr_remote(&a, "a.test.", 9, IPADDR_IPV4, start + 5000) == 0);
    int64_t took = now() - start;
    check_addr(&a, "10.0.0.5", 9);
    CHECK(took >= 1000 && took < 2000);
}

static void test_retransmission(struct dropper *d) {
    d->count = 0;
    struct ipaddr a;
    int64_t start = now();
    CHECK_ERR(ipaddr_remote(&a, "a.test.", 9, IPADDR_IPV4, -1), ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 2000 && took < 2700);
    /* attempts:2 -> sent twice, from a fresh socket with a fresh id. */
    CHECK(d->count == 2);
    CHECK(d->ids[0] != d->ids[1] || d->ports[0] != d->ports[1]);
}

static void test_refused_and_forged(struct forger *f) {
    struct ipaddr a;
    int64_t start = now();
    /* 127.0.0.4 refuses at once (ICMP), 127.0.0.3 sends six bad replies
       before the right one. */
    CHECK(ipaddr_remote(&a, "forge.test", 9, IPADDR_IPV4, start + 5000) == 0);
    CHECK(now() - start < 1000);
    check_addr(&a, "10.7.7.7", 9);
    CHECK(f->answered == 1);
    /* A UDP reply cut at 512 bytes: the whole one comes over TCP. */
    expect("oversize.test", IPADDR_IPV4, "10.8.8.9");
    CHECK(f->tcp_answered == 1);
    /* ndots:2 and "search corp.test": one dot, so the search list first
       (the forger refuses, dnsmasq answers). */
    expect("svc.test", IPADDR_IPV4, "10.0.0.31");
    /* nsswitch.conf says dns before files. */
    expect("order.test", IPADDR_IPV4, "10.0.0.20");
    expect("hostsonly.test", IPADDR_IPV4, "10.9.9.9");
}

static void test_notfound_return(void) {
    expect_none("a.test", IPADDR_IPV4);
    expect("hostsonly.test", IPADDR_IPV4, "10.9.9.9");
    expect("order.test", IPADDR_IPV4, "10.9.9.20");
}

/* DNS first, [NOTFOUND=return] after it, the server at ::1. */
static void test_dns_notfound_return(void) {
    expect("a.test", IPADDR_IPV4, "10.0.0.5");
    expect("v6.test", IPADDR_IPV6, "fd00::6");
    expect("order.test", IPADDR_IPV4, "10.0.0.20");
    expect_none("hostsonly.test", IPADDR_IPV4);
}

int main(void) {
    enter_namespaces();
    write_file("/etc/hosts", hosts);
    write_file("/etc/nsswitch.conf", "hosts: files dns\n");
    start_dnsmasq();
    raise_fd_limit();

    struct dropper d = {.fd = udp_server("127.0.0.2")};
    struct forger f = {.fd = udp_server("127.0.0.3"),
        .other = udp_server("127.0.0.5"), .tcp = tcp_server("127.0.0.3")};
    int servers = bundle();
    CHECK(servers >= 0);
    CHECK(bundle_go(servers, drop_loop(&d)) == 0);
    CHECK(bundle_go(servers, forge_loop(&f)) == 0);
    CHECK(bundle_go(servers, forge_tcp(&f)) == 0);
    int fds = fd_count();

    test_no_resolv_conf();

    configure("nameserver 127.0.0.1\nsearch corp.test\n"
        "options ndots:1 timeout:1 attempts:3\n", "hosts: files dns\n");
    test_records();
    test_hosts_file();
    test_search();
    test_tcp();
    test_deadline_zero();
    test_concurrent();
    CHECK(fd_count() == fds);

    /* The change is seen: the same name now goes to a dead server. */
    configure("nameserver 127.0.0.2\noptions timeout:5 attempts:2\n",
        "hosts: files dns\n");
    test_never_answers(&d);
    CHECK(fd_count() == fds);

    configure("nameserver 127.0.0.2\nnameserver 127.0.0.1\n"
        "options timeout:1 attempts:1\n", "hosts: files dns\n");
    test_second_server();

    configure("nameserver 127.0.0.2\noptions timeout:1 attempts:2\n",
        "hosts: files dns\n");
    test_retransmission(&d);
    CHECK(fd_count() == fds);

    configure("nameserver 127.0.0.4\nnameserver 127.0.0.3\n"
        "nameserver 127.0.0.1\ndomain corp.test\noptions ndots:2\n",
        "# dns first\nhosts: mdns4_minimal [NOTFOUND=return] dns files\n");
    test_refused_and_forged(&f);

    configure("nameserver 127.0.0.1\n",
        "passwd: files\nhosts: files [NOTFOUND=return] dns\n");
    test_notfound_return();
    CHECK(fd_count() == fds);

    if(!have_ipv6())
        fprintf(stderr, "tests/resolver: note: no ::1 on this machine, so "
            "the IPv6 nameserver is asked at 127.0.0.1 instead\n");
    /* The dead server second: only ::1 can answer. */
    configure(have_ipv6() ?
        "nameserver ::1\nnameserver 127.0.0.2\noptions timeout:1\n" :
        "nameserver 127.0.0.1\nnameserver 127.0.0.2\noptions timeout:1\n",
        "hosts: dns [NOTFOUND=return] files\n");
    test_dns_notfound_return();
    CHECK(fd_count() == fds);

    CHECK(hclose(servers) == 0);
    int socks[] = {d.fd, f.fd, f.other, f.tcp};
    for(size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
        CHECK(fdclean(socks[i]) == 0);
        CHECK(close(socks[i]) == 0);
    }
    stop_dnsmasq();
    return 0;
}
