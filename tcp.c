/*
 * tcp.c: TCP listeners and connections (sockets.md §8). This file makes
 * the sockets: listen, accept, a non-blocking connect parked on fdout, and
 * adoption of OS sockets. A connection is fdconn.c's handle over a
 * struct dill_fd_stream (data path, sticky errors, orderly close) with
 * read-ahead; a listener only accepts.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fdconn.h"
#include "fdsock.h"
#include "ipaddr.h"
#include "layer.h"
#include "libdillimpl.h"
#include "utils.h"

struct tcp_listener {
    struct dill_hvfs hvfs;
    int fd;
    uint8_t in_caller_memory;
};

/* Storage may start at any address: the object goes at the first aligned
   byte of it. */
DILL_FITS(struct tcp_listener, struct dill_tcp_listener_storage);

/* Private type ids: only tcp_done, tcp_close and tcp_accept ask for them. */
static const int conn_type_id;
static const void *conn_type = &conn_type_id;
static const int listener_type_id;
static const void *listener_type = &listener_type_id;

/* ---- Connections -------------------------------------------------------- */

static void *conn_query(struct dill_hvfs *hvfs, const void *type);

/* A TCP connection reads ahead, and offers its stream to the protocols
   above (http.c writes heads with MSG_MORE through it). */
static const struct dill_fd_conn_kind conn_kind = {
    .type = &conn_type_id,
    .read_ahead = 1,
    .offer_stream = 1,
    .family = AF_INET,
    .alt_family = AF_INET6,
    .query = conn_query
};

static void *conn_query(struct dill_hvfs *hvfs, const void *type) {
    return dill_fd_conn_query(hvfs, type, &conn_kind);
}

/* ---- Listeners ---------------------------------------------------------- */

static void *listener_query(struct dill_hvfs *hvfs, const void *type) {
    if(type == listener_type)
        return dill_cont(hvfs, struct tcp_listener, hvfs);
    errno = ENOTSUP;
    return NULL;
}

static void listener_free(struct tcp_listener *l) {
    dill_unplace(l, l->in_caller_memory);
}

static void listener_close(struct dill_hvfs *hvfs) {
    struct tcp_listener *l = dill_cont(hvfs, struct tcp_listener, hvfs);
    /* Wakes a coroutine blocked in tcp_accept with EBADF. */
    dill_fd_close(l->fd);
    listener_free(l);
}

static struct tcp_listener *listener_alloc(
      struct dill_tcp_listener_storage *mem) {
    struct tcp_listener *l = dill_place(mem, sizeof(*l),
        _Alignof(struct tcp_listener));
    if(l) l->in_caller_memory = mem != NULL;
    return l;
}

static int listener_make(struct tcp_listener *l, int fd) {
    l->hvfs.query = listener_query;
    l->hvfs.close = listener_close;
    l->fd = fd;
    int h = dill_hmake(&l->hvfs);
    if(h < 0) {
        listener_free(l);
        return -1;
    }
    return h;
}

/* socket, set-up, bind, listen, and the ephemeral port read back. A
   listening socket, or -1 with nothing left open. */
static int listen_socket(struct dill_ipaddr *addr, int backlog) {
    sa_family_t family = dill_addr_family(addr);
    int fd = socket(family, SOCK_STREAM, 0);
    if(fd < 0) return -1;
    /* SO_REUSEADDR must be on before bind. */
    if(dill_fd_setup(fd) < 0) goto fail;
    if(bind(fd, (const struct sockaddr *)addr, dill_addr_len(family)) < 0)
        goto fail;
    if(listen(fd, backlog) < 0) goto fail;
    if(dill_addr_port(addr) == 0) {
        struct sockaddr_storage bound;
        socklen_t len = sizeof(bound);
        if(getsockname(fd, (struct sockaddr *)&bound, &len) < 0) goto fail;
        dill_addr_set_port(addr, ((struct sockaddr_in *)&bound)->sin_port);
    }
    return fd;
fail:
    dill_fd_close(fd);
    return -1;
}

/* Both variants of each operation allocate the object first: when the
   socket cannot be made, only the allocation needs undoing. */
static int listen_with(struct dill_ipaddr *addr, int backlog,
      struct dill_tcp_listener_storage *mem) {
    /* An unset address: what socket() would say for family 0. */
    if(!dill_is_ip_family(dill_addr_family(addr))) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    struct tcp_listener *l = listener_alloc(mem);
    if(!l) return -1;
    int fd = listen_socket(addr, backlog);
    if(fd < 0) {
        listener_free(l);
        return -1;
    }
    int h = listener_make(l, fd);
    if(h < 0) dill_fd_close(fd);
    return h;
}

DILL_EXPORT int dill_tcp_listen_mem(struct dill_ipaddr *addr, int backlog,
      struct dill_tcp_listener_storage *mem) {
    if(!addr || !mem) {
        errno = EINVAL;
        return -1;
    }
    return listen_with(addr, backlog, mem);
}

DILL_EXPORT int dill_tcp_listen(struct dill_ipaddr *addr, int backlog) {
    if(!addr) {
        errno = EINVAL;
        return -1;
    }
    return listen_with(addr, backlog, NULL);
}

/* One accepted, set-up socket (its peer address stored in addr when not
   NULL), or -1. */
static int accept_socket(struct tcp_listener *l, struct dill_ipaddr *addr,
      int64_t deadline) {
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    int fd = dill_fd_accept_wait(l->fd, (struct sockaddr *)&peer, &len,
        deadline);
    if(fd >= 0 && addr) {
        memset(addr, 0, sizeof(*addr));
        memcpy(addr, &peer, len < sizeof(*addr) ? len : sizeof(*addr));
    }
    return fd;
}

static int accept_with(int s, struct dill_ipaddr *addr,
      struct dill_tcp_storage *mem, int64_t deadline) {
    struct tcp_listener *l = dill_hquery(s, listener_type);
    if(!l) return -1;
    struct dill_fd_conn *c = dill_fd_conn_alloc(mem);
    if(!c) return -1;
    int fd = accept_socket(l, addr, deadline);
    if(fd < 0) {
        dill_fd_conn_free(c);
        return -1;
    }
    return dill_fd_conn_make(c, fd, &conn_kind);
}

DILL_EXPORT int dill_tcp_accept_mem(int s, struct dill_ipaddr *addr,
      struct dill_tcp_storage *mem, int64_t deadline) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return accept_with(s, addr, mem, deadline);
}

DILL_EXPORT int dill_tcp_accept(int s, struct dill_ipaddr *addr,
      int64_t deadline) {
    return accept_with(s, addr, NULL, deadline);
}

/* ---- Connecting --------------------------------------------------------- */

/* The model of every blocking call in the library: start the operation
   without blocking, park the coroutine on the fd until it is ready or the
   deadline passes, then collect the outcome. A connected, set-up socket,
   or -1 with nothing left open. */
static int connect_socket(const struct dill_ipaddr *addr, int64_t deadline) {
    sa_family_t family = dill_addr_family(addr);
    int fd = socket(family, SOCK_STREAM, 0);
    if(fd < 0) return -1;
    if(dill_fd_setup(fd) < 0) goto fail;
    if(connect(fd, (const struct sockaddr *)addr, dill_addr_len(family)) == 0)
        return fd;
    /* Only a connection in progress is worth waiting for. */
    if(errno != EINPROGRESS) goto fail;
    if(dill_fdout(fd, deadline) < 0) goto fail;
    int err;
    socklen_t len = sizeof(err);
    if(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) goto fail;
    if(err) {
        errno = err;
        goto fail;
    }
    return fd;
fail:
    dill_fd_close(fd);
    return -1;
}

static int connect_with(const struct dill_ipaddr *addr,
      struct dill_tcp_storage *mem, int64_t deadline) {
    if(!addr || !dill_is_ip_family(dill_addr_family(addr))) {
        errno = EINVAL;
        return -1;
    }
    struct dill_fd_conn *c = dill_fd_conn_alloc(mem);
    if(!c) return -1;
    int fd = connect_socket(addr, deadline);
    if(fd < 0) {
        dill_fd_conn_free(c);
        return -1;
    }
    return dill_fd_conn_make(c, fd, &conn_kind);
}

DILL_EXPORT int dill_tcp_connect_mem(const struct dill_ipaddr *addr,
      struct dill_tcp_storage *mem, int64_t deadline) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return connect_with(addr, mem, deadline);
}

DILL_EXPORT int dill_tcp_connect(const struct dill_ipaddr *addr,
      int64_t deadline) {
    return connect_with(addr, NULL, deadline);
}

/* ---- Done and close ----------------------------------------------------- */

DILL_EXPORT int dill_tcp_done(int s, int64_t deadline) {
    /* shutdown() never blocks: the deadline has nothing to bound. */
    (void)deadline;
    struct dill_fd_conn *c = dill_hquery(s, conn_type);
    if(!c) return -1;
    return dill_fd_stream_done(&c->stream);
}

DILL_EXPORT int dill_tcp_close(int s, int64_t deadline) {
    struct dill_fd_conn *c = dill_hquery(s, conn_type);
    if(!c) {
        if(errno != ENOTSUP || !dill_hquery(s, listener_type)) return -1;
        /* A listener has nothing to finish. */
        dill_hclose(s);
        return 0;
    }
    int rc = dill_fd_stream_close(&c->stream, deadline);
    /* EBADF: the handle was closed by someone else while we drained. */
    if(rc < 0 && errno == EBADF) return -1;
    int err = errno;
    dill_hclose(s);
    errno = err;
    return rc;
}

/* ---- Adopting OS sockets ------------------------------------------------ */

/* Both variants of each kind allocate before adopting, so that the
   caller still owns fd when anything fails. */
static int listener_fromfd(int fd, struct dill_tcp_listener_storage *mem) {
    if(fd < 0) {
        errno = EINVAL;
        return -1;
    }
    struct tcp_listener *l = listener_alloc(mem);
    if(!l) return -1;
    int copy = dill_fd_adopt(fd, SOCK_STREAM, AF_INET, AF_INET6, 1);
    if(copy < 0) {
        listener_free(l);
        return -1;
    }
    return dill_fd_adopted(fd, copy, listener_make(l, copy));
}

DILL_EXPORT int dill_tcp_fromfd_mem(int fd, struct dill_tcp_storage *mem) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return dill_fd_conn_fromfd(fd, mem, &conn_kind);
}

DILL_EXPORT int dill_tcp_fromfd(int fd) {
    return dill_fd_conn_fromfd(fd, NULL, &conn_kind);
}

DILL_EXPORT int dill_tcp_listener_fromfd_mem(int fd,
      struct dill_tcp_listener_storage *mem) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return listener_fromfd(fd, mem);
}

DILL_EXPORT int dill_tcp_listener_fromfd(int fd) {
    return listener_fromfd(fd, NULL);
}
