/*
 * now.c: now(), monotonic milliseconds. On x86-64 each thread remembers the
 * last reading together with the time-stamp counter; while the counter has
 * moved by less than a million cycles (well under a millisecond) the cached
 * value is returned without asking the kernel.
 */
#include <time.h>

#include "libdill.h"
#include "now.h"

static int64_t clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* Boot-relative time is far above 1 ms, so never 0 or -1; the offset
       guards against a clock that starts at zero (some containers). */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1000;
}

#if defined __x86_64__ || defined __i386__
/* initial-exec: a plain TLS access, no __tls_get_addr call per now(). */
static __thread int64_t cached_ms __attribute__((tls_model("initial-exec")));
static __thread uint64_t cached_tsc __attribute__((tls_model("initial-exec")));

static inline uint64_t read_tsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a" (lo), "=d" (hi));
    return ((uint64_t)hi << 32) | lo;
}

int64_t dill_now_ms(void) {
    uint64_t tsc = read_tsc();
    /* Unsigned difference in both directions: a thread moving to a CPU with
       a slightly different counter just reads the clock again. */
    if(tsc - cached_tsc < 1000000 || cached_tsc - tsc < 1000000) {
        if(cached_ms) return cached_ms;
    }
    cached_tsc = tsc;
    cached_ms = clock_ms();
    return cached_ms;
}
#else
int64_t dill_now_ms(void) {
    return clock_ms();
}
#endif

DILL_EXPORT int64_t dill_now(void) {
    return dill_now_ms();
}
