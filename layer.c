/*
 * layer.c: the attach, close and detach steps every protocol layer shares
 * (see layer.h), and object placement in caller storage or on the heap.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "layer.h"

void *dill_place(void *mem, size_t size, size_t align) {
    if(mem) {
        uintptr_t at = ((uintptr_t)mem + align - 1) & ~(uintptr_t)(align - 1);
        return (void *)at;
    }
    void *obj = dill_malloc(size);
    if(!obj) errno = ENOMEM;
    return obj;
}

void dill_unplace(void *obj, int in_caller_memory) {
    if(in_caller_memory) return;
    int err = errno;
    free(obj);
    errno = err;
}

int dill_layer_own(int s, const void *type, int notsup_errno, void **vfs) {
    int u = dill_hown(s);
    if(u < 0) return -1;
    void *found = dill_hquery(u, type);
    if(!found) {
        if(errno == ENOTSUP) errno = notsup_errno;
        return dill_layer_fail(u);
    }
    *vfs = found;
    return u;
}

int dill_layer_refuse(int s, int err) {
    dill_hclose(s);
    errno = err;
    return -1;
}

int dill_layer_fail(int u) {
    int err = errno;
    dill_hclose(u);
    errno = err;
    return -1;
}

void *dill_layer_alloc(void *mem, size_t size, size_t align) {
    struct dill_layer *l = dill_place(mem, size, align);
    if(!l) return NULL;
    l->hvfs.query = NULL;
    l->hvfs.close = NULL;
    l->u = -1;
    l->in_caller_memory = mem != NULL;
    return l;
}

int dill_layer_make(struct dill_layer *l, int u,
      void *(*query)(struct dill_hvfs *vfs, const void *type),
      void (*close)(struct dill_hvfs *vfs)) {
    l->hvfs.query = query;
    l->hvfs.close = close;
    l->u = u;
    int h = dill_hmake(&l->hvfs);
    if(h < 0) {
        int err = errno;
        dill_layer_close(l);
        errno = err;
    }
    return h;
}

void dill_layer_close(struct dill_layer *l) {
    if(l->u >= 0) {
        int err = errno;
        dill_hclose(l->u);
        errno = err;
    }
    dill_unplace(l, l->in_caller_memory);
}

int dill_layer_release(int h, struct dill_layer *l) {
    int u = l->u;
    /* The close callback sees no socket below and only frees. */
    l->u = -1;
    dill_hclose(h);
    return u;
}

int dill_layer_abort(int h) {
    int err = errno;
    dill_hclose(h);
    errno = err;
    return -1;
}
