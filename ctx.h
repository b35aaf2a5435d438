/*
 * ctx.h: everything one thread's libdill owns: the scheduler (running
 * coroutine, ready queue, timers), the handle table, the stack cache and
 * the fd waiters with their poller. Created lazily by the thread's first
 * libdill call that needs it, torn down at thread exit. Creating it can
 * fail (no memory, no descriptor for the poller): that call fails, with
 * ENOMEM or the poller's errno, and a later one tries again.
 */
#ifndef DILL_CTX_H_INCLUDED
#define DILL_CTX_H_INCLUDED

#include <stdint.h>

#include "census.h"
#include "cr.h"
#include "fd.h"
#include "handle.h"
#include "stack.h"
#include "timer.h"
#include "utils.h"

struct dill_ctx {
    struct dill_cr *running;
    struct dill_cr *ready_first; /* FIFO through dill_cr.ready_next */
    struct dill_cr *ready_last;
    int64_t last_poll;
    unsigned passes;  /* scheduler passes since the clock was last read */
    int *errno_at;    /* this thread's errno: a load, where errno is a call */
    struct dill_timers timers;
    struct dill_handles handles;
    struct dill_stacks stacks;
    struct dill_fds fds;
    void *free_bundles; /* bundle.c's cache of unused bundle objects */
    int nfree_bundles;
    struct dill_census_site *census; /* --enable-census only */
    struct dill_cr main; /* the thread's own stack */
#if defined DILL_ASAN
    const void *main_bottom; /* its bounds, for ASan's fiber switches */
    size_t main_size;
#endif
};

/* Make this thread's context: NULL and errno when it cannot be made. */
struct dill_ctx *dill_ctx_create(void);

#if defined DILL_THREADS
extern __thread struct dill_ctx *dill_ctx_current
    __attribute__((tls_model("initial-exec")));
#else
extern struct dill_ctx *dill_ctx_current;
#endif

/* This thread's context, created on first use: NULL with errno (ENOMEM,
   or EMFILE/ENFILE for the poller's descriptor) when it cannot be made.
   The public functions that may come first in a thread use this one. */
static inline struct dill_ctx *dill_ctx(void) {
    struct dill_ctx *ctx = dill_ctx_current;
    if(dill_likely(ctx)) return ctx;
    return dill_ctx_create();
}

/* The context of a thread known to have one: code that runs only once a
   handle exists, a coroutine was launched or a clause was registered. */
static inline struct dill_ctx *dill_ctx_made(void) {
    return dill_ctx_current;
}

/* hquery for the hot paths (bsend, brecv, msend, mrecv, chsend, chrecv):
   the cached answer inline, else the call. */
static inline void *dill_hquery_fast(int h, const void *type) {
    struct dill_ctx *ctx = dill_ctx_current;
    if(dill_likely(ctx)) {
        void *ptr = dill_handle_cached(&ctx->handles, h, type);
        if(dill_likely(ptr != NULL)) return ptr;
    }
    return dill_hquery(h, type);
}

#endif
