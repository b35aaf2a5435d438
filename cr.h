/*
 * cr.h: coroutines and the scheduler. A blocking call registers clauses
 * (channel queue entries, a timer, an fd interest) with dill_waitfor, then
 * suspends in dill_wait. The first clause to fire wins: dill_trigger
 * withdraws every other clause of the wait and queues the coroutine.
 */
#ifndef DILL_CR_H_INCLUDED
#define DILL_CR_H_INCLUDED

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>

#include "stack.h"
#include "switch_regs.h"
#include "utils.h"

struct dill_cr;
struct dill_bundle;

/* One way a wait can end. Lives on the waiting coroutine's stack. */
struct dill_clause {
    struct dill_cr *cr;
    struct dill_clause *next; /* the other clauses of the same wait */
    /* Take the clause out of whatever structure holds it. */
    void (*withdraw)(struct dill_clause *cl);
    int id;
};

enum dill_cr_state {
    DILL_RUNNING,
    DILL_READY,
    DILL_BLOCKED,
    DILL_CLOSING,   /* in hclose, waiting for a child: not interruptible */
    DILL_FINISHED
};


/* A coroutine's record. For launched coroutines it sits at the top of the
   coroutine's own stack; the main coroutine's is in the thread context. */
struct dill_cr {
    dill_regs regs;                /* while suspended (switch_regs.h) */
    struct dill_cr *ready_next;    /* ready queue link */
    struct dill_clause *clauses;   /* registered clauses while blocked */
    int result_id;
    int result_err;
    uint8_t state;
    uint8_t cancelled;   /* its bundle is being closed */
    uint8_t no_blocking; /* inside a close callback */
    struct dill_bundle *bundle;
    struct dill_qitem member;      /* position in the bundle */
    struct dill_cr *closer;        /* who waits in hclose for us to end */
    struct dill_stack stack;
    const char *file;              /* where go() was called */
    int line;
#if defined DILL_ASAN
    void *asan_fake;               /* ASan's fake stack while suspended */
    uint8_t asan_pending;          /* resumed outside dill_switch */
    char *asan_launch_sp;          /* its stack pointer at its last go() */
#endif
};

/* Whether the running coroutine may block; sets ECANCELED if not. */
static inline int dill_may_block(struct dill_cr *cr) {
    if(dill_unlikely(cr->cancelled | cr->no_blocking)) {
        errno = ECANCELED;
        return 0;
    }
    return 1;
}

/* The same for whatever runs now, at the start of a public function that
   may be the thread's first call: 0 with ENOMEM (or the poller's errno)
   when the thread's context cannot be made. */
int dill_may_block_now(void);

/* Register a clause of the coming wait of cr, the running coroutine. */
static inline void dill_waitfor_cr(struct dill_cr *cr, struct dill_clause *cl,
      int id, void (*withdraw)(struct dill_clause *cl)) {
    cl->cr = cr;
    cl->id = id;
    cl->withdraw = withdraw;
    cl->next = cr->clauses;
    cr->clauses = cl;
}

/* The same, for whatever runs now. */
void dill_waitfor(struct dill_clause *cl, int id,
    void (*withdraw)(struct dill_clause *cl));

/* Suspend until a clause fires (or cancellation). Returns the clause id
   (-1 for a timeout or cancellation) and sets errno to the result. */
int dill_wait(void);

/* The same, for a wait whose clause ids do not matter: returns the result
   (0, or the errno it also sets), which a caller tests without reading
   errno back, a call where errno is thread-local in a shared library. */
int dill_wait_err(void);

/* End the wait of cl->cr with this clause: withdraw its other clauses and
   queue it with (cl->id, err). The caller has already removed cl. */
void dill_trigger(struct dill_clause *cl, int err);

/* Mark a coroutine cancelled; interrupt its wait with ECANCELED. */
void dill_cr_cancel(struct dill_cr *cr);

/* Suspend the running coroutine, in hclose, until cr has finished. */
void dill_cr_join(struct dill_cr *cr);

/* Release the stack of a finished coroutine. */
void dill_cr_release(struct dill_cr *cr);

/* Before the thread's context goes away: under ASan, finish the switch a
   launcher resumed by go()'s own code still owes, so the sanitizer stops
   pointing at a coroutine stack that is about to be unmapped. */
struct dill_ctx;
void dill_cr_term(struct dill_ctx *ctx);

/* The running coroutine of a thread that has a context already. */
struct dill_cr *dill_running(void);

#endif
