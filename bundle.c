/*
 * bundle.c: bundles, the handles that own coroutines (go() makes a bundle
 * of one). Closing a bundle cancels its coroutines one at a time, in launch
 * order, waiting for each to return; bundle_wait waits for it to empty.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "bundle.h"
#include "ctx.h"
#include "timer.h"

struct dill_bundle {
    struct dill_hvfs vfs;
    struct dill_queue members; /* running coroutines, in launch order */
    struct dill_queue waiters; /* bundle_wait callers */
    uint8_t in_caller_memory;
};

/* A go_mem buffer or a bundle_storage may start at any address. */
_Static_assert(sizeof(struct dill_bundle) + _Alignof(struct dill_bundle) - 1
    <= sizeof(struct dill_bundle_storage), "bundle does not fit its storage");

struct bundle_waiter {
    struct dill_clause cl;
    struct dill_qitem item;
    struct dill_bundle *bundle;
};

/* Unused heap bundles kept per thread, so go() does not call malloc. */
#define BUNDLE_CACHE 64

struct cached_bundle {
    struct cached_bundle *next;
};

/* NULL with errno: ENOMEM, or why the thread's context cannot be made. */
static struct dill_bundle *bundle_alloc(void) {
    struct dill_ctx *ctx = dill_ctx();
    if(!ctx) return NULL;
    struct cached_bundle *c = ctx->free_bundles;
    if(c) {
        ctx->free_bundles = c->next;
        ctx->nfree_bundles--;
        return (struct dill_bundle *)c;
    }
    struct dill_bundle *b = dill_malloc(sizeof(struct dill_bundle));
    if(!b) errno = ENOMEM;
    return b;
}

static void bundle_free(struct dill_bundle *b) {
    struct dill_ctx *ctx = dill_ctx_made();
    if(ctx->nfree_bundles >= BUNDLE_CACHE) {
        free(b);
        return;
    }
    struct cached_bundle *c = (struct cached_bundle *)b;
    c->next = ctx->free_bundles;
    ctx->free_bundles = c;
    ctx->nfree_bundles++;
}

void dill_bundles_term(struct dill_ctx *ctx) {
    while(ctx->free_bundles) {
        struct cached_bundle *c = ctx->free_bundles;
        ctx->free_bundles = c->next;
        free(c);
    }
    ctx->nfree_bundles = 0;
}

static const int bundle_type_id;
static const void *bundle_type = &bundle_type_id;

static void *bundle_query(struct dill_hvfs *vfs, const void *type) {
    if(type == bundle_type) return dill_cont(vfs, struct dill_bundle, vfs);
    errno = ENOTSUP;
    return NULL;
}

static void wake_waiters(struct dill_bundle *b) {
    struct dill_qitem *it;
    while((it = dill_queue_pop(&b->waiters)))
        dill_trigger(&dill_cont(it, struct bundle_waiter, item)->cl, 0);
}

static void bundle_close(struct dill_hvfs *vfs) {
    struct dill_bundle *b = dill_cont(vfs, struct dill_bundle, vfs);
    struct dill_cr *self = dill_running();
    struct dill_qitem *it;
    while((it = b->members.first)) {
        struct dill_cr *cr = dill_cont(it, struct dill_cr, member);
        if(cr == self) {
            fprintf(stderr, "libdill: a coroutine closed the bundle it "
                "belongs to (started at %s:%d); this cannot complete\n",
                cr->file, cr->line);
            abort();
        }
        dill_cr_cancel(cr);
        dill_cr_join(cr);
        dill_queue_remove(&b->members, it);
        dill_cr_release(cr);
        dill_stack_settle(&dill_ctx_made()->stacks);
    }
    wake_waiters(b);
    if(!b->in_caller_memory) bundle_free(b);
}

int dill_bundle_new(void *mem) {
    struct dill_bundle *b;
    if(mem) {
        uintptr_t at = ((uintptr_t)mem + _Alignof(struct dill_bundle) - 1) &
            ~(uintptr_t)(_Alignof(struct dill_bundle) - 1);
        b = (struct dill_bundle *)at;
    } else {
        b = bundle_alloc();
        if(!b) return -1;
    }
    b->vfs.query = bundle_query;
    b->vfs.close = bundle_close;
    dill_queue_init(&b->members);
    dill_queue_init(&b->waiters);
    b->in_caller_memory = mem != NULL;
    int h = dill_hmake(&b->vfs);
    if(h < 0 && !mem) {
        int err = errno;
        bundle_free(b);
        errno = err;
    }
    return h;
}

struct dill_bundle *dill_bundle_get(int h) {
    return dill_hquery(h, bundle_type);
}

void dill_bundle_add(struct dill_bundle *b, struct dill_cr *cr) {
    cr->bundle = b;
    dill_queue_push(&b->members, &cr->member);
}

void dill_bundle_retire(struct dill_cr *cr) {
    struct dill_bundle *b = cr->bundle;
    dill_queue_remove(&b->members, &cr->member);
    if(dill_queue_empty(&b->members)) wake_waiters(b);
}

DILL_EXPORT int dill_bundle(void) {
    return dill_bundle_new(NULL);
}

DILL_EXPORT int dill_bundle_mem(struct dill_bundle_storage *mem) {
    if(!mem) {
        errno = EINVAL;
        return -1;
    }
    return dill_bundle_new(mem);
}

static void withdraw_waiter(struct dill_clause *cl) {
    struct bundle_waiter *w = dill_cont(cl, struct bundle_waiter, cl);
    dill_queue_remove(&w->bundle->waiters, &w->item);
}

DILL_EXPORT int dill_bundle_wait(int h, int64_t deadline) {
    if(!dill_may_block_now()) return -1;
    struct dill_bundle *b = dill_bundle_get(h);
    if(!b) return -1;
    if(dill_queue_empty(&b->members)) return 0;
    struct dill_tmclause tc;
    if(dill_timer_waitfor(&tc, deadline) < 0) return -1;
    struct bundle_waiter w = {.bundle = b};
    dill_queue_push(&b->waiters, &w.item);
    dill_waitfor(&w.cl, 0, withdraw_waiter);
    dill_wait();
    return errno ? -1 : 0;
}
