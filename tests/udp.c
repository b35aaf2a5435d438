/*
 * tests/udp.c: UDP sockets (sockets.md §10, §4, §20.12, §21), over IPv4
 * (127.0.0.1, and 127.0.0.2 for a second source address) and IPv6 (::1;
 * a machine without an IPv6 loopback fails this test). Covers udp_open and
 * udp_open_mem (storage at every offset 0..7; NULL local and remote; the
 * family rules, EINVAL for mixed families, EAFNOSUPPORT for an unset
 * address; bind errors reported: EADDRINUSE, EADDRNOTAVAIL; the ephemeral
 * port written back, a port of its own for every socket given port 0 or
 * no local address, SO_REUSEADDR set all the same; EMFILE; ECANCELED from handle creation); unconnected
 * use (udp_send/udp_sendl/udp_recv/udp_recvl with an address per call, the
 * sender's address reported) and connected-style use (remote given at
 * open: msend/msendl/mrecv/mrecvl; datagrams from another port or another
 * address silently dropped); EINVAL without a destination; scatter/gather
 * lists with empty and NULL-base (skipped) elements; silent truncation
 * returning the truncated length; mrecvl(NULL, NULL) consuming one
 * datagram and returning 0; empty datagrams; EBUSY for receives and sends
 * while a receive is blocked; deadlines (0, past, future; ETIMEDOUT never
 * earlier than the deadline) and cancellation, after which the socket works
 * on; a socket closed under a blocked receive (EBADF at once); EBADF,
 * ENOTSUP (IPC connection, channel, and a message socket of another kind
 * made here with hmake) and iolist validation for every function;
 * EMSGSIZE and EAFNOSUPPORT from sendmsg; no sticky errors. The kernel
 * never reports EAGAIN for a UDP send on loopback, so the silent drop is
 * tested by interposing sendmsg in this program (and so is a retried
 * EINTR and another errno returned as is). Every test checks that no
 * descriptor leaked.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libdillimpl.h"
#include "check.h"

/* A deadline for what must happen soon: a bug fails the test instead of
   hanging it. */
#define SOON (now() + 10000)

/* ---- sendmsg interposed: fail the next `fail_count` calls ---------------- */

static int fail_errno;
static int fail_count;

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    if(fail_count > 0) {
        fail_count--;
        errno = fail_errno;
        return -1;
    }
    return syscall(SYS_sendmsg, fd, msg, flags);
}

static int sendmsg_calls_left(void) {
    return fail_count;
}

/* ---- Scaffolding ---------------------------------------------------------- */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while((e = readdir(d))) if(e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

struct result {
    int done;
    ssize_t rc;
    int err;
    int64_t when;
    char data[64];
    struct ipaddr from;
};

static void finish(volatile struct result *r, ssize_t rc) {
    r->err = errno;
    r->rc = rc;
    r->when = now();
    r->done = 1;
}

static const char *loopback(int family) {
    return family == AF_INET ? "127.0.0.1" : "::1";
}

static void make_addr(struct ipaddr *a, int family, const char *ip, int port) {
    int mode = family == AF_INET ? IPADDR_IPV4 : IPADDR_IPV6;
    CHECK(ipaddr_local(a, ip, port, mode) == 0);
    CHECK(ipaddr_family(a) == family);
}

/* A socket bound to the loopback address on an ephemeral port; its
   address in *addr. */
static int open_local(int family, struct ipaddr *addr,
      const struct ipaddr *remote) {
    make_addr(addr, family, loopback(family), 0);
    int s = udp_open(addr, remote);
    CHECK(s >= 0);
    CHECK(ipaddr_port(addr) != 0);
    return s;
}

/* Nothing more is queued on s. */
static void check_empty(int s) {
    char c;
    CHECK_ERR(mrecv(s, &c, 1, 0), ETIMEDOUT);
}

coroutine static void do_recv(int s, int64_t deadline,
      volatile struct result *r) {
    struct ipaddr from;
    char buf[64];
    ssize_t rc = udp_recv(s, &from, buf, sizeof(buf), deadline);
    int err = errno;
    if(rc > 0) memcpy((char *)r->data, buf, (size_t)rc);
    memcpy((void *)&r->from, &from, sizeof(from));
    errno = err;
    finish(r, rc);
}

coroutine static void do_mrecv(int s, int64_t deadline,
      volatile struct result *r) {
    char buf[64];
    ssize_t rc = mrecv(s, buf, sizeof(buf), deadline);
    int err = errno;
    if(rc > 0) memcpy((char *)r->data, buf, (size_t)rc);
    errno = err;
    finish(r, rc);
}

/* ---- Opening --------------------------------------------------------------- */

static void test_open(int family) {
    struct ipaddr b;
    int sb = open_local(family, &b, NULL);
    /* Neither address: a socket of the family (IPv4 without any), bound
       to the wildcard address on a port of its own. */
    if(family == AF_INET) {
        int s = udp_open(NULL, NULL);
        CHECK(s >= 0);
        CHECK(udp_send(s, &b, "anon", 4) == 0);
        struct ipaddr from;
        char buf[8];
        CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 4);
        CHECK(memcmp(buf, "anon", 4) == 0);
        CHECK(ipaddr_family(&from) == AF_INET && ipaddr_port(&from) != 0);
        CHECK(hclose(s) == 0);
    }
    /* Only a remote: the family is the remote's. */
    int s = udp_open(NULL, &b);
    CHECK(s >= 0);
    CHECK(msend(s, "rem", 3, -1) == 0);
    char buf[8];
    struct ipaddr from;
    CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 3);
    CHECK(ipaddr_family(&from) == family);
    CHECK(hclose(s) == 0);
    /* Ephemeral port written back, the rest of the address untouched. */
    struct ipaddr a, orig;
    make_addr(&a, family, loopback(family), 0);
    memcpy(&orig, &a, sizeof(a));
    s = udp_open(&a, NULL);
    CHECK(s >= 0);
    CHECK(ipaddr_port(&a) != 0);
    CHECK(ipaddr_equal(&a, &orig, 1));
    CHECK(udp_send(s, &b, "x", 1) == 0);
    CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 1);
    CHECK(ipaddr_equal(&from, &a, 0));
    CHECK(hclose(s) == 0);
    /* A fixed port is used as given. */
    struct ipaddr fixed;
    make_addr(&fixed, family, loopback(family), ipaddr_port(&a));
    s = udp_open(&fixed, NULL);
    CHECK(s >= 0);
    CHECK(ipaddr_port(&fixed) == ipaddr_port(&a));
    CHECK(hclose(s) == 0);

    /* Mixed families, missing storage, unset addresses. */
    struct ipaddr other;
    make_addr(&other, family == AF_INET ? AF_INET6 : AF_INET,
        family == AF_INET ? "::1" : "127.0.0.1", 5555);
    struct udp_storage mem;
    CHECK_ERR(udp_open(&a, &other), EINVAL);
    CHECK_ERR(udp_open_mem(&a, &other, &mem), EINVAL);
    CHECK_ERR(udp_open_mem(&a, NULL, NULL), EINVAL);
    CHECK_ERR(udp_open_mem(NULL, NULL, NULL), EINVAL);
    struct ipaddr unset;
    memset(&unset, 0, sizeof(unset));
    CHECK_ERR(udp_open(&unset, NULL), EAFNOSUPPORT);
    CHECK_ERR(udp_open(NULL, &unset), EAFNOSUPPORT);
    CHECK_ERR(udp_open_mem(&unset, NULL, &mem), EAFNOSUPPORT);

    /* Bind errors are reported (the original ignored them). A port held
       by a socket without SO_REUSEADDR is in use; an address that is not
       ours is not available, and port 0 is not written back then. */
    int raw = socket(family, SOCK_DGRAM, 0);
    CHECK(raw >= 0);
    struct ipaddr held;
    make_addr(&held, family, loopback(family), 0);
    CHECK(bind(raw, ipaddr_sockaddr(&held), ipaddr_len(&held)) == 0);
    socklen_t len = sizeof(held);
    CHECK(getsockname(raw, (struct sockaddr *)&held, &len) == 0);
    CHECK_ERR(udp_open(&held, NULL), EADDRINUSE);
    CHECK_ERR(udp_open_mem(&held, NULL, &mem), EADDRINUSE);
    CHECK(close(raw) == 0);
    struct ipaddr foreign;
    make_addr(&foreign, family, family == AF_INET ? "192.0.2.1" : "2001:db8::1",
        0);
    CHECK_ERR(udp_open(&foreign, NULL), EADDRNOTAVAIL);
    CHECK_ERR(udp_open_mem(&foreign, NULL, &mem), EADDRNOTAVAIL);
    CHECK(ipaddr_port(&foreign) == 0);

    /* Storage at every offset; nothing outside it is written. */
    for(int off = 0; off < 8; off++) {
        char raw_mem[sizeof(struct udp_storage) + 8];
        memset(raw_mem, 0x55, sizeof(raw_mem));
        struct ipaddr m;
        make_addr(&m, family, loopback(family), 0);
        s = udp_open_mem(&m, &b, (struct udp_storage *)(raw_mem + off));
        CHECK(s >= 0);
        for(int i = 0; i < off; i++) CHECK(raw_mem[i] == 0x55);
        for(size_t i = off + sizeof(struct udp_storage); i < sizeof(raw_mem);
              i++)
            CHECK(raw_mem[i] == 0x55);
        CHECK(msend(s, &off, sizeof(off), -1) == 0);
        int got;
        CHECK(udp_recv(sb, &from, &got, sizeof(got), SOON) == sizeof(got));
        CHECK(got == off && ipaddr_equal(&from, &m, 0));
        CHECK(udp_send(sb, &m, &off, sizeof(off)) == 0);
        got = -1;
        CHECK(mrecv(s, &got, sizeof(got), SOON) == sizeof(got) && got == off);
        CHECK(hclose(s) == 0);
    }
    CHECK(hclose(sb) == 0);
}

/* Sockets given port 0, or no local address, each get a port nobody else
   holds: Linux would give a UDP socket with SO_REUSEADDR set before it
   binds a port that another such socket holds, and the two would share
   their datagrams (seen as a test on another port receiving nothing).
   SO_REUSEADDR is still set after bind: a socket opened on the same port
   explicitly shares it. */
#define PORT_SOCKETS 300

static void test_distinct_ports(int family) {
    struct ipaddr b;
    int sb = open_local(family, &b, NULL);
    int socks[2 * PORT_SOCKETS];
    int ports[2 * PORT_SOCKETS];
    for(int i = 0; i < PORT_SOCKETS; i++) {
        struct ipaddr a;
        socks[i] = open_local(family, &a, NULL);
        ports[i] = ipaddr_port(&a);
    }
    for(int i = PORT_SOCKETS; i < 2 * PORT_SOCKETS; i++) {
        socks[i] = udp_open(NULL, &b);
        CHECK(socks[i] >= 0);
        CHECK(msend(socks[i], &i, sizeof(i), -1) == 0);
        struct ipaddr from;
        int got = -1;
        CHECK(udp_recv(sb, &from, &got, sizeof(got), SOON) == sizeof(got));
        CHECK(got == i);
        ports[i] = ipaddr_port(&from);
    }
    for(int i = 0; i < 2 * PORT_SOCKETS; i++)
        for(int j = i + 1; j < 2 * PORT_SOCKETS; j++) CHECK(ports[i] != ports[j]);
    struct ipaddr shared;
    make_addr(&shared, family, loopback(family), ports[0]);
    int s = udp_open(&shared, NULL);
    CHECK(s >= 0);
    CHECK(hclose(s) == 0);
    for(int i = 0; i < 2 * PORT_SOCKETS; i++) CHECK(hclose(socks[i]) == 0);
    CHECK(hclose(sb) == 0);
}

coroutine static void open_cancelled(volatile struct result *r) {
    CHECK(msleep(-1) == -1 && errno == ECANCELED);
    struct ipaddr a;
    make_addr(&a, AF_INET, "127.0.0.1", 0);
    finish(r, udp_open(&a, NULL));
}

static void test_open_limits(void) {
    struct rlimit saved, lim;
    CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    int lowest = dup(0);
    CHECK(lowest >= 0 && close(lowest) == 0);
    lim = saved;
    lim.rlim_cur = (rlim_t)lowest;
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    struct ipaddr a;
    make_addr(&a, AF_INET, "127.0.0.1", 0);
    struct udp_storage mem;
    CHECK_ERR(udp_open(&a, NULL), EMFILE);
    CHECK_ERR(udp_open_mem(&a, NULL, &mem), EMFILE);
    CHECK_ERR(udp_open(NULL, NULL), EMFILE);
    CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);

    /* Handle creation in a cancelled coroutine; the socket is closed. */
    int before = count_fds();
    struct result r = {0};
    int cr = go(open_cancelled(&r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK(count_fds() == before);
}

/* ---- Unconnected use: an address per call ---------------------------------- */

static void test_unconnected(int family) {
    struct ipaddr a, b, from;
    int sa = open_local(family, &a, NULL);
    int sb = open_local(family, &b, NULL);
    char buf[64];
    CHECK(udp_send(sa, &b, "hello", 5) == 0);
    CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK(ipaddr_equal(&from, &a, 0));
    /* Reply to whoever sent it. */
    CHECK(udp_send(sb, &from, "world", 5) == 0);
    memset(&from, 0, sizeof(from));
    CHECK(udp_recv(sa, &from, buf, sizeof(buf), SOON) == 5);
    CHECK(memcmp(buf, "world", 5) == 0 && ipaddr_equal(&from, &b, 0));
    /* Without a remote, mrecv takes datagrams from anyone... */
    CHECK(udp_send(sa, &b, "any", 3) == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 3);
    /* ...and the address output may be NULL. */
    CHECK(udp_send(sa, &b, "nul", 3) == 0);
    CHECK(udp_recv(sb, NULL, buf, sizeof(buf), SOON) == 3);
    /* No destination at all. */
    CHECK_ERR(msend(sa, "x", 1, -1), EINVAL);
    CHECK_ERR(udp_send(sa, NULL, "x", 1), EINVAL);
    struct iolist one = {"x", 1, NULL, 0};
    CHECK_ERR(udp_sendl(sa, NULL, &one, &one), EINVAL);
    CHECK_ERR(msendl(sa, &one, &one, -1), EINVAL);

    /* Gather: one datagram from pieces, empty ones included. */
    struct iolist g3 = {"cd", 2, NULL, 0};
    struct iolist g2 = {NULL, 0, &g3, 0};
    struct iolist g1 = {"ab", 2, &g2, 0};
    CHECK(udp_sendl(sa, &b, &g1, &g3) == 0);
    CHECK(g1.iol_rsvd == 0 && g2.iol_rsvd == 0 && g3.iol_rsvd == 0);
    CHECK(udp_recv(sb, NULL, buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "abcd", 4) == 0);
    /* Scatter, with a skipped (NULL base) piece. */
    CHECK(udp_send(sa, &b, "0123456789", 10) == 0);
    char p1[3], p3[4];
    struct iolist s3 = {p3, sizeof(p3), NULL, 0};
    struct iolist s2 = {NULL, 3, &s3, 0};
    struct iolist s1 = {p1, sizeof(p1), &s2, 0};
    memset(&from, 0, sizeof(from));
    CHECK(udp_recvl(sb, &from, &s1, &s3, SOON) == 10);
    CHECK(memcmp(p1, "012", 3) == 0 && memcmp(p3, "6789", 4) == 0);
    CHECK(ipaddr_equal(&from, &a, 0));
    /* Empty datagrams. */
    CHECK(udp_send(sa, &b, NULL, 0) == 0);
    CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 0);
    CHECK(ipaddr_equal(&from, &a, 0));
    check_empty(sa);
    check_empty(sb);
    CHECK(hclose(sa) == 0 && hclose(sb) == 0);
}

/* ---- Connected-style use: the remote given at open ------------------------- */

static void test_connected(int family) {
    struct ipaddr a, b, f, c, from;
    int sb = open_local(family, &b, NULL);
    int sa = open_local(family, &a, &b);
    char buf[64];
    CHECK(msend(sa, "m1", 2, -1) == 0);
    CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 2);
    CHECK(memcmp(buf, "m1", 2) == 0 && ipaddr_equal(&from, &a, 0));
    struct iolist l2 = {"2", 1, NULL, 0};
    struct iolist l1 = {"m", 1, &l2, 0};
    CHECK(msendl(sa, &l1, &l2, -1) == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 2 && memcmp(buf, "m2", 2) == 0);
    /* The deadline of msend is ignored: sending never waits. */
    CHECK(msend(sa, "m3", 2, 0) == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 2);
    /* An address given per call wins over the remote. */
    int sc = open_local(family, &c, NULL);
    CHECK(udp_send(sa, &c, "over", 4) == 0);
    CHECK(mrecv(sc, buf, sizeof(buf), SOON) == 4);
    check_empty(sb);

    /* sf only hears from a: datagrams from another port (sc), and for
       IPv4 from another address with a's port, are dropped. */
    int sf = open_local(family, &f, &a);
    int sd = -1;
    if(family == AF_INET) {
        struct ipaddr d;
        make_addr(&d, AF_INET, "127.0.0.2", ipaddr_port(&a));
        sd = udp_open(&d, NULL);
        CHECK(sd >= 0);
        CHECK(udp_send(sd, &f, "junk-addr", 9) == 0);
    }
    CHECK(udp_send(sc, &f, "junk-port", 9) == 0);
    CHECK(udp_send(sa, &f, "real", 4) == 0);
    memset(&from, 0, sizeof(from));
    CHECK(udp_recv(sf, &from, buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "real", 4) == 0 && ipaddr_equal(&from, &a, 0));
    /* The dropped ones are gone, not waiting. */
    check_empty(sf);
    /* Dropped datagrams do not end a wait: only a's does. */
    struct result r = {0};
    int cr = go(do_mrecv(sf, now() + 60000, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(udp_send(sc, &f, "junk", 4) == 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK(udp_send(sa, &f, "late", 4) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(r.rc == 4 && memcmp((char *)r.data, "late", 4) == 0);
    CHECK(hclose(cr) == 0);
    /* sa filters too: only b may talk to it, not f (whose msend goes to
       a) nor c. */
    CHECK(msend(sf, "back", 4, -1) == 0);
    CHECK(udp_send(sc, &a, "junk", 4) == 0);
    check_empty(sa);
    CHECK(udp_send(sb, &a, "from-b", 6) == 0);
    CHECK(udp_recv(sa, &from, buf, sizeof(buf), SOON) == 6);
    CHECK(ipaddr_equal(&from, &b, 0));
    if(sd >= 0) CHECK(hclose(sd) == 0);
    CHECK(hclose(sa) == 0 && hclose(sb) == 0 && hclose(sc) == 0);
    CHECK(hclose(sf) == 0);
}

/* ---- Truncation and dropping ------------------------------------------------ */

static void test_truncation(int family) {
    struct ipaddr a, b, from;
    int sb = open_local(family, &b, NULL);
    int sa = open_local(family, &a, &b);
    char big[100];
    for(int i = 0; i < 100; i++) big[i] = (char)i;
    char buf[10];
    CHECK(msend(sa, big, sizeof(big), -1) == 0);
    CHECK(msend(sa, "next", 4, -1) == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 10);
    CHECK(memcmp(buf, big, 10) == 0);
    /* The rest of the datagram is lost, the next one intact. */
    CHECK(udp_recv(sb, &from, buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "next", 4) == 0);
    /* Over several pieces. */
    CHECK(msend(sa, big, 20, -1) == 0);
    char q1[4], q2[4], q3[4];
    struct iolist i3 = {q3, 4, NULL, 0};
    struct iolist i2 = {q2, 4, &i3, 0};
    struct iolist i1 = {q1, 4, &i2, 0};
    CHECK(mrecvl(sb, &i1, &i3, SOON) == 12);
    CHECK(memcmp(q1, big, 4) == 0 && memcmp(q3, big + 8, 4) == 0);
    /* NULL, NULL: one datagram consumed, 0 returned. */
    CHECK(msend(sa, big, 50, -1) == 0);
    CHECK(msend(sa, "kept", 4, -1) == 0);
    CHECK(mrecvl(sb, NULL, NULL, SOON) == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 4 && memcmp(buf, "kept", 4) == 0);
    CHECK(msend(sa, big, 50, -1) == 0);
    memset(&from, 0, sizeof(from));
    CHECK(udp_recvl(sb, &from, NULL, NULL, SOON) == 0);
    CHECK(ipaddr_equal(&from, &a, 0));
    /* A zero-length buffer. */
    CHECK(msend(sa, big, 50, -1) == 0);
    CHECK(mrecv(sb, buf, 0, SOON) == 0);
    check_empty(sb);
    CHECK(hclose(sa) == 0 && hclose(sb) == 0);
}

/* ---- Busy, deadlines, cancellation ------------------------------------------ */

static void test_busy(int family) {
    struct ipaddr a, b;
    int sa = open_local(family, &a, NULL);
    int sb = open_local(family, &b, &a);
    struct result r = {0};
    int cr = go(do_recv(sb, -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    char buf[8];
    struct iolist one = {buf, 1, NULL, 0};
    CHECK_ERR(udp_recv(sb, NULL, buf, sizeof(buf), 0), EBUSY);
    CHECK_ERR(udp_recvl(sb, NULL, &one, &one, 0), EBUSY);
    CHECK_ERR(mrecv(sb, buf, sizeof(buf), 0), EBUSY);
    CHECK_ERR(mrecvl(sb, NULL, NULL, 0), EBUSY);
    CHECK_ERR(udp_send(sb, &a, "x", 1), EBUSY);
    CHECK_ERR(udp_sendl(sb, &a, &one, &one), EBUSY);
    CHECK_ERR(msend(sb, "x", 1, -1), EBUSY);
    CHECK_ERR(msendl(sb, &one, &one, -1), EBUSY);
    /* Other sockets are not affected. */
    CHECK(udp_send(sa, &b, "wake", 4) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(r.rc == 4 && memcmp((char *)r.data, "wake", 4) == 0);
    CHECK(ipaddr_equal((struct ipaddr *)&r.from, &a, 0));
    CHECK(hclose(cr) == 0);
    /* Not busy any more, and no error state left behind. */
    CHECK(msend(sb, "ok", 2, -1) == 0);
    CHECK(mrecv(sa, buf, sizeof(buf), SOON) == 2);
    CHECK(hclose(sa) == 0 && hclose(sb) == 0);
}

static void test_deadlines(int family) {
    struct ipaddr a, b;
    int sa = open_local(family, &a, NULL);
    int sb = open_local(family, &b, NULL);
    char buf[8];
    CHECK_ERR(udp_recv(sb, NULL, buf, sizeof(buf), 0), ETIMEDOUT);
    CHECK_ERR(mrecv(sb, buf, sizeof(buf), now() - 1000), ETIMEDOUT);
    int64_t deadline = now() + 50;
    CHECK_ERR(udp_recv(sb, NULL, buf, sizeof(buf), deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    deadline = now() + 30;
    CHECK_ERR(mrecv(sb, buf, sizeof(buf), deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    struct iolist one = {buf, 1, NULL, 0};
    deadline = now() + 20;
    CHECK_ERR(udp_recvl(sb, NULL, &one, &one, deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    /* Deadline 0 with a datagram queued: it is returned. */
    CHECK(udp_send(sa, &b, "now", 3) == 0);
    CHECK(udp_recv(sb, NULL, buf, sizeof(buf), 0) == 3);
    /* A timeout leaves nothing behind. */
    CHECK(udp_send(sa, &b, "then", 4) == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), 0) == 4);

    /* Cancelled while blocked, in udp_recv and in mrecv; the socket is
       usable afterwards. */
    struct result r = {0};
    int cr = go(do_recv(sb, -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    memset(&r, 0, sizeof(r));
    cr = go(do_mrecv(sb, now() + 60000, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK(udp_send(sb, &a, "alive", 5) == 0);
    CHECK(udp_recv(sa, NULL, buf, sizeof(buf), SOON) == 5);
    CHECK(udp_send(sa, &b, "alive", 5) == 0);
    CHECK(udp_recv(sb, NULL, buf, sizeof(buf), SOON) == 5);

    /* Closed under a blocked receive: EBADF at once. */
    memset(&r, 0, sizeof(r));
    cr = go(do_recv(sb, now() + 60000, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    int64_t start = now();
    CHECK(hclose(sb) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(r.rc == -1 && r.err == EBADF && r.when - start < 1000);
    CHECK(hclose(cr) == 0);
    /* The same with caller storage. */
    struct udp_storage mem;
    make_addr(&b, family, loopback(family), 0);
    sb = udp_open_mem(&b, NULL, &mem);
    CHECK(sb >= 0);
    memset(&r, 0, sizeof(r));
    cr = go(do_mrecv(sb, -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(sb) == 0);
    CHECK(bundle_wait(cr, now() + 5000) == 0);
    CHECK(r.rc == -1 && r.err == EBADF);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(sa) == 0);
}

/* ---- Errors ------------------------------------------------------------------ */

/* A message socket of another kind. */
struct fake_msock {
    struct hvfs hvfs;
    struct msock_vfs mvfs;
};

static void *fake_query(struct hvfs *hvfs, const void *type) {
    struct fake_msock *f = (struct fake_msock *)hvfs;
    if(type == msock_type) return &f->mvfs;
    errno = ENOTSUP;
    return NULL;
}

static void fake_close(struct hvfs *hvfs) {
    (void)hvfs;
}

static int fake_msendl(struct msock_vfs *mvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)mvfs, (void)first, (void)last, (void)deadline;
    return 0;
}

static ssize_t fake_mrecvl(struct msock_vfs *mvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)mvfs, (void)first, (void)last, (void)deadline;
    return 7;
}

/* Every function refuses h with err. */
static void check_all_refuse(int h, int err) {
    struct ipaddr a;
    make_addr(&a, AF_INET, "127.0.0.1", 9);
    char buf[4];
    struct iolist one = {buf, 1, NULL, 0};
    CHECK_ERR(udp_send(h, &a, "x", 1), err);
    CHECK_ERR(udp_sendl(h, &a, &one, &one), err);
    CHECK_ERR(udp_recv(h, NULL, buf, sizeof(buf), 0), err);
    CHECK_ERR(udp_recvl(h, NULL, &one, &one, 0), err);
}

static void test_errors(void) {
    check_all_refuse(-1, EBADF);
    check_all_refuse(12345, EBADF);
    struct ipaddr a, b;
    int sa = open_local(AF_INET, &a, NULL);
    int sb = open_local(AF_INET, &b, &a);
    int dead = udp_open(NULL, NULL);
    CHECK(dead >= 0 && hclose(dead) == 0);
    check_all_refuse(dead, EBADF);
    int s[2];
    CHECK(ipc_pair(s) == 0);
    check_all_refuse(s[0], ENOTSUP);
    int ch[2];
    CHECK(chmake(ch) == 0);
    check_all_refuse(ch[0], ENOTSUP);
    struct fake_msock fake = {{fake_query, fake_close},
        {fake_msendl, fake_mrecvl}};
    int fh = hmake(&fake.hvfs);
    CHECK(fh >= 0);
    CHECK(mrecv(fh, NULL, 0, SOON) == 7);
    check_all_refuse(fh, ENOTSUP);
    /* A UDP socket is a message socket and nothing else. */
    CHECK(hquery(sa, msock_type) != NULL);
    errno = 0;
    CHECK(hquery(sa, bsock_type) == NULL && errno == ENOTSUP);
    char c;
    CHECK_ERR(bsend(sa, "x", 1, -1), ENOTSUP);
    CHECK_ERR(brecv(sa, &c, 1, SOON), ENOTSUP);
    CHECK_ERR(ipc_sendfd(sa, 0, -1), ENOTSUP);
    CHECK_ERR(ipc_recvfd(sa, SOON), ENOTSUP);
    CHECK_ERR(ipc_done(sa, -1), ENOTSUP);
    CHECK_ERR(ipc_close(sa, -1), ENOTSUP);
    CHECK_ERR(ipc_accept(sa, SOON), ENOTSUP);

    /* Malformed lists, for every function that takes one; nothing is sent
       or received and iol_rsvd is restored. */
    struct iolist x2 = {&c, 1, NULL, 0};
    struct iolist x1 = {&c, 1, &x2, 0};
    x2.iol_next = &x1; /* a loop */
    struct iolist end = {&c, 1, NULL, 0};
    struct iolist rsvd = {&c, 1, NULL, 1};
    struct iolist y2 = {&c, 1, NULL, 0};
    struct iolist y1 = {&c, 1, &y2, 0}; /* does not reach `end` */
    struct iolist *firsts[] = {&x1, &rsvd, &y1, NULL, &end};
    struct iolist *lasts[] = {&end, &rsvd, &end, &end, &x1};
    for(int i = 0; i < 5; i++) {
        CHECK_ERR(udp_sendl(sa, &b, firsts[i], lasts[i]), EINVAL);
        CHECK_ERR(udp_recvl(sb, NULL, firsts[i], lasts[i], 0), EINVAL);
        CHECK_ERR(msendl(sb, firsts[i], lasts[i], -1), EINVAL);
        CHECK_ERR(mrecvl(sb, firsts[i], lasts[i], 0), EINVAL);
    }
    CHECK(x1.iol_rsvd == 0 && x2.iol_rsvd == 0 && y1.iol_rsvd == 0);
    CHECK(rsvd.iol_rsvd == 1 && end.iol_rsvd == 0);
    CHECK_ERR(udp_recvl(sb, NULL, &end, NULL, 0), EINVAL);
    CHECK_ERR(udp_recvl(sb, NULL, NULL, &end, 0), EINVAL);
    CHECK_ERR(udp_sendl(sa, &b, NULL, NULL), EINVAL);
    check_empty(sb);

    /* Errors of sendmsg come back as they are, and are not sticky. */
    char *huge = calloc(1, 70000);
    CHECK(huge != NULL);
    CHECK_ERR(udp_send(sa, &b, huge, 70000), EMSGSIZE);
    CHECK_ERR(msend(sb, huge, 70000, -1), EMSGSIZE);
    free(huge);
    struct ipaddr v6;
    make_addr(&v6, AF_INET6, "::1", 9);
    CHECK_ERR(udp_send(sa, &v6, "x", 1), EAFNOSUPPORT);
    CHECK(udp_send(sa, &b, "fine", 4) == 0);
    char buf[8];
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 4);

    /* A full send buffer (interposed): the datagram is dropped, success.
       EINTR is retried; another errno is returned. */
    fail_errno = EAGAIN;
    fail_count = 1;
    CHECK(udp_send(sa, &b, "lost", 4) == 0);
    CHECK(sendmsg_calls_left() == 0);
    fail_count = 1;
    CHECK(msend(sb, "lost", 4, -1) == 0);
    CHECK(sendmsg_calls_left() == 0);
    check_empty(sb);
    check_empty(sa);
    fail_errno = EINTR;
    fail_count = 2;
    CHECK(udp_send(sa, &b, "again", 5) == 0);
    CHECK(sendmsg_calls_left() == 0);
    CHECK(mrecv(sb, buf, sizeof(buf), SOON) == 5);
    fail_errno = ENOBUFS;
    fail_count = 1;
    CHECK_ERR(udp_send(sa, &b, "x", 1), ENOBUFS);
    fail_count = 1;
    CHECK_ERR(msend(sb, "x", 1, -1), ENOBUFS);
    CHECK(msend(sb, "after", 5, -1) == 0);
    CHECK(mrecv(sa, buf, sizeof(buf), SOON) == 5);

    CHECK(hclose(fh) == 0);
    CHECK(hclose(ch[0]) == 0 && hclose(ch[1]) == 0);
    CHECK(hclose(s[0]) == 0 && hclose(s[1]) == 0);
    CHECK(hclose(sa) == 0 && hclose(sb) == 0);
}

/* hown moves a UDP socket, remote and all. */
static void test_hown(void) {
    struct ipaddr a, b;
    int sa = open_local(AF_INET, &a, NULL);
    int sb = open_local(AF_INET, &b, &a);
    int moved = hown(sb);
    CHECK(moved >= 0);
    CHECK_ERR(msend(sb, "x", 1, -1), EBADF);
    CHECK(msend(moved, "y", 1, -1) == 0);
    char c;
    CHECK(mrecv(sa, &c, 1, SOON) == 1 && c == 'y');
    CHECK(hclose(moved) == 0 && hclose(sa) == 0);
}

/* ---- Main ------------------------------------------------------------------- */

#define RUN(call) \
    do { \
        int fds_before__ = count_fds(); \
        call; \
        if(count_fds() != fds_before__) { \
            fprintf(stderr, "%s leaked %d descriptor(s)\n", #call, \
                count_fds() - fds_before__); \
            exit(1); \
        } \
    } while(0)

/* IPv6 must work: a machine without ::1 fails this test, saying so. */
static void require_ipv6(void) {
    struct ipaddr a;
    int rc = ipaddr_local(&a, "::1", 0, IPADDR_IPV6);
    int s = rc == 0 ? udp_open(&a, NULL) : -1;
    if(s < 0) {
        fprintf(stderr, "udp: this machine has no IPv6 loopback (::1): %s; "
            "the IPv6 half of this test cannot run\n", strerror(errno));
        exit(1);
    }
    CHECK(hclose(s) == 0);
}

int main(void) {
    /* Bring the scheduler and its poller to life before counting. */
    CHECK(msleep(now() + 1) == 0);
    struct ipaddr a;
    int s = open_local(AF_INET, &a, NULL);
    char c;
    CHECK_ERR(mrecv(s, &c, 1, now() + 1), ETIMEDOUT);
    CHECK(hclose(s) == 0);
    require_ipv6();

    RUN(test_open_limits());
    RUN(test_errors());
    RUN(test_hown());
    int families[2] = {AF_INET, AF_INET6};
    for(int i = 0; i < 2; i++) {
        RUN(test_open(families[i]));
        RUN(test_distinct_ports(families[i]));
        RUN(test_unconnected(families[i]));
        RUN(test_connected(families[i]));
        RUN(test_truncation(families[i]));
        RUN(test_busy(families[i]));
        RUN(test_deadlines(families[i]));
    }
    return 0;
}
