/*
 * resolver.h: the stub resolver behind ipaddr_remote and ipaddr_remotes.
 * Host names are looked up in /etc/hosts and with DNS queries to the
 * nameservers of /etc/resolv.conf, in the order of nsswitch.conf's hosts:
 * line, without ever blocking the thread: the coroutine waits with
 * fdin/fdout, within the caller's deadline.
 */
#ifndef DILL_RESOLVER_H_INCLUDED
#define DILL_RESOLVER_H_INCLUDED

#include <stdint.h>

#include "libdill.h"

/* Look up the addresses of family (AF_INET or AF_INET6) of the host name
   and store up to naddrs (> 0) of them in addrs, each a whole 32-byte
   address with port (0..65535) set, in the order of the source that had
   them. An address literal of either family gives no results. Returns the
   number stored: 0 when the name does not exist, has no address of this
   family or every server failed; or -1 with errno: ENOENT (no readable
   /etc/resolv.conf), ETIMEDOUT (the deadline passed, or no nameserver
   answered within timeout x attempts), ECANCELED, EMFILE, ENFILE, ENOMEM. */
int dill_resolve(struct dill_ipaddr *addrs, int naddrs, const char *name,
    int family, int port, int64_t deadline);

#endif
