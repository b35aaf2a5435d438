/*
 * ipaddr.c: struct dill_ipaddr (sockets.md §7). The 32 bytes hold a native
 * sockaddr_in or sockaddr_in6 at offset 0. ipaddr_local takes literals and
 * interface names, never DNS; ipaddr_remote(s) take literals directly and
 * hand host names to resolver.c. The struct has alignment 1, so every field
 * is read and written through memcpy, never through a cast pointer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "libdill.h"
#include "resolver.h"

_Static_assert(sizeof(struct sockaddr_in6) <= sizeof(struct dill_ipaddr),
    "struct dill_ipaddr cannot hold a sockaddr_in6");
_Static_assert(offsetof(struct sockaddr_in, sin_port) ==
    offsetof(struct sockaddr_in6, sin6_port), "port offsets differ");

/* One of the two native layouts, at the alignment the OS wants. */
union sa {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

static void load(union sa *u, const struct dill_ipaddr *addr) {
    memcpy(u, addr, sizeof(*u));
}

/* Writes all 32 bytes: the native struct, then zeros. */
static void store(struct dill_ipaddr *addr, const union sa *u) {
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, u, sizeof(*u));
}

static int valid_mode(int mode) {
    return mode >= 0 && mode <= DILL_IPADDR_PREF_IPV6;
}

static int valid_port(int port) {
    return port >= 0 && port <= 65535;
}

/* The BSDs carry the length of a sockaddr in its first byte. */
static void set_len(union sa *u, int family) {
#if defined __APPLE__ || defined __FreeBSD__ || defined __OpenBSD__ || \
    defined __NetBSD__ || defined __DragonFly__
    u->sa.sa_len = family == AF_INET ? sizeof(struct sockaddr_in) :
        sizeof(struct sockaddr_in6);
#else
    (void)u;
    (void)family;
#endif
}

static void make_any(union sa *u, int family, int port) {
    memset(u, 0, sizeof(*u));
    set_len(u, family);
    if(family == AF_INET) {
        u->in.sin_family = AF_INET;
        u->in.sin_addr.s_addr = htonl(INADDR_ANY);
        u->in.sin_port = htons((uint16_t)port);
    }
    else {
        u->in6.sin6_family = AF_INET6;
        u->in6.sin6_addr = in6addr_any;
        u->in6.sin6_port = htons((uint16_t)port);
    }
}

/* name as a literal of exactly this family. 1 if it is one, else 0. */
static int literal_of(union sa *u, const char *name, int family, int port) {
    union sa tmp;
    make_any(&tmp, family, port);
    void *dst = family == AF_INET ? (void *)&tmp.in.sin_addr :
        (void *)&tmp.in6.sin6_addr;
    if(inet_pton(family, name, dst) != 1) return 0;
    *u = tmp;
    return 1;
}

/* sockets.md §7.1 step 3, shared with ipaddr_remotes: IPV4 and IPV6 accept
   only their family, the preference modes try the preferred one first.
   1 with the address in u, or 0. */
static int literal(union sa *u, const char *name, int port, int mode) {
    if(!valid_port(port)) return 0;
    switch(mode) {
    case DILL_IPADDR_IPV4:
        return literal_of(u, name, AF_INET, port);
    case DILL_IPADDR_IPV6:
        return literal_of(u, name, AF_INET6, port);
    case DILL_IPADDR_PREF_IPV6:
        return literal_of(u, name, AF_INET6, port) ||
            literal_of(u, name, AF_INET, port);
    default:
        return literal_of(u, name, AF_INET, port) ||
            literal_of(u, name, AF_INET6, port);
    }
}

/* §7.1 step 4: the first IPv4 and the first IPv6 address of the interface
   called name, one picked by mode. The whole sockaddr is kept, so an IPv6
   link-local address keeps its scope id. */
static int interface(union sa *u, const char *name, int port, int mode) {
    struct ifaddrs *list;
    if(getifaddrs(&list) < 0) return -1;
    const struct sockaddr *v4 = NULL, *v6 = NULL;
    for(struct ifaddrs *it = list; it; it = it->ifa_next) {
        if(!it->ifa_addr || strcmp(it->ifa_name, name) != 0) continue;
        if(it->ifa_addr->sa_family == AF_INET && !v4) v4 = it->ifa_addr;
        if(it->ifa_addr->sa_family == AF_INET6 && !v6) v6 = it->ifa_addr;
    }
    const struct sockaddr *pick;
    switch(mode) {
    case DILL_IPADDR_IPV4: pick = v4; break;
    case DILL_IPADDR_IPV6: pick = v6; break;
    case DILL_IPADDR_PREF_IPV6: pick = v6 ? v6 : v4; break;
    default: pick = v4 ? v4 : v6; break;
    }
    if(!pick) {
        freeifaddrs(list);
        errno = ENODEV;
        return -1;
    }
    memset(u, 0, sizeof(*u));
    if(pick->sa_family == AF_INET) memcpy(&u->in, pick, sizeof(u->in));
    else memcpy(&u->in6, pick, sizeof(u->in6));
    freeifaddrs(list);
    /* Not range-checked on this path: truncated to 16 bits (§7.1). */
    u->in.sin_port = htons((uint16_t)port);
    return 0;
}

DILL_EXPORT int dill_ipaddr_local(struct dill_ipaddr *addr, const char *name,
      int port, int mode) {
    if(!addr) {
        errno = EINVAL;
        return -1;
    }
    memset(addr, 0, sizeof(*addr));
    union sa u;
    if(!name) {
        if(!valid_port(port)) {
            errno = EINVAL;
            return -1;
        }
        int v4 = mode == 0 || mode == DILL_IPADDR_IPV4 ||
            mode == DILL_IPADDR_PREF_IPV4;
        make_any(&u, v4 ? AF_INET : AF_INET6, port);
        store(addr, &u);
        return 0;
    }
    if(!valid_mode(mode)) {
        errno = EINVAL;
        return -1;
    }
    if(!literal(&u, name, port, mode) && interface(&u, name, port, mode) < 0)
        return -1;
    store(addr, &u);
    return 0;
}

DILL_EXPORT int dill_ipaddr_remotes(struct dill_ipaddr *addrs, int naddrs,
      const char *name, int port, int mode, int64_t deadline) {
    if(!addrs || naddrs <= 0 || !name || !valid_mode(mode) ||
          !valid_port(port)) {
        errno = EINVAL;
        return -1;
    }
    memset(&addrs[0], 0, sizeof(addrs[0]));
    union sa u;
    if(literal(&u, name, port, mode)) {
        store(&addrs[0], &u);
        return 1;
    }
    if(mode == DILL_IPADDR_IPV4 || mode == DILL_IPADDR_IPV6)
        return dill_resolve(addrs, naddrs, name,
            mode == DILL_IPADDR_IPV4 ? AF_INET : AF_INET6, port, deadline);
    int first = mode == DILL_IPADDR_PREF_IPV6 ? AF_INET6 : AF_INET;
    int second = first == AF_INET ? AF_INET6 : AF_INET;
    /* §7.2 step 3: two strict lookups, the preferred family first. */
    int n = dill_resolve(addrs, naddrs, name, first, port, deadline);
    if(n < 0) return -1;
    /* Full already: the other family could only add nothing. */
    if(n == naddrs) return n;
    int m = dill_resolve(addrs + n, naddrs - n, name, second, port,
        deadline);
    if(m < 0) return -1;
    return n + m;
}

DILL_EXPORT int dill_ipaddr_remote(struct dill_ipaddr *addr, const char *name,
      int port, int mode, int64_t deadline) {
    int n = dill_ipaddr_remotes(addr, 1, name, port, mode, deadline);
    if(n < 0) return -1;
    if(n == 0) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}

DILL_EXPORT const char *dill_ipaddr_str(const struct dill_ipaddr *addr,
      char *ipstr) {
    if(!addr || !ipstr) {
        errno = EINVAL;
        return NULL;
    }
    union sa u;
    load(&u, addr);
    const void *src;
    switch(u.sa.sa_family) {
    case AF_INET: src = &u.in.sin_addr; break;
    case AF_INET6: src = &u.in6.sin6_addr; break;
    default:
        errno = EAFNOSUPPORT;
        return NULL;
    }
    return inet_ntop(u.sa.sa_family, src, ipstr, DILL_IPADDR_MAXSTRLEN);
}

DILL_EXPORT int dill_ipaddr_family(const struct dill_ipaddr *addr) {
    sa_family_t family;
    memcpy(&family, (const char *)addr + offsetof(struct sockaddr, sa_family),
        sizeof(family));
    return family;
}

DILL_EXPORT const struct sockaddr *dill_ipaddr_sockaddr(
      const struct dill_ipaddr *addr) {
    return (const struct sockaddr *)addr;
}

DILL_EXPORT int dill_ipaddr_len(const struct dill_ipaddr *addr) {
    return dill_ipaddr_family(addr) == AF_INET ?
        (int)sizeof(struct sockaddr_in) : (int)sizeof(struct sockaddr_in6);
}

DILL_EXPORT int dill_ipaddr_port(const struct dill_ipaddr *addr) {
    in_port_t port;
    memcpy(&port, (const char *)addr + offsetof(struct sockaddr_in, sin_port),
        sizeof(port));
    return ntohs(port);
}

DILL_EXPORT void dill_ipaddr_setport(struct dill_ipaddr *addr, int port) {
    in_port_t p = htons((uint16_t)port);
    memcpy((char *)addr + offsetof(struct sockaddr_in, sin_port), &p,
        sizeof(p));
}

DILL_EXPORT int dill_ipaddr_equal(const struct dill_ipaddr *addr1,
      const struct dill_ipaddr *addr2, int ignore_port) {
    union sa a, b;
    load(&a, addr1);
    load(&b, addr2);
    if(a.sa.sa_family != b.sa.sa_family) return 0;
    if(!ignore_port && a.in.sin_port != b.in.sin_port) return 0;
    switch(a.sa.sa_family) {
    case AF_INET:
        return a.in.sin_addr.s_addr == b.in.sin_addr.s_addr;
    case AF_INET6:
        return memcmp(&a.in6.sin6_addr, &b.in6.sin6_addr,
            sizeof(a.in6.sin6_addr)) == 0;
    default:
        return 0;
    }
}
