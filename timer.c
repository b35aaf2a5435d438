/*
 * timer.c: the deadlines of waiting coroutines, in a binary min-heap keyed
 * by (deadline, registration sequence) so that equal deadlines fire in the
 * order they were set. Each timer clause knows its heap index, which makes
 * withdrawing a timer (the wait ended another way) O(log n).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "ctx.h"
#include "timer.h"

static int earlier(const struct dill_timer_entry *a,
      const struct dill_timer_entry *b) {
    if(a->deadline != b->deadline) return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void place(struct dill_timers *t, size_t i,
      const struct dill_timer_entry *e) {
    t->heap[i] = *e;
    e->tc->index = i;
}

static void sift_up(struct dill_timers *t, size_t i) {
    struct dill_timer_entry e = t->heap[i];
    while(i > 0) {
        size_t parent = (i - 1) / 2;
        if(!earlier(&e, &t->heap[parent])) break;
        place(t, i, &t->heap[parent]);
        i = parent;
    }
    place(t, i, &e);
}

static void sift_down(struct dill_timers *t, size_t i) {
    struct dill_timer_entry e = t->heap[i];
    for(;;) {
        size_t child = 2 * i + 1;
        if(child >= t->count) break;
        if(child + 1 < t->count &&
              earlier(&t->heap[child + 1], &t->heap[child]))
            child++;
        if(!earlier(&t->heap[child], &e)) break;
        place(t, i, &t->heap[child]);
        i = child;
    }
    place(t, i, &e);
}

static void heap_remove(struct dill_timers *t, size_t i) {
    t->count--;
    if(i == t->count) return;
    place(t, i, &t->heap[t->count]);
    /* The moved entry may belong above or below its new place. */
    if(i > 0 && earlier(&t->heap[i], &t->heap[(i - 1) / 2])) sift_up(t, i);
    else sift_down(t, i);
}

static int heap_insert(struct dill_timers *t, struct dill_tmclause *tc,
      int64_t deadline) {
    if(t->count == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 64;
        struct dill_timer_entry *heap =
            realloc(t->heap, capacity * sizeof(struct dill_timer_entry));
        if(!heap) {
            errno = ENOMEM;
            return -1;
        }
        t->heap = heap;
        t->capacity = capacity;
    }
    struct dill_timer_entry e = {deadline, t->seq++, tc};
    place(t, t->count, &e);
    t->count++;
    sift_up(t, t->count - 1);
    return 0;
}

static void withdraw_timer(struct dill_clause *cl) {
    struct dill_tmclause *tc = dill_cont(cl, struct dill_tmclause, cl);
    heap_remove(&dill_ctx()->timers, tc->index);
}

int dill_timer_waitfor(struct dill_tmclause *tc, int64_t deadline) {
    if(deadline < 0) return 0;
    if(heap_insert(&dill_ctx()->timers, tc, deadline) < 0) return -1;
    dill_waitfor(&tc->cl, -1, withdraw_timer);
    return 0;
}

int64_t dill_timer_next(struct dill_timers *t) {
    return t->count ? t->heap[0].deadline : -1;
}

int dill_timer_fire(struct dill_timers *t, int64_t now) {
    int fired = 0;
    while(t->count && t->heap[0].deadline <= now) {
        struct dill_tmclause *tc = t->heap[0].tc;
        heap_remove(t, 0);
        dill_trigger(&tc->cl, ETIMEDOUT);
        fired++;
    }
    return fired;
}

void dill_timers_term(struct dill_timers *t) {
    free(t->heap);
    t->heap = NULL;
    t->count = 0;
    t->capacity = 0;
}
