/*
 * ctx.c: the per-thread context. The first libdill call in a thread
 * that needs it creates it; a thread-specific-data destructor tears it
 * down when the thread exits, and an atexit handler does so for the thread
 * that calls exit(). Coroutines still alive then are abandoned, not run
 * again. A context that cannot be made (no memory, no descriptor for the
 * poller) fails the call that wanted it; the next call tries again.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#if defined DILL_THREADS
#include <pthread.h>
#endif

#include "alloc.h"
#include "bundle.h"
#include "ctx.h"

#if defined DILL_THREADS
__thread struct dill_ctx *dill_ctx_current
    __attribute__((tls_model("initial-exec")));
static pthread_key_t ctx_key;
static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
#else
struct dill_ctx *dill_ctx_current;
#endif
/* The process-wide steps below are done once, but a step that failed is
   tried again by the next context creation. */
static int key_made;
static int exit_handler_set;
static int setup_done;

static void ctx_term(struct dill_ctx *ctx) {
    dill_cr_term(ctx);
    dill_census_report(&ctx->census);
    dill_fds_term(&ctx->fds);
    dill_timers_term(&ctx->timers);
    dill_handles_term(&ctx->handles);
    dill_stacks_term(&ctx->stacks);
    dill_bundles_term(ctx);
    free(ctx);
}

#if defined DILL_THREADS
static void at_thread_exit(void *arg) {
    struct dill_ctx *ctx = arg;
    /* The context may already be gone if exit() ran in this thread. */
    if(ctx != dill_ctx_current) return;
    dill_ctx_current = NULL;
    ctx_term(ctx);
}
#endif

static void at_process_exit(void) {
    struct dill_ctx *ctx = dill_ctx_current;
    if(!ctx) return;
    dill_ctx_current = NULL;
#if defined DILL_THREADS
    pthread_setspecific(ctx_key, NULL);
#endif
    ctx_term(ctx);
}

/* The thread-exit key and the process-exit handler. Both fail only for
   lack of memory (EAGAIN from pthread_key_create: no key left). */
static int setup_steps(void) {
#if defined DILL_THREADS
    if(!key_made) {
        if(pthread_key_create(&ctx_key, at_thread_exit) != 0) return -1;
        key_made = 1;
    }
#else
    key_made = 1;
#endif
    if(!exit_handler_set) {
        if(atexit(at_process_exit) != 0) return -1;
        exit_handler_set = 1;
    }
    return 0;
}

static int setup_process(void) {
    if(dill_likely(__atomic_load_n(&setup_done, __ATOMIC_ACQUIRE))) return 0;
#if defined DILL_THREADS
    pthread_mutex_lock(&setup_lock);
#endif
    int rc = setup_done ? 0 : setup_steps();
    if(rc == 0) __atomic_store_n(&setup_done, 1, __ATOMIC_RELEASE);
#if defined DILL_THREADS
    pthread_mutex_unlock(&setup_lock);
#endif
    if(rc < 0) errno = ENOMEM;
    return rc;
}

static void ctx_init(struct dill_ctx *ctx) {
    ctx->main.state = DILL_RUNNING;
    /* The thread's own stack has no canary to check. */
    ctx->main.stack.kind = DILL_STACK_GUARDED;
    ctx->running = &ctx->main;
    ctx->errno_at = &errno;
    ctx->handles.first_free = -1;
    ctx->handles.last_free = -1;
    ctx->last_poll = 0;
}

/* Nothing is left behind when a step fails: the next call starts anew. */
struct dill_ctx *dill_ctx_create(void) {
    if(setup_process() < 0) return NULL;
    struct dill_ctx *ctx = dill_calloc(1, sizeof(struct dill_ctx));
    if(!ctx) {
        errno = ENOMEM;
        return NULL;
    }
    if(dill_fds_init(&ctx->fds) < 0) {
        int err = errno;
        free(ctx);
        errno = err;
        return NULL;
    }
#if defined DILL_THREADS
    if(pthread_setspecific(ctx_key, ctx) != 0) {
        dill_fds_term(&ctx->fds);
        free(ctx);
        errno = ENOMEM;
        return NULL;
    }
#endif
    ctx_init(ctx);
    dill_ctx_current = ctx;
    return ctx;
}
