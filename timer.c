/*
 * timer.c: the deadlines of waiting coroutines. Near ones (the common
 * case: a deadline a few ms to a second ahead) go into the wheel, far ones
 * into a binary min-heap keyed by (deadline, registration sequence). A heap
 * timer was always set before any wheel timer of the same deadline (it was
 * far when set), so firing the heap's timers of a millisecond before the
 * wheel's keeps equal deadlines in the order they were set.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "alloc.h"
#include "ctx.h"
#include "now.h"
#include "timer.h"

static int earlier(const struct dill_timer_entry *a,
      const struct dill_timer_entry *b) {
    if(a->deadline != b->deadline) return a->deadline < b->deadline;
    return (int32_t)(a->seq - b->seq) < 0;
}

static void place(struct dill_timers *t, uint32_t i,
      const struct dill_timer_entry *e) {
    t->heap[i] = *e;
    t->where[e->slot] = i;
}

static void sift_up(struct dill_timers *t, uint32_t i) {
    struct dill_timer_entry e = t->heap[i];
    while(i > 0) {
        uint32_t parent = (i - 1) / 2;
        if(!earlier(&e, &t->heap[parent])) break;
        place(t, i, &t->heap[parent]);
        i = parent;
    }
    place(t, i, &e);
}

static void sift_down(struct dill_timers *t, uint32_t i) {
    struct dill_timer_entry e = t->heap[i];
    for(;;) {
        uint32_t child = 2 * i + 1;
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

static void heap_remove(struct dill_timers *t, uint32_t i) {
    /* Its slot goes back to the free chain. */
    uint32_t slot = t->heap[i].slot;
    t->where[slot] = t->free_slot;
    t->free_slot = slot;
    t->count--;
    if(i == t->count) return;
    place(t, i, &t->heap[t->count]);
    /* The moved entry may belong above or below its new place. */
    if(i > 0 && earlier(&t->heap[i], &t->heap[(i - 1) / 2])) sift_up(t, i);
    else sift_down(t, i);
}

/* Room for one more timer: both arrays grow together, and the new slots
   join the free chain. */
static int grow(struct dill_timers *t) {
    uint32_t capacity = t->capacity ? t->capacity * 2 : 64;
    if(capacity < t->capacity) {
        errno = ENOMEM;
        return -1;
    }
    struct dill_timer_entry *heap =
        dill_realloc(t->heap, capacity * sizeof(struct dill_timer_entry));
    if(!heap) goto nomem;
    t->heap = heap;
    uint32_t *where = dill_realloc(t->where, capacity * sizeof(uint32_t));
    if(!where) goto nomem;
    t->where = where;
    for(uint32_t k = t->capacity; k < capacity; k++) where[k] = k + 1;
    t->free_slot = t->capacity;
    t->capacity = capacity;
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

static int heap_insert(struct dill_timers *t, struct dill_tmclause *tc,
      int64_t deadline) {
    if(t->count == t->capacity && grow(t) < 0) return -1;
    uint32_t slot = t->free_slot;
    t->free_slot = t->where[slot];
    tc->slot = slot;
    struct dill_timer_entry e = {deadline, tc, t->seq++, slot};
    place(t, t->count, &e);
    t->count++;
    sift_up(t, t->count - 1);
    return 0;
}

/* ---- The wheel ------------------------------------------------------------ */

static struct dill_wheel_list *list_of(struct dill_timers *t, int64_t d) {
    return &t->lists[d & (DILL_WHEEL - 1)];
}

static void set_busy(struct dill_timers *t, int64_t d, int busy) {
    unsigned i = (unsigned)(d & (DILL_WHEEL - 1));
    uint64_t bit = (uint64_t)1 << (i % 64);
    if(busy) t->busy[i / 64] |= bit;
    else t->busy[i / 64] &= ~bit;
}

static int wheel_add(struct dill_timers *t, struct dill_tmclause *tc) {
    struct dill_wheel_list *l = list_of(t, tc->deadline);
    if(l->len == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        struct dill_tmclause **items = cap > l->cap ?
            dill_realloc(l->items, cap * sizeof(struct dill_tmclause *)) : NULL;
        if(!items) {
            errno = ENOMEM;
            return -1;
        }
        l->items = items;
        l->cap = cap;
    }
    tc->in_wheel = 1;
    t->in_wheel++;
    tc->pos = l->len;
    l->items[l->len++] = tc;
    if(l->live++ == 0) set_busy(t, tc->deadline, 1);
    return 0;
}

static void wheel_remove(struct dill_timers *t, struct dill_tmclause *tc) {
    struct dill_wheel_list *l = list_of(t, tc->deadline);
    l->items[tc->pos] = NULL;
    tc->in_wheel = 0;
    t->in_wheel--;
    if(--l->live == 0) {
        l->len = 0;
        set_busy(t, tc->deadline, 0);
    }
}

static int64_t deadline_at(const struct dill_timers *t, unsigned start,
      unsigned i) {
    return t->base + ((i - start) & (DILL_WHEEL - 1));
}

/* The earliest deadline in the wheel, or -1 when it is empty: the first
   busy list from base's on, around the wheel once. */
static int64_t wheel_next(const struct dill_timers *t) {
    /* Every scheduler pass that polls asks, timers or not. */
    if(!t->in_wheel) return -1;
    const unsigned words = DILL_WHEEL / 64;
    unsigned start = (unsigned)(t->base & (DILL_WHEEL - 1));
    unsigned w = start / 64;
    uint64_t word = t->busy[w] & (~(uint64_t)0 << (start % 64));
    for(unsigned n = 0; n < words; n++) {
        if(word)
            return deadline_at(t, start, w * 64 +
                (unsigned)__builtin_ctzll(word));
        w = (w + 1) % words;
        word = t->busy[w];
    }
    /* Back at the first word: the lists below start's. */
    word &= ((uint64_t)1 << (start % 64)) - 1;
    if(word)
        return deadline_at(t, start, w * 64 + (unsigned)__builtin_ctzll(word));
    return -1;
}

/* ---- Setting, withdrawing and firing ------------------------------------ */

static void withdraw_timer(struct dill_clause *cl) {
    struct dill_tmclause *tc = dill_cont(cl, struct dill_tmclause, cl);
    struct dill_timers *t = &dill_ctx_made()->timers;
    if(tc->in_wheel) wheel_remove(t, tc);
    else heap_remove(t, t->where[tc->slot]);
}

int dill_timer_set(struct dill_tmclause *tc, int64_t deadline) {
    struct dill_timers *t = &dill_ctx_made()->timers;
    tc->deadline = deadline;
    /* An empty wheel may start anywhere: from the clock, when it was left
       behind while no timer was set (see dill_timers_set). */
    if(!t->in_wheel && deadline - t->base >= DILL_WHEEL) {
        int64_t now = dill_now_ms();
        if(now > t->base) t->base = now;
    }
    if(deadline >= t->base && deadline - t->base < DILL_WHEEL) {
        if(wheel_add(t, tc) < 0) return -1;
    } else {
        tc->in_wheel = 0;
        if(heap_insert(t, tc, deadline) < 0) return -1;
    }
    dill_waitfor(&tc->cl, -1, withdraw_timer);
    return 0;
}

int64_t dill_timer_next(struct dill_timers *t) {
    int64_t wheel = wheel_next(t);
    if(!t->count) return wheel;
    int64_t heap = t->heap[0].deadline;
    return wheel >= 0 && wheel < heap ? wheel : heap;
}

static int fire_heap(struct dill_timers *t, int64_t until) {
    int fired = 0;
    while(t->count && t->heap[0].deadline <= until) {
        struct dill_tmclause *tc = t->heap[0].tc;
        heap_remove(t, 0);
        dill_trigger(&tc->cl, ETIMEDOUT);
        fired++;
    }
    return fired;
}

/* How many clauses ahead firing fetches: enough to cover a miss to
   another coroutine's stack while the ones before it are triggered. */
#define FETCH_AHEAD 4

static int fire_list(struct dill_timers *t, int64_t d) {
    struct dill_wheel_list *l = list_of(t, d);
    int fired = 0;
    /* Triggering withdraws the coroutine's other clauses, which may empty
       the list (len drops to 0) but never adds to it. */
    for(uint32_t i = 0; i < l->len; i++) {
        if(i + FETCH_AHEAD < l->len && l->items[i + FETCH_AHEAD])
            __builtin_prefetch(l->items[i + FETCH_AHEAD], 1);
        struct dill_tmclause *tc = l->items[i];
        if(!tc) continue;
        wheel_remove(t, tc);
        dill_trigger(&tc->cl, ETIMEDOUT);
        fired++;
    }
    return fired;
}

int dill_timer_fire(struct dill_timers *t, int64_t now) {
    int fired = 0;
    for(;;) {
        int64_t d = wheel_next(t);
        if(d < 0 || d > now) break;
        fired += fire_heap(t, d);
        fired += fire_list(t, d);
        t->base = d + 1;
    }
    fired += fire_heap(t, now);
    /* The wheel is empty up to now: it may move on. */
    if(t->base <= now) t->base = now + 1;
    return fired;
}

void dill_timers_term(struct dill_timers *t) {
    for(int i = 0; i < DILL_WHEEL; i++) {
        free(t->lists[i].items);
        t->lists[i] = (struct dill_wheel_list){NULL, 0, 0, 0};
    }
    free(t->heap);
    free(t->where);
    t->heap = NULL;
    t->where = NULL;
    t->count = 0;
    t->capacity = 0;
    t->free_slot = 0;
}
