/*
 * perf/timers.c: the cost of a timer. 10,000 coroutines each sleep again
 * and again with a random deadline 1-100 ms ahead, so about 10,000 timers
 * are pending at any moment. The wall time is mostly waiting, so the cost
 * per timer (insert, expire, wake the coroutine, switch to it) is measured
 * in CPU time. The coroutines are launched first and start together, so
 * launching them is not counted. The average and worst lateness of the
 * wake-ups is printed as well.
 */
#include <libdill.h>
#include "perf.h"

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
    return 0;
}
