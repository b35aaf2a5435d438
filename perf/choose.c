/*
 * perf/choose.c: the cost of choose() with 2, 3 and 4 clauses. A coroutine
 * sends on the channels in turn with chsend; main receives with one choose
 * over all of them, so every operation registers every clause, blocks,
 * is woken by one peer and withdraws the other registrations.
 */
#include <libdill.h>
#include "perf.h"

#define OPS 1000000
#define MAX_CLAUSES 4

static coroutine void sender(int *chs, int nchs, int count) {
    for(int i = 0; i < count; i++)
        PERF_CHECK(chsend(chs[i % nchs], &i, sizeof(i), -1) == 0);
}

static void bench(int nclauses) {
    int send_ends[MAX_CLAUSES];
    int recv_ends[MAX_CLAUSES];
    struct chclause cls[MAX_CLAUSES];
    int val;
    for(int i = 0; i < nclauses; i++) {
        int ch[2];
        PERF_CHECK(chmake(ch) == 0);
        send_ends[i] = ch[0];
        recv_ends[i] = ch[1];
        cls[i] = (struct chclause){CHRECV, ch[1], &val, sizeof(val)};
    }
    int64_t start = perf_ns();
    int cr = go(sender(send_ends, nclauses, OPS));
    PERF_CHECK(cr >= 0);
    for(int i = 0; i < OPS; i++) {
        int rc = choose(cls, nclauses, -1);
        PERF_CHECK(rc == i % nclauses && errno == 0);
        PERF_CHECK(val == i);
    }
    PERF_CHECK(bundle_wait(cr, -1) == 0);
    char name[32];
    snprintf(name, sizeof(name), "choose_%d", nclauses);
    perf_report(name, perf_ns() - start, OPS);
    PERF_CHECK(hclose(cr) == 0);
    for(int i = 0; i < nclauses; i++) {
        PERF_CHECK(hclose(send_ends[i]) == 0);
        PERF_CHECK(hclose(recv_ends[i]) == 0);
    }
}

int main(void) {
    for(int n = 2; n <= MAX_CLAUSES; n++) bench(n);
    return 0;
}
