/*
 * tests/ipaddr.c: struct ipaddr without DNS (sockets.md §7): the 32-byte
 * layout (a native sockaddr_in/sockaddr_in6 at offset 0, zeros after it),
 * every accessor (family, len, sockaddr, port, setport, str, equal), also
 * on an address stored at an odd offset; ipaddr_local with NULL (the
 * wildcard of each mode), IPv4 and IPv6 literals in every mode, interface
 * names ("lo", checked against getifaddrs), ports 0 and 65535, the ENODEV
 * cases (no such interface, "localhost", a literal of the wrong family, a
 * literal with a port out of range) and the EINVAL cases (port out of
 * range with NULL, mode out of range with a name, NULL address);
 * ipaddr_remote and ipaddr_remotes with literals (one result, only the
 * first slot written, deadline 0 is enough, the other slots untouched)
 * and all their EINVAL cases. Host names are in tests/resolver.c.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "libdill.h"
#include "check.h"

static const char zeros[32];

static void check_str(const struct ipaddr *a, const char *ip) {
    char buf[IPADDR_MAXSTRLEN];
    CHECK(ipaddr_str(a, buf) == buf);
    if(strcmp(buf, ip) != 0) fprintf(stderr, "got %s, want %s\n", buf, ip);
    CHECK(strcmp(buf, ip) == 0);
}

/* The exact bytes of an IPv4 address: sockaddr_in, then zeros. */
static void check_v4(const struct ipaddr *a, const char *ip, int port) {
    struct sockaddr_in want;
    memset(&want, 0, sizeof(want));
    want.sin_family = AF_INET;
    want.sin_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET, ip, &want.sin_addr) == 1);
    CHECK(memcmp(a, &want, sizeof(want)) == 0);
    CHECK(memcmp((const char *)a + sizeof(want), zeros,
        32 - sizeof(want)) == 0);
    CHECK(ipaddr_family(a) == AF_INET);
    CHECK(ipaddr_len(a) == (int)sizeof(struct sockaddr_in));
    CHECK(ipaddr_len(a) == 16);
    CHECK(ipaddr_port(a) == port);
    CHECK(ipaddr_sockaddr(a) == (const struct sockaddr *)a);
    check_str(a, ip);
}

static void check_v6(const struct ipaddr *a, const char *ip, int port) {
    struct sockaddr_in6 want;
    memset(&want, 0, sizeof(want));
    want.sin6_family = AF_INET6;
    want.sin6_port = htons((uint16_t)port);
    CHECK(inet_pton(AF_INET6, ip, &want.sin6_addr) == 1);
    CHECK(memcmp(a, &want, sizeof(want)) == 0);
    CHECK(memcmp((const char *)a + sizeof(want), zeros,
        32 - sizeof(want)) == 0);
    CHECK(ipaddr_family(a) == AF_INET6);
    CHECK(ipaddr_len(a) == (int)sizeof(struct sockaddr_in6));
    CHECK(ipaddr_len(a) == 28);
    CHECK(ipaddr_port(a) == port);
    check_str(a, ip);
}

static void test_layout(void) {
    CHECK(sizeof(struct ipaddr) == 32);
    CHECK(_Alignof(struct ipaddr) == 1);
    CHECK(IPADDR_IPV4 == 1 && IPADDR_IPV6 == 2 && IPADDR_PREF_IPV4 == 3 &&
        IPADDR_PREF_IPV6 == 4 && IPADDR_MAXSTRLEN == 46);
}

static void test_local_wildcard(void) {
    struct ipaddr a;
    memset(&a, 0xab, sizeof(a));
    CHECK(ipaddr_local(&a, NULL, 0, 0) == 0);
    check_v4(&a, "0.0.0.0", 0);
    CHECK(ipaddr_local(&a, NULL, 80, IPADDR_IPV4) == 0);
    check_v4(&a, "0.0.0.0", 80);
    CHECK(ipaddr_local(&a, NULL, 65535, IPADDR_PREF_IPV4) == 0);
    check_v4(&a, "0.0.0.0", 65535);
    memset(&a, 0xab, sizeof(a));
    CHECK(ipaddr_local(&a, NULL, 1, IPADDR_IPV6) == 0);
    check_v6(&a, "::", 1);
    CHECK(ipaddr_local(&a, NULL, 2, IPADDR_PREF_IPV6) == 0);
    check_v6(&a, "::", 2);
    /* Any other mode value: IPv6 (sockets.md §7.1 step 2). */
    CHECK(ipaddr_local(&a, NULL, 3, 5) == 0);
    check_v6(&a, "::", 3);
    CHECK(ipaddr_local(&a, NULL, 4, -1) == 0);
    check_v6(&a, "::", 4);
    CHECK_ERR(ipaddr_local(&a, NULL, -1, 0), EINVAL);
    CHECK_ERR(ipaddr_local(&a, NULL, 65536, IPADDR_IPV6), EINVAL);
    CHECK_ERR(ipaddr_local(NULL, NULL, 0, 0), EINVAL);
}

static void test_local_literals(void) {
    struct ipaddr a;
    CHECK(ipaddr_local(&a, "127.0.0.1", 5555, IPADDR_IPV4) == 0);
    check_v4(&a, "127.0.0.1", 5555);
    CHECK(ipaddr_local(&a, "10.1.2.3", 0, 0) == 0);
    check_v4(&a, "10.1.2.3", 0);
    CHECK(ipaddr_local(&a, "10.1.2.3", 1, IPADDR_PREF_IPV4) == 0);
    check_v4(&a, "10.1.2.3", 1);
    CHECK(ipaddr_local(&a, "10.1.2.3", 2, IPADDR_PREF_IPV6) == 0);
    check_v4(&a, "10.1.2.3", 2);
    CHECK(ipaddr_local(&a, "::1", 65535, IPADDR_IPV6) == 0);
    check_v6(&a, "::1", 65535);
    CHECK(ipaddr_local(&a, "fe80::1:2", 3, 0) == 0);
    check_v6(&a, "fe80::1:2", 3);
    CHECK(ipaddr_local(&a, "2001:db8::5", 4, IPADDR_PREF_IPV4) == 0);
    check_v6(&a, "2001:db8::5", 4);
    CHECK(ipaddr_local(&a, "::ffff:1.2.3.4", 5, IPADDR_PREF_IPV6) == 0);
    check_v6(&a, "::ffff:1.2.3.4", 5);
    /* Not a literal of the family asked for, or a port out of range: then
       it is an interface name, and there is no such interface. */
    CHECK_ERR(ipaddr_local(&a, "::1", 1, IPADDR_IPV4), ENODEV);
    CHECK_ERR(ipaddr_local(&a, "127.0.0.1", 1, IPADDR_IPV6), ENODEV);
    CHECK_ERR(ipaddr_local(&a, "127.0.0.1", 65536, IPADDR_IPV4), ENODEV);
    CHECK_ERR(ipaddr_local(&a, "127.0.0.1", -1, 0), ENODEV);
    /* Never DNS, never the hosts file. */
    CHECK_ERR(ipaddr_local(&a, "localhost", 1, 0), ENODEV);
    CHECK_ERR(ipaddr_local(&a, "nosuchif0", 1, IPADDR_PREF_IPV6), ENODEV);
    CHECK_ERR(ipaddr_local(&a, "", 1, 0), ENODEV);
    CHECK_ERR(ipaddr_local(&a, "1.2.3", 1, IPADDR_IPV4), ENODEV);
    /* A mode out of range with a name. */
    CHECK_ERR(ipaddr_local(&a, "127.0.0.1", 1, 5), EINVAL);
    CHECK_ERR(ipaddr_local(&a, "lo", 1, -1), EINVAL);
    CHECK_ERR(ipaddr_local(NULL, "127.0.0.1", 1, 0), EINVAL);
}

/* The first IPv4 and IPv6 addresses of interface lo, as getifaddrs says. */
static void lo_addrs(struct sockaddr_in *v4, struct sockaddr_in6 *v6,
      int *has4, int *has6) {
    struct ifaddrs *list;
    CHECK(getifaddrs(&list) == 0);
    *has4 = *has6 = 0;
    for(struct ifaddrs *it = list; it; it = it->ifa_next) {
        if(!it->ifa_addr || strcmp(it->ifa_name, "lo") != 0) continue;
        if(it->ifa_addr->sa_family == AF_INET && !*has4) {
            memcpy(v4, it->ifa_addr, sizeof(*v4));
            *has4 = 1;
        }
        if(it->ifa_addr->sa_family == AF_INET6 && !*has6) {
            memcpy(v6, it->ifa_addr, sizeof(*v6));
            *has6 = 1;
        }
    }
    freeifaddrs(list);
}

static void check_iface(const struct ipaddr *a, const void *sa, size_t len,
      int port) {
    char want[32] = {0};
    memcpy(want, sa, len);
    uint16_t p = htons((uint16_t)port);
    memcpy(want + 2, &p, 2);
    CHECK(memcmp(a, want, 32) == 0);
    CHECK(ipaddr_port(a) == (port & 0xffff));
}

static void test_local_interface(void) {
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    int has4, has6;
    lo_addrs(&v4, &v6, &has4, &has6);
    CHECK(has4);  /* every Linux lo has 127.0.0.1 */
    struct ipaddr a;
    CHECK(ipaddr_local(&a, "lo", 80, IPADDR_IPV4) == 0);
    check_iface(&a, &v4, sizeof(v4), 80);
    check_str(&a, "127.0.0.1");
    CHECK(ipaddr_local(&a, "lo", 81, 0) == 0);
    check_iface(&a, &v4, sizeof(v4), 81);
    CHECK(ipaddr_local(&a, "lo", 82, IPADDR_PREF_IPV4) == 0);
    check_iface(&a, &v4, sizeof(v4), 82);
    /* The port is not range-checked on this path: cut to 16 bits. */
    CHECK(ipaddr_local(&a, "lo", 70000, IPADDR_IPV4) == 0);
    check_iface(&a, &v4, sizeof(v4), 70000);
    CHECK(ipaddr_port(&a) == 4464);
    if(has6) {
        CHECK(ipaddr_local(&a, "lo", 83, IPADDR_IPV6) == 0);
        check_iface(&a, &v6, sizeof(v6), 83);
        check_str(&a, "::1");
        CHECK(ipaddr_local(&a, "lo", 84, IPADDR_PREF_IPV6) == 0);
        check_iface(&a, &v6, sizeof(v6), 84);
    }
    else {
        /* No IPv6 on this machine: strict fails, preference falls back. */
        CHECK_ERR(ipaddr_local(&a, "lo", 83, IPADDR_IPV6), ENODEV);
        CHECK(ipaddr_local(&a, "lo", 84, IPADDR_PREF_IPV6) == 0);
        check_iface(&a, &v4, sizeof(v4), 84);
    }
}

static void test_remote_literals(void) {
    struct ipaddr a[3];
    memset(a, 0xcd, sizeof(a));
    CHECK(ipaddr_remotes(a, 3, "192.168.1.1", 443, IPADDR_IPV4, -1) == 1);
    check_v4(&a[0], "192.168.1.1", 443);
    /* Only the first slot is written. */
    for(size_t i = 0; i < 2 * sizeof(a[0]); i++)
        CHECK(((unsigned char *)&a[1])[i] == 0xcd);
    /* A literal never waits: deadline 0 or in the past is enough. */
    CHECK(ipaddr_remotes(a, 1, "::1", 1, IPADDR_IPV6, 0) == 1);
    check_v6(&a[0], "::1", 1);
    CHECK(ipaddr_remotes(a, 1, "::1", 2, 0, now() - 1000) == 1);
    check_v6(&a[0], "::1", 2);
    CHECK(ipaddr_remotes(a, 1, "1.2.3.4", 3, IPADDR_PREF_IPV6, 0) == 1);
    check_v4(&a[0], "1.2.3.4", 3);
    CHECK(ipaddr_remotes(a, 1, "2001:db8::1", 0, IPADDR_PREF_IPV4, 0) == 1);
    check_v6(&a[0], "2001:db8::1", 0);
    CHECK(ipaddr_remote(&a[0], "10.0.0.1", 65535, 0, 0) == 0);
    check_v4(&a[0], "10.0.0.1", 65535);
    CHECK(ipaddr_remote(&a[0], "fe80::1", 8, IPADDR_IPV6, -1) == 0);
    check_v6(&a[0], "fe80::1", 8);
    /* EINVAL, checked before anything else. */
    CHECK_ERR(ipaddr_remotes(NULL, 1, "1.2.3.4", 1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 0, "1.2.3.4", 1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, -1, "1.2.3.4", 1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 1, NULL, 1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 1, "1.2.3.4", 1, 5, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 1, "1.2.3.4", 1, -1, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 1, "1.2.3.4", -1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 1, "1.2.3.4", 65536, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remotes(a, 1, "example.org", 65536, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remote(NULL, "1.2.3.4", 1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remote(&a[0], NULL, 1, 0, -1), EINVAL);
    CHECK_ERR(ipaddr_remote(&a[0], "1.2.3.4", 1, 7, -1), EINVAL);
    CHECK_ERR(ipaddr_remote(&a[0], "1.2.3.4", 70000, 0, -1), EINVAL);
}

static void test_port(void) {
    struct ipaddr a;
    CHECK(ipaddr_local(&a, "1.2.3.4", 1, 0) == 0);
    ipaddr_setport(&a, 8080);
    check_v4(&a, "1.2.3.4", 8080);
    ipaddr_setport(&a, 0);
    check_v4(&a, "1.2.3.4", 0);
    /* No range check: 16 bits are kept. */
    ipaddr_setport(&a, 65536 + 22);
    CHECK(ipaddr_port(&a) == 22);
    CHECK(ipaddr_local(&a, "::2", 1, 0) == 0);
    ipaddr_setport(&a, 65535);
    check_v6(&a, "::2", 65535);
}

static void test_str(void) {
    struct ipaddr a;
    CHECK(ipaddr_local(&a, "255.255.255.255", 1, 0) == 0);
    check_str(&a, "255.255.255.255");
    CHECK(ipaddr_local(&a, "2001:0db8:0000:0000:0000:0000:0000:0001", 1,
        0) == 0);
    check_str(&a, "2001:db8::1");
    CHECK(ipaddr_local(&a, "::ffff:10.0.0.1", 1, 0) == 0);
    check_str(&a, "::ffff:10.0.0.1");
    /* The scope id is not printed. */
    struct sockaddr_in6 sa6;
    memcpy(&sa6, &a, sizeof(sa6));
    sa6.sin6_scope_id = 1;
    CHECK(inet_pton(AF_INET6, "fe80::7", &sa6.sin6_addr) == 1);
    memcpy(&a, &sa6, sizeof(sa6));
    check_str(&a, "fe80::7");
    /* The longest form fits in IPADDR_MAXSTRLEN. */
    CHECK(ipaddr_local(&a, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        1, 0) == 0);
    char buf[IPADDR_MAXSTRLEN];
    CHECK(ipaddr_str(&a, buf) == buf);
    CHECK(strlen(buf) < IPADDR_MAXSTRLEN);
    /* Not an address. */
    struct ipaddr z;
    memset(&z, 0, sizeof(z));
    errno = 0;
    CHECK(ipaddr_str(&z, buf) == NULL && errno == EAFNOSUPPORT);
}

static void test_equal(void) {
    struct ipaddr a, b;
    CHECK(ipaddr_local(&a, "10.0.0.1", 1, 0) == 0);
    CHECK(ipaddr_local(&b, "10.0.0.1", 1, 0) == 0);
    CHECK(ipaddr_equal(&a, &b, 0) == 1);
    CHECK(ipaddr_equal(&a, &a, 1) == 1);
    ipaddr_setport(&b, 2);
    CHECK(ipaddr_equal(&a, &b, 0) == 0);
    CHECK(ipaddr_equal(&a, &b, 1) == 1);
    CHECK(ipaddr_local(&b, "10.0.0.2", 1, 0) == 0);
    CHECK(ipaddr_equal(&a, &b, 1) == 0);
    CHECK(ipaddr_equal(&a, &b, 0) == 0);
    /* Same bytes, other family. */
    CHECK(ipaddr_local(&b, "::ffff:10.0.0.1", 1, 0) == 0);
    CHECK(ipaddr_equal(&a, &b, 1) == 0);
    CHECK(ipaddr_local(&a, "::ffff:10.0.0.1", 1, 0) == 0);
    CHECK(ipaddr_equal(&a, &b, 0) == 1);
    /* Scope id and flow info are ignored. */
    struct sockaddr_in6 sa6;
    memcpy(&sa6, &b, sizeof(sa6));
    sa6.sin6_scope_id = 3;
    sa6.sin6_flowinfo = htonl(7);
    memcpy(&b, &sa6, sizeof(sa6));
    CHECK(ipaddr_equal(&a, &b, 0) == 1);
    CHECK(ipaddr_local(&b, "::ffff:10.0.0.2", 1, 0) == 0);
    CHECK(ipaddr_equal(&a, &b, 1) == 0);
    /* Neither IPv4 nor IPv6: never equal, even to itself. */
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    CHECK(ipaddr_equal(&a, &b, 0) == 0);
    CHECK(ipaddr_equal(&a, &a, 1) == 0);
}

/* struct ipaddr has alignment 1: anywhere in memory must work. */
static void test_unaligned(void) {
    char buf[1 + 2 * sizeof(struct ipaddr)];
    struct ipaddr *a = (struct ipaddr *)(buf + 1);
    struct ipaddr *b = (struct ipaddr *)(buf + 1 + sizeof(struct ipaddr));
    CHECK(ipaddr_local(a, "fe80::9", 77, IPADDR_IPV6) == 0);
    CHECK(ipaddr_family(a) == AF_INET6);
    CHECK(ipaddr_len(a) == 28);
    CHECK(ipaddr_port(a) == 77);
    ipaddr_setport(a, 78);
    CHECK(ipaddr_port(a) == 78);
    check_str(a, "fe80::9");
    CHECK(ipaddr_remote(b, "fe80::9", 78, 0, 0) == 0);
    CHECK(ipaddr_equal(a, b, 0) == 1);
    CHECK(ipaddr_remotes(b, 1, "9.8.7.6", 1, IPADDR_IPV4, 0) == 1);
    check_str(b, "9.8.7.6");
    CHECK(ipaddr_equal(a, b, 1) == 0);
    CHECK(ipaddr_local(a, "lo", 5, IPADDR_IPV4) == 0);
    check_str(a, "127.0.0.1");
    CHECK(ipaddr_local(a, NULL, 6, 0) == 0);
    check_str(a, "0.0.0.0");
}

int main(void) {
    test_layout();
    test_local_wildcard();
    test_local_literals();
    test_local_interface();
    test_remote_literals();
    test_port();
    test_str();
    test_equal();
    test_unaligned();
    return 0;
}
