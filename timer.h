/*
 * timer.h: deadlines. Waiting coroutines' timer clauses sit in a binary
 * min-heap ordered by (deadline, registration order): O(log n) insert and
 * removal, O(1) look at the earliest.
 */
#ifndef DILL_TIMER_H_INCLUDED
#define DILL_TIMER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "cr.h"

struct dill_tmclause {
    struct dill_clause cl;
    size_t index; /* position in the heap */
};

/* A heap entry carries its key, so sifting never touches the clauses,
   which live on many different coroutine stacks. */
struct dill_timer_entry {
    int64_t deadline;
    uint64_t seq;
    struct dill_tmclause *tc;
};

struct dill_timers {
    struct dill_timer_entry *heap;
    size_t count;
    size_t capacity;
    uint64_t seq;
};

/* Make deadline one clause of the running coroutine's coming wait.
   Negative deadlines register nothing. 0 or -1/ENOMEM. */
int dill_timer_waitfor(struct dill_tmclause *tc, int64_t deadline);

/* Earliest deadline, or -1 when no timer is set. */
int64_t dill_timer_next(struct dill_timers *t);

/* Fire every timer due at time now; returns how many fired. */
int dill_timer_fire(struct dill_timers *t, int64_t now);

void dill_timers_term(struct dill_timers *t);

#endif
