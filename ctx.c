/*
 * ctx.c: the per-thread context. The first libdill call in a thread
 * creates it; a thread-specific-data destructor tears it down when the
 * thread exits, and an atexit handler does so for the thread that calls
 * exit(). Coroutines still alive then are abandoned, not run again.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined DILL_THREADS
#include <pthread.h>
#endif

#include "bundle.h"
#include "ctx.h"

#if defined DILL_THREADS
__thread struct dill_ctx *dill_ctx_current
    __attribute__((tls_model("initial-exec")));
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
#else
struct dill_ctx *dill_ctx_current;
static int ctx_once;
#endif

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

static void at_thread_exit(void *arg) {
    struct dill_ctx *ctx = arg;
    /* The context may already be gone if exit() ran in this thread. */
    if(ctx != dill_ctx_current) return;
    dill_ctx_current = NULL;
    ctx_term(ctx);
}

static void at_process_exit(void) {
    struct dill_ctx *ctx = dill_ctx_current;
    if(!ctx) return;
    dill_ctx_current = NULL;
#if defined DILL_THREADS
    pthread_setspecific(ctx_key, NULL);
#endif
    ctx_term(ctx);
}

static void ctx_setup_once(void) {
#if defined DILL_THREADS
    if(pthread_key_create(&ctx_key, at_thread_exit) != 0) {
        fprintf(stderr, "libdill: cannot create thread-specific key\n");
        abort();
    }
#endif
    atexit(at_process_exit);
}

/* Context creation cannot report errors: no libdill call could proceed
   without it, so a failure here ends the process with a message. */
struct dill_ctx *dill_ctx_create(void) {
#if defined DILL_THREADS
    pthread_once(&ctx_once, ctx_setup_once);
#else
    if(!ctx_once) {
        ctx_once = 1;
        ctx_setup_once();
    }
#endif
    struct dill_ctx *ctx = calloc(1, sizeof(struct dill_ctx));
    if(!ctx || dill_fds_init(&ctx->fds) < 0) {
        fprintf(stderr, "libdill: cannot create the thread context: %s\n",
            strerror(errno));
        abort();
    }
    ctx->main.state = DILL_RUNNING;
    /* The thread's own stack has no canary to check. */
    ctx->main.stack.kind = DILL_STACK_GUARDED;
    ctx->running = &ctx->main;
    ctx->handles.first_free = -1;
    ctx->handles.last_free = -1;
    ctx->last_poll = 0;
    dill_ctx_current = ctx;
#if defined DILL_THREADS
    pthread_setspecific(ctx_key, ctx);
#endif
    return ctx;
}
