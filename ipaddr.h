/*
 * ipaddr.h: reading and writing the fields of a struct dill_ipaddr from
 * inside the library. The struct is a sockaddr_in or sockaddr_in6 kept at
 * any alignment (sockets.md §7), so fields are copied, never read in
 * place. Ports here are in network byte order, as in the sockaddr.
 */
#ifndef DILL_IPADDR_H_INCLUDED
#define DILL_IPADDR_H_INCLUDED

#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "libdill.h"

/* sin_port and sin6_port sit at the same offset. */
_Static_assert(offsetof(struct sockaddr_in, sin_port) ==
    offsetof(struct sockaddr_in6, sin6_port), "port offsets differ");

static inline sa_family_t dill_addr_family(const struct dill_ipaddr *addr) {
    sa_family_t family;
    memcpy(&family, (const char *)addr + offsetof(struct sockaddr, sa_family),
        sizeof(family));
    return family;
}

static inline int dill_is_ip_family(sa_family_t family) {
    return family == AF_INET || family == AF_INET6;
}

/* The length of the sockaddr of an IP family. */
static inline socklen_t dill_addr_len(sa_family_t family) {
    return family == AF_INET ? sizeof(struct sockaddr_in) :
        sizeof(struct sockaddr_in6);
}

static inline in_port_t dill_addr_port(const struct dill_ipaddr *addr) {
    in_port_t port;
    memcpy(&port, (const char *)addr + offsetof(struct sockaddr_in, sin_port),
        sizeof(port));
    return port;
}

static inline void dill_addr_set_port(struct dill_ipaddr *addr,
      in_port_t port) {
    memcpy((char *)addr + offsetof(struct sockaddr_in, sin_port), &port,
        sizeof(port));
}

#endif
