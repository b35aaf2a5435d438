/*
 * fdconn.c: the connection handle TCP and IPC share (see fdconn.h).
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>

#include "fdconn.h"
#include "layer.h"
#include "utils.h"

DILL_FITS(struct dill_fd_conn, struct dill_tcp_storage);
DILL_FITS(struct dill_fd_conn, struct dill_ipc_storage);

void *dill_fd_conn_query(struct dill_hvfs *hvfs, const void *type,
      const struct dill_fd_conn_kind *kind) {
    struct dill_fd_conn *c = dill_cont(hvfs, struct dill_fd_conn, hvfs);
    if(type == dill_bsock_type) return &c->bvfs;
    if(type == kind->type) return c;
    if(kind->offer_stream && type == dill_fd_stream_type) return &c->stream;
    errno = ENOTSUP;
    return NULL;
}

static void conn_close(struct dill_hvfs *hvfs) {
    struct dill_fd_conn *c = dill_cont(hvfs, struct dill_fd_conn, hvfs);
    /* tcp_close and ipc_close have closed the socket already. */
    if(c->stream.fd >= 0) dill_fd_stream_abort(&c->stream);
    dill_fd_conn_free(c);
}

DILL_HOT static int conn_bsendl(struct dill_bsock_vfs *bvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dill_fd_conn *c = dill_cont(bvfs, struct dill_fd_conn, bvfs);
    return dill_fd_stream_send(&c->stream, first, last, deadline);
}

DILL_HOT static int conn_brecvl(struct dill_bsock_vfs *bvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dill_fd_conn *c = dill_cont(bvfs, struct dill_fd_conn, bvfs);
    return dill_fd_stream_recv(&c->stream, first, last, deadline);
}

struct dill_fd_conn *dill_fd_conn_alloc(void *mem) {
    struct dill_fd_conn *c = dill_place(mem, sizeof(*c),
        _Alignof(struct dill_fd_conn));
    if(c) c->in_caller_memory = mem != NULL;
    return c;
}

void dill_fd_conn_free(struct dill_fd_conn *c) {
    dill_unplace(c, c->in_caller_memory);
}

/* The handle, or -1 with c freed and fd left open. */
static int conn_make(struct dill_fd_conn *c, int fd,
      const struct dill_fd_conn_kind *kind) {
    c->hvfs.query = kind->query;
    c->hvfs.close = conn_close;
    c->bvfs.bsendl = conn_bsendl;
    c->bvfs.brecvl = conn_brecvl;
    dill_fd_stream_init(&c->stream, fd, kind->read_ahead);
    int h = dill_hmake(&c->hvfs);
    if(h < 0) {
        dill_fd_conn_free(c);
        return -1;
    }
    return h;
}

int dill_fd_conn_make(struct dill_fd_conn *c, int fd,
      const struct dill_fd_conn_kind *kind) {
    int h = conn_make(c, fd, kind);
    if(h < 0) dill_fd_close(fd);
    return h;
}

/* The object is allocated before the fd is adopted, so that the caller
   still owns fd when anything fails. */
int dill_fd_conn_fromfd(int fd, void *mem,
      const struct dill_fd_conn_kind *kind) {
    if(fd < 0) {
        errno = EINVAL;
        return -1;
    }
    struct dill_fd_conn *c = dill_fd_conn_alloc(mem);
    if(!c) return -1;
    int copy = dill_fd_adopt(fd, SOCK_STREAM, kind->family, kind->alt_family,
        0);
    if(copy < 0) {
        dill_fd_conn_free(c);
        return -1;
    }
    return dill_fd_adopted(fd, copy, conn_make(c, copy, kind));
}
