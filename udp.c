/*
 * udp.c: UDP sockets (sockets.md §10), message sockets of one datagram
 * per message. The OS socket is never connect()ed: a remote given at open
 * time is remembered, used as the default destination and, on receive, to
 * drop datagrams from anyone else. Sends never wait (a full buffer drops
 * the datagram); receives wait for readability until the deadline.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "alloc.h"
#include "fdsock.h"
#include "ipaddr.h"
#include "layer.h"
#include "iol.h"
#include "libdillimpl.h"
#include "utils.h"

/* Private type id: udp_send* and udp_recv* refuse other message sockets. */
static const int udp_type_id;
static const void *udp_type = &udp_type_id;

union sockaddr_ip {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
};

struct udp_sock {
    struct dill_hvfs hvfs;
    struct dill_msock_vfs mvfs;
    int fd;
    union sockaddr_ip remote;
};

/* udp_storage is 72 bytes and may start at any address: rounded up to the
   object's alignment it keeps at least 72 - 7 bytes, one more than the
   object. That byte, right after the object, holds its flags. */
#define BUSY 1             /* a receive is waiting for a datagram */
#define HAS_REMOTE 2
#define IN_CALLER_MEMORY 4
#define UDP_SIZE (sizeof(struct udp_sock) + 1)

_Static_assert(UDP_SIZE + _Alignof(struct udp_sock) - 1 <=
    sizeof(struct dill_udp_storage), "udp socket does not fit its storage");

static uint8_t *flags_of(struct udp_sock *u) {
    return (uint8_t *)(u + 1);
}

/* Same family, address and port; the IPv6 scope and flow are ignored, as
   ipaddr_equal does. */
static int same_peer(const union sockaddr_ip *a,
      const struct sockaddr_storage *from) {
    const union sockaddr_ip *b = (const union sockaddr_ip *)from;
    if(a->sa.sa_family != b->sa.sa_family) return 0;
    if(a->sa.sa_family == AF_INET)
        return a->sin.sin_port == b->sin.sin_port &&
            a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
    return a->sin6.sin6_port == b->sin6.sin6_port &&
        memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr,
            sizeof(a->sin6.sin6_addr)) == 0;
}

/* ---- Sending ------------------------------------------------------------ */

/* iovecs kept on the stack; longer lists use the heap. */
#define IOV_STACK 16

static size_t count_pieces(struct dill_iolist *first) {
    size_t n = 0;
    for(struct dill_iolist *it = first; it; it = it->iol_next)
        if(it->iol_len) n++;
    return n;
}

/* Room for n iovecs, and for one when n is 0: an empty datagram goes
   through sendmsg and recvmsg as one empty iovec rather than none, since
   qemu-user answers a call with no iovec at all by returning 0 without
   making the system call (nothing sent, nothing received). */
static struct iovec *iov_alloc(struct iovec *stack, size_t n) {
    if(n == 0) {
        stack[0].iov_base = NULL;
        stack[0].iov_len = 0;
    }
    if(n <= IOV_STACK) return stack;
    struct iovec *iov = dill_malloc(n * sizeof(struct iovec));
    if(!iov) errno = ENOMEM;
    return iov;
}

static void iov_free(struct iovec *iov, struct iovec *stack) {
    if(iov != stack) free(iov);
}

static int send_list(struct udp_sock *u, const struct dill_ipaddr *addr,
      struct dill_iolist *first, struct dill_iolist *last) {
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) return -1;
    if(*flags_of(u) & BUSY) {
        errno = EBUSY;
        return -1;
    }
    struct msghdr msg = {0};
    if(addr) {
        msg.msg_name = (void *)addr;
        msg.msg_namelen = dill_addr_len(dill_addr_family(addr));
    } else if(*flags_of(u) & HAS_REMOTE) {
        msg.msg_name = &u->remote;
        msg.msg_namelen = dill_addr_len(u->remote.sa.sa_family);
    } else {
        errno = EINVAL;
        return -1;
    }
    struct iovec stack[IOV_STACK];
    size_t n = count_pieces(first);
    struct iovec *iov = iov_alloc(stack, n);
    if(!iov) return -1;
    size_t i = 0;
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(!it->iol_len) continue;
        iov[i].iov_base = it->iol_base;
        iov[i].iov_len = it->iol_len;
        i++;
    }
    msg.msg_iov = iov;
    msg.msg_iovlen = n ? n : 1;
    ssize_t rc;
    do rc = sendmsg(u->fd, &msg, 0);
    while(rc < 0 && errno == EINTR);
    int err = errno;
    iov_free(iov, stack);
    /* No room in the send buffer: UDP may lose the datagram anyway, so it
       is dropped rather than waited for. */
    if(rc >= 0 || err == EAGAIN || err == EWOULDBLOCK) return 0;
    errno = err;
    return -1;
}

/* ---- Receiving ---------------------------------------------------------- */

/* Elements with a NULL base receive into scratch and are thrown away; a
   datagram is at most 65535 bytes, so that is all scratch needs. */
#define SCRATCH_MAX 65536

/* The iovecs for a receive into the list (empty when first is NULL),
   with *scratch allocated for NULL bases. */
static struct iovec *recv_iov(struct dill_iolist *first, struct iovec *stack,
      size_t *n, char **scratch) {
    *n = count_pieces(first);
    *scratch = NULL;
    size_t drop = 0;
    for(struct dill_iolist *it = first; it; it = it->iol_next)
        if(!it->iol_base && it->iol_len > drop) drop = it->iol_len;
    if(drop > SCRATCH_MAX) drop = SCRATCH_MAX;
    struct iovec *iov = iov_alloc(stack, *n);
    if(!iov) return NULL;
    if(drop && !(*scratch = dill_malloc(drop))) {
        iov_free(iov, stack);
        errno = ENOMEM;
        return NULL;
    }
    size_t i = 0;
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(!it->iol_len) continue;
        iov[i].iov_base = it->iol_base ? it->iol_base : *scratch;
        iov[i].iov_len = it->iol_base ? it->iol_len : (it->iol_len < drop ?
            it->iol_len : drop);
        i++;
    }
    return iov;
}

/* One datagram from the remote (anyone, without a remote), or -1. The
   returned size is what fitted in the list: the rest of a larger datagram
   is lost. */
static ssize_t recv_datagram(struct udp_sock *u, struct dill_ipaddr *addr,
      struct msghdr *msg, int64_t deadline) {
    for(;;) {
        struct sockaddr_storage from;
        msg->msg_name = &from;
        msg->msg_namelen = sizeof(from);
        ssize_t n = recvmsg(u->fd, msg, 0);
        if(n >= 0) {
            if((*flags_of(u) & HAS_REMOTE) && !same_peer(&u->remote, &from))
                continue;
            if(addr) {
                size_t len = msg->msg_namelen < sizeof(*addr) ?
                    msg->msg_namelen : sizeof(*addr);
                memset(addr, 0, sizeof(*addr));
                memcpy(addr, &from, len);
            }
            return n;
        }
        if(errno == EINTR) continue;
        if(errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        *flags_of(u) |= BUSY;
        if(dill_fdin(u->fd, deadline) < 0) {
            /* EBADF: the handle was closed under us; u may be gone. */
            if(errno != EBADF) *flags_of(u) &= (uint8_t)~BUSY;
            return -1;
        }
        *flags_of(u) &= (uint8_t)~BUSY;
    }
}

static ssize_t recv_list(struct udp_sock *u, struct dill_ipaddr *addr,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    size_t len;
    /* Both NULL: take the next datagram and drop it. */
    if((first || last) && dill_iol_check(first, last, &len) < 0) return -1;
    if(*flags_of(u) & BUSY) {
        errno = EBUSY;
        return -1;
    }
    struct iovec stack[IOV_STACK];
    size_t n;
    char *scratch;
    struct iovec *iov = recv_iov(first, stack, &n, &scratch);
    if(!iov) return -1;
    struct msghdr msg = {0};
    msg.msg_iov = iov;
    msg.msg_iovlen = n ? n : 1;
    ssize_t rc = recv_datagram(u, addr, &msg, deadline);
    int err = errno;
    iov_free(iov, stack);
    free(scratch);
    errno = err;
    return rc;
}

/* ---- The handle --------------------------------------------------------- */

static void *udp_query(struct dill_hvfs *hvfs, const void *type) {
    struct udp_sock *u = dill_cont(hvfs, struct udp_sock, hvfs);
    if(type == dill_msock_type) return &u->mvfs;
    if(type == udp_type) return u;
    errno = ENOTSUP;
    return NULL;
}

static void udp_close(struct dill_hvfs *hvfs) {
    struct udp_sock *u = dill_cont(hvfs, struct udp_sock, hvfs);
    /* Wakes a coroutine blocked in a receive with EBADF. */
    dill_fd_close(u->fd);
    dill_unplace(u, *flags_of(u) & IN_CALLER_MEMORY);
}

static int udp_msendl(struct dill_msock_vfs *mvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    /* Sending never waits. */
    (void)deadline;
    struct udp_sock *u = dill_cont(mvfs, struct udp_sock, mvfs);
    return send_list(u, NULL, first, last);
}

static ssize_t udp_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct udp_sock *u = dill_cont(mvfs, struct udp_sock, mvfs);
    return recv_list(u, NULL, first, last, deadline);
}

/* Binds fd to local, whose port is 0, or to the family's wildcard address
   when there is no local, and writes the port it got back into local. */
static int bind_any_port(int fd, struct dill_ipaddr *local, sa_family_t family) {
    union sockaddr_ip bound;
    memset(&bound, 0, sizeof(bound));
    if(local) memcpy(&bound, local, dill_addr_len(family));
    else bound.sa.sa_family = family;
    if(bind(fd, &bound.sa, dill_addr_len(family)) < 0) return -1;
    if(!local) return 0;
    socklen_t len = sizeof(bound);
    if(getsockname(fd, &bound.sa, &len) < 0) return -1;
    dill_addr_set_port(local, bound.sin.sin_port);
    return 0;
}

/* A set-up socket for local/remote, bound to local when given (its port
   written back when it was 0), or -1 with nothing left open. */
static int open_socket(struct dill_ipaddr *local,
      const struct dill_ipaddr *remote) {
    if(local && remote && dill_addr_family(local) != dill_addr_family(remote)) {
        errno = EINVAL;
        return -1;
    }
    sa_family_t family = remote ? dill_addr_family(remote) :
        local ? dill_addr_family(local) : AF_INET;
    /* An unset address: what socket() would say for family 0. */
    if(!dill_is_ip_family(family)) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    int fd = socket(family, SOCK_DGRAM, 0);
    if(fd < 0) return -1;
    if(local && dill_addr_port(local) != 0) {
        /* A chosen port: SO_REUSEADDR first, so that it may be shared. */
        if(dill_fd_setup(fd) < 0) goto fail;
        if(bind(fd, (const struct sockaddr *)local, dill_addr_len(family)) < 0)
            goto fail;
        return fd;
    }
    /* Any port: bound before SO_REUSEADDR is set. Linux lets a UDP socket
       that has it take, when it binds to port 0 (or on its first send), a
       port that another such socket holds, and the two would then share
       each other's datagrams. Without it at bind, the port is one nobody
       holds. */
    if(bind_any_port(fd, local, family) < 0 || dill_fd_setup(fd) < 0)
        goto fail;
    return fd;
fail:
    dill_fd_close(fd);
    return -1;
}

static int udp_make(struct udp_sock *u, int fd, uint8_t flags,
      const struct dill_ipaddr *remote) {
    u->hvfs.query = udp_query;
    u->hvfs.close = udp_close;
    u->mvfs.msendl = udp_msendl;
    u->mvfs.mrecvl = udp_mrecvl;
    u->fd = fd;
    memset(&u->remote, 0, sizeof(u->remote));
    if(remote) {
        memcpy(&u->remote, remote, dill_addr_len(dill_addr_family(remote)));
        flags |= HAS_REMOTE;
    }
    *flags_of(u) = flags;
    int h = dill_hmake(&u->hvfs);
    if(h < 0) {
        dill_fd_close(fd);
        dill_unplace(u, flags & IN_CALLER_MEMORY);
        return -1;
    }
    return h;
}

/* The object is allocated first: when the socket cannot be made, only
   the allocation needs undoing. */
static int open_with(struct dill_ipaddr *local,
      const struct dill_ipaddr *remote, struct dill_udp_storage *mem) {
    struct udp_sock *u = dill_place(mem, UDP_SIZE, _Alignof(struct udp_sock));
    if(!u) return -1;
    uint8_t flags = mem ? IN_CALLER_MEMORY : 0;
    int fd = open_socket(local, remote);
    if(fd < 0) {
        dill_unplace(u, flags & IN_CALLER_MEMORY);
        return -1;
    }
    return udp_make(u, fd, flags, remote);
}

DILL_EXPORT int dill_udp_open_mem(struct dill_ipaddr *local,
      const struct dill_ipaddr *remote, struct dill_udp_storage *mem) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return open_with(local, remote, mem);
}

DILL_EXPORT int dill_udp_open(struct dill_ipaddr *local,
      const struct dill_ipaddr *remote) {
    return open_with(local, remote, NULL);
}

/* ---- Sending and receiving with addresses ------------------------------- */

static struct udp_sock *get(int s) {
    return dill_hquery(s, udp_type);
}

DILL_EXPORT int dill_udp_sendl(int s, const struct dill_ipaddr *addr,
      struct dill_iolist *first, struct dill_iolist *last) {
    struct udp_sock *u = get(s);
    if(!u) return -1;
    return send_list(u, addr, first, last);
}

DILL_EXPORT int dill_udp_send(int s, const struct dill_ipaddr *addr,
      const void *buf, size_t len) {
    struct udp_sock *u = get(s);
    if(!u) return -1;
    struct dill_iolist iol = {(void *)buf, len, NULL, 0};
    return send_list(u, addr, &iol, &iol);
}

DILL_EXPORT ssize_t dill_udp_recvl(int s, struct dill_ipaddr *addr,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct udp_sock *u = get(s);
    if(!u) return -1;
    return recv_list(u, addr, first, last, deadline);
}

DILL_EXPORT ssize_t dill_udp_recv(int s, struct dill_ipaddr *addr, void *buf,
      size_t len, int64_t deadline) {
    struct udp_sock *u = get(s);
    if(!u) return -1;
    struct dill_iolist iol = {buf, len, NULL, 0};
    return recv_list(u, addr, &iol, &iol, deadline);
}
