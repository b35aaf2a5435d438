/*
 * fdconn.h: the handle of a connected stream socket, which TCP and IPC
 * connections share: the bytestream interface over a struct
 * dill_fd_stream, placement in caller storage or on the heap, the close
 * callback, and adopting an OS socket. Each kind adds only its private
 * type id (and, for TCP, read-ahead and the stream's own interface).
 */
#ifndef DILL_FDCONN_H_INCLUDED
#define DILL_FDCONN_H_INCLUDED

#include <stdint.h>

#include "fdsock.h"
#include "libdillimpl.h"

struct dill_fd_conn {
    struct dill_hvfs hvfs;
    struct dill_bsock_vfs bvfs;
    struct dill_fd_stream stream;
    uint8_t in_caller_memory;
};

/* What distinguishes one kind of connection from another. */
struct dill_fd_conn_kind {
    const void *type;   /* the private id the connection answers */
    int read_ahead;     /* TCP reads ahead; IPC never does */
    int offer_stream;   /* answers dill_fd_stream_type too */
    int family;         /* what *_fromfd accepts */
    int alt_family;
    void *(*query)(struct dill_hvfs *vfs, const void *type);
};

/* The query callback of a kind: call it from the kind's own, which passes
   its struct dill_fd_conn_kind. */
void *dill_fd_conn_query(struct dill_hvfs *hvfs, const void *type,
    const struct dill_fd_conn_kind *kind);

/* Room for a connection in mem (any alignment) or on the heap. NULL with
   ENOMEM. */
struct dill_fd_conn *dill_fd_conn_alloc(void *mem);
void dill_fd_conn_free(struct dill_fd_conn *c);

/* Wrap a set-up, connected socket in c and give it a handle. On failure
   the socket is closed and c freed. */
int dill_fd_conn_make(struct dill_fd_conn *c, int fd,
    const struct dill_fd_conn_kind *kind);

/* *_fromfd: a handle for the caller's connected socket fd (sockets.md §6),
   in mem or on the heap. On failure the caller still owns fd. */
int dill_fd_conn_fromfd(int fd, void *mem,
    const struct dill_fd_conn_kind *kind);

#endif
