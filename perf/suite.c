/*
 * perf/suite.c: the work of libdill's own perf/ programs, 10 million times
 * each, in the main coroutine and one go() worker, so that the same source
 * can be built against this library and against the original and the two
 * times compared (make bench does it when LIBDILL_ORIG names an install
 * prefix of the original; see perf/perf.mk). It uses only the public API
 * of libdill 2.x, nothing of ours.
 *
 *   ctxswitch  two coroutines calling yield() in turn
 *   go         h = go(empty()); hclose(h)
 *   chan       main chsends an int and chrecvs it back; the worker
 *              chrecvs it and chsends it back
 *   choose     the same, each send and each receive a one-clause choose
 *   done       chmake, go() a worker blocked in chrecv, chdone (the worker
 *              returns on EPIPE), hclose of the coroutine and both ends
 *
 * Each figure is printed as `suite_NAME: N ns/op`, best of SUITE_ROUNDS.
 */
#include <libdill.h>
#include "perf.h"

#define SUITE_OPS 10000000
#define SUITE_ROUNDS 3

static coroutine void yielder(int count) {
    for(int i = 0; i < count; i++) PERF_CHECK(yield() == 0);
}

static int64_t bench_ctxswitch(void) {
    int cr = go(yielder(SUITE_OPS / 2));
    PERF_CHECK(cr >= 0);
    int64_t start = perf_ns();
    for(int i = 0; i < SUITE_OPS / 2; i++) PERF_CHECK(yield() == 0);
    int64_t ns = perf_ns() - start;
    PERF_CHECK(hclose(cr) == 0);
    return ns;
}

static coroutine void empty(void) {
}

static int64_t bench_go(void) {
    int64_t start = perf_ns();
    for(int i = 0; i < SUITE_OPS; i++) {
        int h = go(empty());
        PERF_CHECK(h >= 0);
        PERF_CHECK(hclose(h) == 0);
    }
    return perf_ns() - start;
}

static coroutine void echo_chan(int ch) {
    int val;
    while(chrecv(ch, &val, sizeof(val), -1) == 0)
        PERF_CHECK(chsend(ch, &val, sizeof(val), -1) == 0);
}

static int64_t bench_chan(void) {
    int ch[2];
    PERF_CHECK(chmake(ch) == 0);
    int cr = go(echo_chan(ch[1]));
    PERF_CHECK(cr >= 0);
    int64_t start = perf_ns();
    for(int i = 0; i < SUITE_OPS; i++) {
        int val = i;
        PERF_CHECK(chsend(ch[0], &val, sizeof(val), -1) == 0);
        PERF_CHECK(chrecv(ch[0], &val, sizeof(val), -1) == 0);
        PERF_CHECK(val == i);
    }
    int64_t ns = perf_ns() - start;
    PERF_CHECK(hclose(cr) == 0);
    PERF_CHECK(hclose(ch[0]) == 0);
    PERF_CHECK(hclose(ch[1]) == 0);
    return ns;
}

static int choose_one(int op, int ch, int *val) {
    struct chclause cl = {op, ch, val, sizeof(*val)};
    return choose(&cl, 1, -1);
}

static coroutine void echo_choose(int ch) {
    int val;
    while(choose_one(CHRECV, ch, &val) == 0)
        PERF_CHECK(choose_one(CHSEND, ch, &val) == 0);
}

static int64_t bench_choose(void) {
    int ch[2];
    PERF_CHECK(chmake(ch) == 0);
    int cr = go(echo_choose(ch[1]));
    PERF_CHECK(cr >= 0);
    int64_t start = perf_ns();
    for(int i = 0; i < SUITE_OPS; i++) {
        int val = i;
        PERF_CHECK(choose_one(CHSEND, ch[0], &val) == 0);
        PERF_CHECK(choose_one(CHRECV, ch[0], &val) == 0);
        PERF_CHECK(val == i);
    }
    int64_t ns = perf_ns() - start;
    PERF_CHECK(hclose(cr) == 0);
    PERF_CHECK(hclose(ch[0]) == 0);
    PERF_CHECK(hclose(ch[1]) == 0);
    return ns;
}

static coroutine void wait_done(int ch) {
    int val;
    PERF_CHECK(chrecv(ch, &val, sizeof(val), -1) == -1 && errno == EPIPE);
}

static int64_t bench_done(void) {
    int64_t start = perf_ns();
    for(int i = 0; i < SUITE_OPS; i++) {
        int ch[2];
        PERF_CHECK(chmake(ch) == 0);
        int cr = go(wait_done(ch[1]));
        PERF_CHECK(cr >= 0);
        PERF_CHECK(chdone(ch[0]) == 0);
        PERF_CHECK(hclose(cr) == 0);
        PERF_CHECK(hclose(ch[0]) == 0);
        PERF_CHECK(hclose(ch[1]) == 0);
    }
    return perf_ns() - start;
}

static void run(const char *name, int64_t (*bench)(void)) {
    int64_t best = bench();
    for(int round = 1; round < SUITE_ROUNDS; round++) {
        int64_t ns = bench();
        if(ns < best) best = ns;
    }
    char label[32];
    snprintf(label, sizeof(label), "suite_%s", name);
    perf_report(label, best, SUITE_OPS);
}

int main(void) {
    run("ctxswitch", bench_ctxswitch);
    run("go", bench_go);
    run("chan", bench_chan);
    run("choose", bench_choose);
    run("done", bench_done);
    return 0;
}
