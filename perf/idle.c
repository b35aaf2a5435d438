/*
 * perf/idle.c: the memory cost of idle coroutines. 100,000 coroutines with
 * default stacks each write one page (4 KiB) of their stack, then block
 * forever on a channel. Prints the resident memory they add, in MiB; the
 * target is at most 1.5 GiB (a stack costs what it touches, not 256 KiB).
 */
#include <libdill.h>
#include "perf.h"

#define COROUTINES 100000
#define TARGET_MIB 1536

static coroutine void idler(int ch) {
    volatile char page[4096];
    for(size_t i = 0; i < sizeof(page); i += 64) page[i] = (char)i;
    int val;
    PERF_CHECK(chrecv(ch, &val, sizeof(val), -1) == -1 && errno == ECANCELED);
}

int main(void) {
    int ch[2];
    PERF_CHECK(chmake(ch) == 0);
    int b = bundle();
    PERF_CHECK(b >= 0);
    long rss_before = perf_rss_kib();
    PERF_CHECK(rss_before >= 0);
    int64_t start = perf_ns();
    for(int i = 0; i < COROUTINES; i++)
        PERF_CHECK(bundle_go(b, idler(ch[1])) == 0);
    perf_report("idle_go", perf_ns() - start, COROUTINES);
    double mib = (perf_rss_kib() - rss_before) / 1024.0;
    printf("idle_rss: %.0f MiB for %d coroutines (%.1f KiB each; "
        "target <= %d MiB)\n", mib, COROUTINES, mib * 1024 / COROUTINES,
        TARGET_MIB);
    start = perf_ns();
    PERF_CHECK(hclose(b) == 0);
    perf_report("idle_hclose", perf_ns() - start, COROUTINES);
    PERF_CHECK(hclose(ch[0]) == 0);
    PERF_CHECK(hclose(ch[1]) == 0);
    return 0;
}
