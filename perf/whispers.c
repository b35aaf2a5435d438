/*
 * perf/whispers.c: a message passed down a long chain. 100,000 coroutines
 * stand in a line, each connected to the next by a channel; each one
 * receives an integer from its left, adds one and sends it to its right.
 * main whispers 0 into the first channel and must hear 100,000 out of the
 * last. Every hop is a chrecv/chsend pair and a switch, and touches the
 * stack of a different coroutine, so caches are cold.
 */
#include <libdill.h>
#include "perf.h"

#define LENGTH 100000
#define PASSES 10

static coroutine void whisperer(int left, int right, int passes) {
    for(int i = 0; i < passes; i++) {
        int val;
        PERF_CHECK(chrecv(left, &val, sizeof(val), -1) == 0);
        val++;
        PERF_CHECK(chsend(right, &val, sizeof(val), -1) == 0);
    }
}

int main(void) {
    /* Channel i joins coroutine i-1 (or main) to coroutine i (or main). */
    int (*chs)[2] = malloc(sizeof(int[2]) * (LENGTH + 1));
    PERF_CHECK(chs);
    int b = bundle();
    PERF_CHECK(b >= 0);
    int64_t start = perf_ns();
    for(int i = 0; i <= LENGTH; i++) PERF_CHECK(chmake(chs[i]) == 0);
    for(int i = 0; i < LENGTH; i++)
        PERF_CHECK(bundle_go(b, whisperer(chs[i][1], chs[i + 1][0],
            PASSES)) == 0);
    perf_report("whispers_setup", perf_ns() - start, LENGTH);
    start = perf_ns();
    for(int i = 0; i < PASSES; i++) {
        int val = 0;
        PERF_CHECK(chsend(chs[0][0], &val, sizeof(val), -1) == 0);
        PERF_CHECK(chrecv(chs[LENGTH][1], &val, sizeof(val), -1) == 0);
        PERF_CHECK(val == LENGTH);
    }
    /* LENGTH + 1 channels carry the value on each pass. */
    perf_report("whispers", perf_ns() - start, (int64_t)PASSES * (LENGTH + 1));
    PERF_CHECK(bundle_wait(b, -1) == 0);
    PERF_CHECK(hclose(b) == 0);
    for(int i = 0; i <= LENGTH; i++) {
        PERF_CHECK(hclose(chs[i][0]) == 0);
        PERF_CHECK(hclose(chs[i][1]) == 0);
    }
    free(chs);
    return 0;
}
