/*
 * perf/million.c: one million coroutines alive at once, each with a default
 * (256 KiB) library stack and each blocked in chrecv on one shared channel
 * that nobody sends to. Then every handle is closed, which cancels its
 * coroutine. Prints the time per coroutine for both phases and the peak
 * resident memory. The original libdill stops at about 32,700 coroutines:
 * every guarded stack costs two memory mappings and Linux allows 65,530.
 */
#include <libdill.h>
#include "perf.h"

#define COROUTINES 1000000

static int cancelled;

static coroutine void waiter(int ch) {
    int val;
    int rc = chrecv(ch, &val, sizeof(val), -1);
    PERF_CHECK(rc == -1 && errno == ECANCELED);
    cancelled++;
}

int main(void) {
    int *handles = calloc(COROUTINES, sizeof(int));
    PERF_CHECK(handles);
    int ch[2];
    PERF_CHECK(chmake(ch) == 0);
    long rss_before = perf_rss_kib();
    int64_t start = perf_ns();
    for(int i = 0; i < COROUTINES; i++) {
        handles[i] = go(waiter(ch[1]));
        if(handles[i] < 0) {
            fprintf(stderr, "million: go() failed after %d coroutines: %s\n",
                i, strerror(errno));
            return 1;
        }
    }
    perf_report("million_go", perf_ns() - start, COROUTINES);
    long rss_alive = perf_rss_kib();
    start = perf_ns();
    for(int i = 0; i < COROUTINES; i++) PERF_CHECK(hclose(handles[i]) == 0);
    perf_report("million_hclose", perf_ns() - start, COROUTINES);
    PERF_CHECK(cancelled == COROUTINES);
    PERF_CHECK(hclose(ch[0]) == 0);
    PERF_CHECK(hclose(ch[1]) == 0);
    free(handles);
    printf("million: %d coroutines alive at once; RSS %.0f MiB while alive "
        "(%.1f KiB per coroutine), peak RSS %.0f MiB\n", COROUTINES,
        rss_alive / 1024.0, (double)(rss_alive - rss_before) / COROUTINES,
        perf_peak_rss_kib() / 1024.0);
    return 0;
}
