/*
 * layer.h: what every socket and protocol object does alike (sockets.md
 * §1, §5): living in caller storage or on the heap, owning the socket
 * below through hown and asking it for its interface with hquery, giving
 * itself a handle, closing or giving back the socket below, and the
 * per-direction state of sticky failures. tcp.c, ipc.c, udp.c and every
 * protocol file build on these, so each of them reads the same way.
 *
 * A protocol object starts with struct dill_layer:
 *
 *     struct prefix_sock {
 *         struct dill_layer layer;      (must come first)
 *         struct dill_msock_vfs mvfs;
 *         ...
 *     };
 *     DILL_FITS(struct prefix_sock, struct dill_prefix_storage);
 *
 * attach:  u = dill_layer_own(s, dill_bsock_type, EPROTO, &below);
 *          p = dill_layer_alloc(mem, sizeof(*p), _Alignof(*p));  (u closed
 *              by the caller on failure: dill_layer_fail(u))
 *          ...fill p...
 *          return dill_layer_make(&p->layer, u, query, close);
 * close:   the protocol frees what it holds, then dill_layer_close(&p->layer)
 * detach:  return dill_layer_release(h, &p->layer);
 *
 * One rule for every blocking call a layer makes on the socket below: if it
 * fails with EBADF, the layer's own handle may have been closed while the
 * call waited (closing a protocol handle closes the stack beneath it, which
 * wakes the waiter with EBADF), so the object may be freed already. Return
 * -1 at once without touching it.
 */
#ifndef DILL_LAYER_H_INCLUDED
#define DILL_LAYER_H_INCLUDED

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "libdillimpl.h"

/* Storage may start at any address (sockets.md §1.2): an object fits when
   it fits after rounding the start up to its alignment. */
#define DILL_FITS(type, storage) \
    _Static_assert(sizeof(type) + _Alignof(type) - 1 <= sizeof(storage), \
        #type " does not fit " #storage)

/* An object of size bytes at the first byte of mem aligned to align (a
   power of two), or on the heap when mem is NULL. NULL with ENOMEM. */
void *dill_place(void *mem, size_t size, size_t align);

/* Undo dill_place: frees heap objects, leaves caller storage alone.
   errno is preserved. */
void dill_unplace(void *obj, int in_caller_memory);

/* ---- Protocol layers -------------------------------------------------- */

struct dill_layer {
    struct dill_hvfs hvfs;
    int u;                    /* the socket below, owned; -1 once given back */
    uint8_t in_caller_memory;
};

/* Take the socket s below a new layer: hown it (s is dead from now on,
   success or not) and ask it for type. Returns the new number of the
   socket, with its interface in *vfs; or -1 with the socket closed and
   errno EBADF, ECANCELED, ENOMEM, or notsup_errno when the socket does not
   offer type (EPROTO for most protocols, ENOTSUP for HTTP and WebSocket). */
int dill_layer_own(int s, const void *type, int notsup_errno, void **vfs);

/* An attach that fails on its arguments closes the socket it was given
   all the same (sockets.md §20.1). Sets errno to err, returns -1. */
int dill_layer_refuse(int s, int err);

/* After dill_layer_own, when something fails before dill_layer_make:
   close u, keep errno, return -1. */
int dill_layer_fail(int u);

/* Room for a protocol object that starts with struct dill_layer: in mem,
   or on the heap when mem is NULL. The layer part is initialised (no
   socket below yet). NULL with ENOMEM. */
void *dill_layer_alloc(void *mem, size_t size, size_t align);

/* Give the layer its handle, over the socket u. On failure u is closed and
   the object freed; -1 with errno (ECANCELED, ENOMEM). */
int dill_layer_make(struct dill_layer *l, int u,
    void *(*query)(struct dill_hvfs *vfs, const void *type),
    void (*close)(struct dill_hvfs *vfs));

/* The last step of a close callback: close the socket below if the layer
   still owns it, and free the object. */
void dill_layer_close(struct dill_layer *l);

/* Detach: free the layer and its handle h, and return the socket below
   (its number from dill_layer_own). Later use of h fails with EBADF. */
int dill_layer_release(int h, struct dill_layer *l);

/* Detach that failed: close h and the whole stack below, keep errno,
   return -1. */
int dill_layer_abort(int h);

/* ---- Direction state -------------------------------------------------- */

/* Whether a direction refuses a new operation, setting errno: EBUSY while
   one runs, EPIPE after it ended cleanly (the peer's end, or our own done),
   ECONNRESET after a failure. 1 or 0. */
static inline int dill_refused(int busy, int ended, int failed) {
    if(busy) errno = EBUSY;
    else if(ended) errno = EPIPE;
    else if(failed) errno = ECONNRESET;
    else return 0;
    return 1;
}

#endif
