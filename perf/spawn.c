/*
 * perf/spawn.c: the cost of a short-lived coroutine. Each iteration is go()
 * of a coroutine that returns at once, then hclose() of its handle; the
 * stack comes back from the per-thread cache, so no mmap is involved. The
 * same loop with go_mem() on one reused buffer shows the cost without the
 * library's stacks, and a third loop bundle_go()es into one bundle.
 */
#include <libdill.h>
#include "perf.h"

#define SPAWNS 2000000

static coroutine void nothing(void) {
}

static void warm_up(void) {
    /* Fill the stack cache and grow the handle table before timing. */
    int h[64];
    for(int i = 0; i < 64; i++) PERF_CHECK((h[i] = go(nothing())) >= 0);
    for(int i = 0; i < 64; i++) PERF_CHECK(hclose(h[i]) == 0);
}

static void spawn_go(void) {
    int64_t start = perf_ns();
    for(int i = 0; i < SPAWNS; i++) {
        int h = go(nothing());
        PERF_CHECK(h >= 0);
        PERF_CHECK(hclose(h) == 0);
    }
    perf_report("spawn", perf_ns() - start, SPAWNS);
}

static void spawn_go_mem(void) {
    static char mem[16 * 1024];
    int64_t start = perf_ns();
    for(int i = 0; i < SPAWNS; i++) {
        int h = go_mem(nothing(), mem, sizeof(mem));
        PERF_CHECK(h >= 0);
        PERF_CHECK(hclose(h) == 0);
    }
    perf_report("spawn_go_mem", perf_ns() - start, SPAWNS);
}

static void spawn_bundle_go(void) {
    int b = bundle();
    PERF_CHECK(b >= 0);
    int64_t start = perf_ns();
    for(int i = 0; i < SPAWNS; i++) PERF_CHECK(bundle_go(b, nothing()) == 0);
    PERF_CHECK(bundle_wait(b, -1) == 0);
    perf_report("spawn_bundle_go", perf_ns() - start, SPAWNS);
    PERF_CHECK(hclose(b) == 0);
}

int main(void) {
    warm_up();
    spawn_go();
    spawn_go_mem();
    spawn_bundle_go();
    printf("spawn target: < 100 ns/op\n");
    return 0;
}
