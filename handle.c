/*
 * handle.c: the per-thread handle table. A handle is an index into an
 * array of slots; free slots form a FIFO list, so numbers start at 0, grow
 * upward, and a released number comes back only after every other free
 * one. Each live slot caches the result of one hquery.
 */
#include "config.h"

#include <stdlib.h>

#include "alloc.h"
#include "ctx.h"
#include "handle.h"

/* Slots are added when this few remain free, so that a released number is
   not handed out again at once. */
#define SPARE_SLOTS 8

static void push_free(struct dill_handles *hs, int h) {
    struct dill_handle *s = &hs->slots[h];
    s->vfs = NULL;
    s->type = NULL;
    s->ptr = NULL;
    s->next = -1;
    if(hs->last_free >= 0) hs->slots[hs->last_free].next = h;
    else hs->first_free = h;
    hs->last_free = h;
    hs->nfree++;
}

static int grow(struct dill_handles *hs) {
    int count = hs->count ? hs->count * 2 : 256;
    struct dill_handle *slots = dill_realloc(hs->slots,
        (size_t)count * sizeof(struct dill_handle));
    if(!slots) return -1;
    hs->slots = slots;
    for(int h = hs->count; h < count; h++) push_free(hs, h);
    hs->count = count;
    return 0;
}

/* The handles of this thread. A thread without a context has none, so
   asking for one there needs no context: EBADF. */
static struct dill_handles *handles(void) {
    struct dill_ctx *ctx = dill_ctx_made();
    if(dill_unlikely(!ctx)) {
        errno = EBADF;
        return NULL;
    }
    return &ctx->handles;
}

static struct dill_handle *lookup(struct dill_handles *hs, int h) {
    if(dill_unlikely(h < 0 || h >= hs->count || !hs->slots[h].vfs)) {
        errno = EBADF;
        return NULL;
    }
    return &hs->slots[h];
}

DILL_EXPORT int dill_hmake(struct dill_hvfs *vfs) {
    if(!vfs || !vfs->query || !vfs->close) {
        errno = EINVAL;
        return -1;
    }
    struct dill_ctx *ctx = dill_ctx();
    if(!ctx || !dill_may_block(ctx->running)) return -1;
    struct dill_handles *hs = &ctx->handles;
    if(hs->nfree <= SPARE_SLOTS && grow(hs) < 0 && hs->nfree == 0) {
        errno = ENOMEM;
        return -1;
    }
    int h = hs->first_free;
    struct dill_handle *s = &hs->slots[h];
    hs->first_free = s->next;
    if(hs->first_free < 0) hs->last_free = -1;
    hs->nfree--;
    s->vfs = vfs;
    s->type = NULL;
    s->ptr = NULL;
    return h;
}

DILL_HOT DILL_EXPORT void *dill_hquery(int h, const void *type) {
    struct dill_handles *hs = handles();
    if(!hs) return NULL;
    struct dill_handle *s = lookup(hs, h);
    if(!s) return NULL;
    if(dill_likely(s->ptr && s->type == type)) return s->ptr;
    void *ptr = s->vfs->query(s->vfs, type);
    if(ptr) {
        /* The callback may have grown the table: look the slot up again. */
        s = &hs->slots[h];
        s->type = type;
        s->ptr = ptr;
    }
    return ptr;
}

DILL_EXPORT int dill_hclose(int h) {
    struct dill_handles *hs = handles();
    if(!hs) return -1;
    struct dill_handle *s = lookup(hs, h);
    if(!s) return -1;
    /* Close callbacks may not block; they may close other handles. */
    struct dill_cr *self = dill_ctx_made()->running;
    uint8_t previous = self->no_blocking;
    self->no_blocking = 1;
    s->vfs->close(s->vfs);
    self->no_blocking = previous;
    push_free(hs, h);
    return 0;
}

DILL_EXPORT int dill_hown(int h) {
    struct dill_handles *hs = handles();
    if(!hs) return -1;
    struct dill_handle *s = lookup(hs, h);
    if(!s) return -1;
    int moved = dill_hmake(s->vfs);
    if(moved < 0) {
        /* The object cannot live on under a new number: close it. */
        int err = errno;
        dill_hclose(h);
        errno = err;
        return -1;
    }
    push_free(hs, h);
    return moved;
}

void dill_handles_term(struct dill_handles *hs) {
    free(hs->slots);
    hs->slots = NULL;
    hs->count = 0;
    hs->nfree = 0;
    hs->first_free = -1;
    hs->last_free = -1;
}
