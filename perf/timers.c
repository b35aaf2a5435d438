/*
 * perf/timers.c: the cost of a timer. 10,000 coroutines each sleep again
 * and again with a random deadline 1-100 ms ahead, so about 10,000 timers
 * are pending at any moment. The wall time is mostly waiting, so the cost
 * per timer (insert, expire, wake the coroutine, switch to it) is measured
 * in CPU time. The coroutines are launched first and start together, so
 * launching them is not counted. The average and worst lateness of the
 * wake-ups is printed as well.
 *
 * The baseline is the same schedule (same seeds, same deadlines, the same
 * clock reads per wake-up) run by a hand-written loop: a binary min-heap
 * of deadlines and epoll_wait (poll elsewhere) with the timeout of the
 * earliest one, each expiry calling a function that sets the next
 * deadline. The ratio is its CPU time per timer over ours.
 */
#include <libdill.h>
#include "perf.h"

#if defined __linux__
#include <sys/epoll.h>
#else
#include <poll.h>
#endif

#define SLEEPERS 10000
#define ROUNDS 20

static int64_t total_late_ms;
static int64_t max_late_ms;

static coroutine void sleeper(int64_t start, uint64_t seed, int rounds) {
    PERF_CHECK(msleep(start) == 0);
    for(int i = 0; i < rounds; i++) {
        int64_t deadline = now() + 1 + (int64_t)(perf_rand(&seed) % 100);
        PERF_CHECK(msleep(deadline) == 0);
        int64_t late = now() - deadline;
        PERF_CHECK(late >= 0);
        total_late_ms += late;
        if(late > max_late_ms) max_late_ms = late;
    }
}

/* ---- The raw loop ----------------------------------------------------- */

struct raw_timer {
    int64_t deadline;
    uint64_t seed;
    int rounds_left;
};

static struct raw_timer raw_timers[SLEEPERS];
static int heap[SLEEPERS]; /* indices into raw_timers, earliest first */
static int heap_len;

static int64_t raw_now(void) { return perf_ns() / 1000000; }

static int earlier(int a, int b) {
    return raw_timers[heap[a]].deadline < raw_timers[heap[b]].deadline;
}

static void swap_entries(int a, int b) {
    int t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static void heap_push(int id) {
    int i = heap_len++;
    heap[i] = id;
    while(i > 0 && earlier(i, (i - 1) / 2)) {
        swap_entries(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static int heap_pop(void) {
    int top = heap[0];
    heap[0] = heap[--heap_len];
    int i = 0;
    for(;;) {
        int least = i, l = 2 * i + 1, r = l + 1;
        if(l < heap_len && earlier(l, least)) least = l;
        if(r < heap_len && earlier(r, least)) least = r;
        if(least == i) return top;
        swap_entries(i, least);
        i = least;
    }
}

static void wait_ms(int ms) {
#if defined __linux__
    static int ep = -1;
    if(ep < 0) ep = epoll_create1(0);
    PERF_CHECK(ep >= 0);
    struct epoll_event ev;
    int rc = epoll_wait(ep, &ev, 1, ms);
#else
    int rc = poll(NULL, 0, ms);
#endif
    PERF_CHECK(rc == 0 || (rc < 0 && errno == EINTR));
}

/* What the sleeper does when its timer expires. */
static void raw_expired(int id) {
    struct raw_timer *t = &raw_timers[id];
    if(t->rounds_left < ROUNDS) {
        int64_t late = raw_now() - t->deadline;
        PERF_CHECK(late >= 0);
        total_late_ms += late;
        if(late > max_late_ms) max_late_ms = late;
    }
    if(t->rounds_left-- == 0) return;
    t->deadline = raw_now() + 1 + (int64_t)(perf_rand(&t->seed) % 100);
    heap_push(id);
}

static int64_t raw_cpu_ns(void) {
    int64_t start = raw_now() + 100;
    for(int i = 0; i < SLEEPERS; i++) {
        raw_timers[i].deadline = start;
        raw_timers[i].seed = 0x9e3779b97f4a7c15ull + i;
        raw_timers[i].rounds_left = ROUNDS;
        heap_push(i);
    }
    int64_t cpu = perf_cpu_ns();
    while(heap_len) {
        int64_t left = raw_timers[heap[0]].deadline - raw_now();
        if(left > 0) wait_ms((int)left);
        int64_t t = raw_now();
        while(heap_len && raw_timers[heap[0]].deadline <= t)
            raw_expired(heap_pop());
    }
    return perf_cpu_ns() - cpu;
}

/* ---- main ----------------------------------------------------------------- */

int main(void) {
    int b = bundle();
    PERF_CHECK(b >= 0);
    /* Far enough ahead for all the launches to be done by then. */
    int64_t start = now() + 500;
    for(int i = 0; i < SLEEPERS; i++)
        PERF_CHECK(bundle_go(b, sleeper(start, 0x9e3779b97f4a7c15ull + i,
            ROUNDS)) == 0);
    PERF_CHECK(now() < start);
    int64_t wall = perf_ns();
    int64_t cpu = perf_cpu_ns();
    PERF_CHECK(bundle_wait(b, -1) == 0);
    cpu = perf_cpu_ns() - cpu;
    wall = perf_ns() - wall;
    PERF_CHECK(hclose(b) == 0);
    /* The common start timer fires in the measured time too. */
    int64_t timers = (int64_t)SLEEPERS * (ROUNDS + 1);
    perf_report("timers", cpu, timers);
    printf("timers: %lld timers in %.2f s wall, %.2f s CPU; wake-ups late "
        "by %.2f ms on average, %lld ms at most\n", (long long)timers,
        wall / 1e9, cpu / 1e9,
        (double)total_late_ms / ((int64_t)SLEEPERS * ROUNDS),
        (long long)max_late_ms);
    total_late_ms = max_late_ms = 0;
    int64_t raw = raw_cpu_ns();
    perf_report("timers_raw", raw, timers);
    printf("timers_raw: wake-ups late by %.2f ms on average, %lld ms at "
        "most\n", (double)total_late_ms / ((int64_t)SLEEPERS * ROUNDS),
        (long long)max_late_ms);
    printf("timers_ratio: %.2fx (raw epoll_wait + binary heap CPU time / "
        "ours; target >= 0.80x)\n", (double)raw / (double)cpu);
    return 0;
}
