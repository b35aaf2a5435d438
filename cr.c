/*
 * cr.c: the scheduler and the coroutine life cycle: the launch protocol
 * (dill_prologue / dill_epilogue), suspension and wake-up, cancellation,
 * yield and msleep. The only file that switches stacks.
 *
 * A scheduler pass runs on the stack of the coroutine that suspends: it
 * polls for fds and timers when nothing is ready (or once a second while
 * coroutines keep each other busy), then switches to the head of the FIFO
 * ready queue.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "ctx.h"
#include "now.h"
#include "timer.h"

#include "switch.h"

#if defined DILL_ASAN
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

DILL_EXPORT volatile void *dill_unoptimisable = NULL;

/* ---- Ready queue ------------------------------------------------------ */

static inline void ready_push(struct dill_ctx *ctx, struct dill_cr *cr) {
    cr->state = DILL_READY;
    cr->ready_next = NULL;
    if(ctx->ready_last) ctx->ready_last->ready_next = cr;
    else ctx->ready_first = cr;
    ctx->ready_last = cr;
}

static inline struct dill_cr *ready_pop(struct dill_ctx *ctx) {
    struct dill_cr *cr = ctx->ready_first;
    ctx->ready_first = cr->ready_next;
    if(!ctx->ready_first) ctx->ready_last = NULL;
    return cr;
}

/* ---- AddressSanitizer annotations -------------------------------------- */

#if defined DILL_ASAN
static void stack_bounds(struct dill_ctx *ctx, struct dill_cr *cr,
      const void **bottom, size_t *size) {
    if(cr != &ctx->main) {
        *bottom = cr->stack.lo;
        *size = (size_t)(cr->stack.hi - cr->stack.lo);
        return;
    }
    if(!ctx->main_bottom) {
        /* Reading the thread's stack bounds parses /proc: do it once. */
        pthread_attr_t attr;
        void *addr = NULL;
        size_t len = 0;
        if(pthread_getattr_np(pthread_self(), &attr) == 0) {
            pthread_attr_getstack(&attr, &addr, &len);
            pthread_attr_destroy(&attr);
        }
        ctx->main_bottom = addr;
        ctx->main_size = len;
    }
    *bottom = ctx->main_bottom;
    *size = ctx->main_size;
}

/* go() moved the launcher's stack pointer with alloca, then jumped away;
   resuming at its saved stack pointer skips the unpoisoning ASan does when
   an alloca goes out of scope, so clear what lies just below. */
static void asan_unpoison_launcher(struct dill_cr *cr) {
    char *sp = dill_regs_macro_sp(&cr->regs);
    /* NULL: a sigjmp_buf, whose stack pointer glibc mangles. ASan's
       siglongjmp interceptor only clears the stack it leaves, so the
       launcher's is cleared here too, below its stack pointer as
       dill_prologue saw it. */
    if(!sp) sp = cr->asan_launch_sp;
    if(sp) ASAN_UNPOISON_MEMORY_REGION(sp - 4096, 4096);
}

/* A coroutine resumed by the launch macro's own code never passed through
   the end of dill_switch_regs: finish its switch on its next way out. */
static void asan_leave(struct dill_ctx *ctx, struct dill_cr *from,
      struct dill_cr *to, int finished) {
    if(from->asan_pending) {
        __sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
        from->asan_pending = 0;
    }
    const void *bottom;
    size_t size;
    stack_bounds(ctx, to, &bottom, &size);
    if(to->asan_pending) asan_unpoison_launcher(to);
    __sanitizer_start_switch_fiber(finished ? NULL : &from->asan_fake,
        bottom, size);
}

static void asan_arrive(struct dill_cr *cr) {
    __sanitizer_finish_switch_fiber(cr->asan_fake, NULL, NULL);
}
#else
static inline void asan_leave(struct dill_ctx *ctx, struct dill_cr *from,
      struct dill_cr *to, int finished) {
    (void)ctx; (void)from; (void)to; (void)finished;
}
static inline void asan_arrive(struct dill_cr *cr) { (void)cr; }
#endif

/* ---- The scheduler pass ------------------------------------------------ */

static int poll_timeout(struct dill_ctx *ctx) {
    if(!dill_timers_set(&ctx->timers)) return -1;
    int64_t next = dill_timer_next(&ctx->timers);
    if(next < 0) return -1;
    int64_t left = next - dill_now_ms();
    if(left <= 0) return 0;
    /* Far deadlines are clamped; the loop simply polls again. */
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

/* Poll fds and fire due timers. Blocks while nothing is ready. With no
   timer set the clock is not read at all: a server whose coroutines wait
   on sockets without deadlines pays for the poll and nothing else. */
DILL_HOT static void poll_events(struct dill_ctx *ctx) {
    for(;;) {
        int block = ctx->ready_first == NULL;
        dill_fds_poll(&ctx->fds, block ? poll_timeout(ctx) : 0);
        if(dill_timers_set(&ctx->timers)) {
            int64_t t = dill_now_ms();
            dill_timer_fire(&ctx->timers, t);
            ctx->last_poll = t;
        }
        if(ctx->ready_first) return;
    }
}

/* While coroutines keep each other busy, fds and timers are still looked
   at once a second. Reading the clock costs more than a switch, so it is
   read only every 64 passes. A poll that read no clock left last_poll
   behind: that only brings the next of these polls forward, once. */
static inline int poll_due(struct dill_ctx *ctx) {
    if(!ctx->ready_first) return 1;
    if(dill_likely(++ctx->passes & 63)) return 0;
    int64_t now = dill_now_ms();
    if(now - ctx->last_poll <= 1000) return 0;
    ctx->last_poll = now;
    return 1;
}

static inline struct dill_cr *next_ready(struct dill_ctx *ctx) {
    if(poll_due(ctx)) poll_events(ctx);
    return ready_pop(ctx);
}

static inline void check_canary(struct dill_ctx *ctx, struct dill_cr *cr) {
    /* Guarded stacks need no check (the main coroutine's counts as one). */
    if(dill_likely(cr->stack.kind == DILL_STACK_GUARDED)) return;
    if(!dill_stack_intact(&cr->stack))
        dill_stack_overflowed(cr->file, cr->line);
}

/* The running coroutine has queued or parked itself; run the next one.
   Returns when the running coroutine is resumed. Inlined into its callers
   (yield, dill_wait, dill_cr_join): a call and its frame cost a
   tenth of a switch. */
static inline __attribute__((always_inline)) void schedule(
      struct dill_ctx *ctx) {
    struct dill_cr *self = ctx->running;
    struct dill_cr *next = next_ready(ctx);
    next->state = DILL_RUNNING;
    if(next == self) return;
    check_canary(ctx, self);
    ctx->running = next;
    asan_leave(ctx, self, next, 0);
    dill_switch_regs(&self->regs, &next->regs);
    asan_arrive(self);
}

void dill_cr_term(struct dill_ctx *ctx) {
#if defined DILL_ASAN
    struct dill_cr *cr = ctx->running;
    if(cr->asan_pending) {
        __sanitizer_finish_switch_fiber(cr->asan_fake, NULL, NULL);
        cr->asan_pending = 0;
    }
#else
    (void)ctx;
#endif
}

/* ---- Waiting ------------------------------------------------------------ */

struct dill_cr *dill_running(void) {
    return dill_ctx_made()->running;
}

int dill_may_block_now(void) {
    struct dill_ctx *ctx = dill_ctx();
    if(dill_unlikely(!ctx)) return 0;
    return dill_may_block(ctx->running);
}

void dill_waitfor(struct dill_clause *cl, int id,
      void (*withdraw)(struct dill_clause *cl)) {
    dill_waitfor_cr(dill_ctx_made()->running, cl, id, withdraw);
}

DILL_HOT int dill_wait(void) {
    struct dill_ctx *ctx = dill_ctx_made();
    struct dill_cr *self = ctx->running;
    self->state = DILL_BLOCKED;
    schedule(ctx);
    *ctx->errno_at = self->result_err;
    return self->result_id;
}

DILL_HOT int dill_wait_err(void) {
    struct dill_ctx *ctx = dill_ctx_made();
    struct dill_cr *self = ctx->running;
    self->state = DILL_BLOCKED;
    schedule(ctx);
    int err = self->result_err;
    *ctx->errno_at = err;
    return err;
}

static void withdraw_all(struct dill_cr *cr, struct dill_clause *except) {
    for(struct dill_clause *cl = cr->clauses; cl; cl = cl->next)
        if(cl != except) cl->withdraw(cl);
    cr->clauses = NULL;
}

DILL_HOT void dill_trigger(struct dill_clause *cl, int err) {
    struct dill_cr *cr = cl->cr;
    withdraw_all(cr, cl);
    cr->result_id = cl->id;
    cr->result_err = err;
    ready_push(dill_ctx_made(), cr);
}

void dill_cr_cancel(struct dill_cr *cr) {
    cr->cancelled = 1;
    /* Ready coroutines keep their result; a closer finishes its hclose. */
    if(cr->state != DILL_BLOCKED) return;
    withdraw_all(cr, NULL);
    cr->result_id = -1;
    cr->result_err = ECANCELED;
    ready_push(dill_ctx_made(), cr);
}

void dill_cr_join(struct dill_cr *cr) {
    struct dill_ctx *ctx = dill_ctx_made();
    cr->closer = ctx->running;
    ctx->running->state = DILL_CLOSING;
    schedule(ctx);
}

void dill_cr_release(struct dill_cr *cr) {
    struct dill_ctx *ctx = dill_ctx_made();
    dill_census_measure(&ctx->census, cr);
    struct dill_stack st = cr->stack;
    dill_stack_put(&ctx->stacks, &st);
}

/* ---- The launch protocol ---------------------------------------------- */

/* Carve the coroutine's record from the top of its stack. */
static struct dill_cr *place_record(struct dill_stack *st) {
    uintptr_t top = (uintptr_t)st->hi - sizeof(struct dill_cr);
    struct dill_cr *cr = (struct dill_cr *)(top & ~(uintptr_t)15);
    /* regs are written by the launching macro; the rest starts clean. */
    cr->ready_next = NULL;
    cr->clauses = NULL;
    cr->result_id = 0;
    cr->result_err = 0;
    cr->cancelled = 0;
    cr->no_blocking = 0;
    cr->closer = NULL;
    cr->stack = *st;
#if defined DILL_ASAN
    cr->asan_fake = NULL;
    cr->asan_pending = 0;
#endif
    return cr;
}

static int get_stack(struct dill_ctx *ctx, struct dill_stack *st, char *mem,
      size_t len) {
    if(mem)
        return dill_stack_from_mem(st, mem, len, sizeof(struct dill_cr) + 15);
    return dill_stack_get(&ctx->stacks, st);
}

DILL_EXPORT int dill_prologue(sigjmp_buf **jb, void **ptr, size_t len,
      int bndl, const char *file, int line) {
    struct dill_ctx *ctx = dill_ctx();
    if(dill_unlikely(!ctx)) return -1;
    struct dill_cr *self = ctx->running;
    if(!dill_may_block(self)) return -1;
    char *mem = *ptr;
    int created = -1;
    if(bndl < 0) {
        /* go_mem: the bundle takes the first 64 bytes of the buffer. */
        if(mem && len < DILL_BUNDLE_AREA) {
            errno = ENOMEM;
            return -1;
        }
        created = dill_bundle_new(mem);
        if(created < 0) return -1;
        if(mem) {
            mem += DILL_BUNDLE_AREA;
            len -= DILL_BUNDLE_AREA;
        }
        bndl = created;
    }
    struct dill_bundle *b = dill_bundle_get(bndl);
    struct dill_stack st;
    if(!b || get_stack(ctx, &st, mem, len) < 0) {
        int err = errno;
        if(created >= 0) dill_hclose(created);
        errno = err;
        return -1;
    }
    struct dill_cr *cr = place_record(&st);
    cr->file = file;
    cr->line = line;
    cr->state = DILL_RUNNING;
    dill_census_paint(&cr->stack, cr);
    dill_bundle_add(b, cr);
    check_canary(ctx, self);
    ready_push(ctx, self);
    ctx->running = cr;
#if defined DILL_ASAN
    asan_leave(ctx, self, cr, 0);
    /* The caller's stack pointer, where go()'s alloca starts. */
    self->asan_launch_sp = __builtin_dwarf_cfa();
    self->asan_pending = 1;
    cr->asan_pending = 1;
#endif
    /* The caller saves itself here, then starts running on the new stack
       right below the record. */
    *jb = dill_regs_for_macro(&self->regs);
    *ptr = cr;
    return created >= 0 ? created : 0;
}

DILL_EXPORT void dill_epilogue(void) {
    struct dill_ctx *ctx = dill_ctx_made();
    struct dill_cr *cr = ctx->running;
    check_canary(ctx, cr);
    cr->state = DILL_FINISHED;
    if(cr->closer) {
        /* hclose is waiting for us: it retires us and frees the stack. */
        ready_push(ctx, cr->closer);
    } else {
        dill_bundle_retire(cr);
        /* Into the cache only: nothing reuses it before we switch away. */
        dill_cr_release(cr);
    }
    struct dill_cr *next = next_ready(ctx);
    next->state = DILL_RUNNING;
    ctx->running = next;
    asan_leave(ctx, cr, next, 1);
    dill_stack_settle(&ctx->stacks);
    dill_jump_regs(&next->regs);
}

/* ---- yield and msleep -------------------------------------------------- */

DILL_HOT DILL_EXPORT int dill_yield(void) {
    struct dill_ctx *ctx = dill_ctx();
    if(dill_unlikely(!ctx) || !dill_may_block(ctx->running)) return -1;
    ready_push(ctx, ctx->running);
    schedule(ctx);
    *ctx->errno_at = 0;
    return 0;
}

DILL_EXPORT int dill_msleep(int64_t deadline) {
    struct dill_ctx *ctx = dill_ctx();
    if(dill_unlikely(!ctx) || !dill_may_block(ctx->running)) return -1;
    struct dill_tmclause tc;
    if(dill_timer_waitfor(&tc, deadline) < 0) return -1;
    dill_wait();
    /* Reaching the deadline is success (errno stays ETIMEDOUT). */
    return errno == ECANCELED ? -1 : 0;
}
