/*
 * timer.h: deadlines. A deadline in the next DILL_WHEEL milliseconds goes
 * into a wheel, one FIFO array per millisecond: O(1) to set, withdraw and
 * fire. Farther deadlines wait in a binary min-heap ordered by (deadline,
 * registration order). Either way timers fire in deadline order, and equal
 * deadlines in the order they were set.
 */
#ifndef DILL_TIMER_H_INCLUDED
#define DILL_TIMER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "cr.h"

#define DILL_WHEEL 1024

struct dill_tmclause {
    struct dill_clause cl;
    int64_t deadline;
    uint32_t pos;     /* its index in its wheel list's items */
    uint32_t slot;    /* its entry in dill_timers.where, in the heap */
    uint8_t in_wheel;
};

/* A heap entry carries its key, so sifting never touches the clauses,
   which live on many different coroutine stacks; their heap positions are
   kept in one dense array instead (where), indexed by slot. */
struct dill_timer_entry {
    int64_t deadline;
    struct dill_tmclause *tc;
    uint32_t seq;  /* registration order, compared modulo 2^32 */
    uint32_t slot;
};

/* The timers of one millisecond, in the order they were set. An array of
   pointers rather than a list through the clauses: the clauses live on
   as many coroutine stacks, and linking a new one to the last would touch
   that one's stack page; firing reads the pointers in a row and fetches
   the clauses ahead. A withdrawn timer leaves a NULL, and the array
   starts again from 0 when no timer is left in it. */
struct dill_wheel_list {
    struct dill_tmclause **items;
    uint32_t len;   /* items used, NULLs included */
    uint32_t live;  /* items not NULL */
    uint32_t cap;
};

struct dill_timers {
    struct dill_timer_entry *heap;
    uint32_t *where;     /* heap position per slot; free slots chained */
    uint32_t count;
    uint32_t capacity;
    uint32_t free_slot;  /* head of the free slots, or capacity */
    uint32_t seq;
    /* The wheel holds the deadlines in [base, base + DILL_WHEEL): every
       earlier one has fired. List d % DILL_WHEEL is that of deadline d.
       Firing moves base up to the clock; while no timer is set nothing
       fires, and base may fall behind until the next one is set. */
    int64_t base;
    uint32_t in_wheel;              /* timers in the wheel */
    uint64_t busy[DILL_WHEEL / 64]; /* which lists are not empty */
    struct dill_wheel_list lists[DILL_WHEEL];
};

/* Make deadline one clause of the running coroutine's coming wait (the
   thread has a context by then). Negative deadlines register nothing. 0
   or -1/ENOMEM. */
int dill_timer_set(struct dill_tmclause *tc, int64_t deadline);
static inline int dill_timer_waitfor(struct dill_tmclause *tc,
      int64_t deadline) {
    return deadline < 0 ? 0 : dill_timer_set(tc, deadline);
}

/* Whether any timer is set. */
static inline int dill_timers_set(const struct dill_timers *t) {
    return t->in_wheel != 0 || t->count != 0;
}

/* Earliest deadline, or -1 when no timer is set. */
int64_t dill_timer_next(struct dill_timers *t);

/* Fire every timer due at time now; returns how many fired. */
int dill_timer_fire(struct dill_timers *t, int64_t now);

void dill_timers_term(struct dill_timers *t);

#endif
