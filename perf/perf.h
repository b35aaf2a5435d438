/*
 * perf/perf.h: what every benchmark in perf/ shares: clocks, memory
 * figures, a small random generator, the `name: N ns/op` output format and
 * a check that stops a benchmark whose library calls fail (a benchmark that
 * quietly skips work would report numbers that mean nothing).
 */
#ifndef PERF_H_INCLUDED
#define PERF_H_INCLUDED

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PERF_CHECK(expr) \
    do { \
        if(!(expr)) { \
            fprintf(stderr, "%s:%d: %s failed (errno %d: %s)\n", __FILE__, \
                __LINE__, #expr, errno, strerror(errno)); \
            exit(1); \
        } \
    } while(0)

/* Wall-clock nanoseconds, for everything that does not sleep. */
static inline int64_t perf_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CPU nanoseconds of the whole process, for benchmarks that spend most of
   their wall time waiting for deadlines. */
static inline int64_t perf_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Resident memory now, in KiB; -1 where /proc/self/statm does not exist. */
static inline long perf_rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if(!f) return -1;
    long size, resident;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if(n != 2) return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Peak resident memory of the process so far, in KiB. */
static inline long perf_peak_rss_kib(void) {
    struct rusage ru;
    if(getrusage(RUSAGE_SELF, &ru) != 0) return -1;
#if defined __APPLE__
    return ru.ru_maxrss / 1024; /* bytes there, KiB on Linux and the BSDs */
#else
    return ru.ru_maxrss;
#endif
}

/* xorshift64: fast, deterministic for a given seed, good enough for
   spreading deadlines. The seed must not be 0. */
static inline uint64_t perf_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* The one output format every benchmark uses: `name: N ns/op`. */
static inline void perf_report(const char *name, int64_t ns, int64_t ops) {
    printf("%s: %.1f ns/op\n", name, (double)ns / (double)ops);
    fflush(stdout);
}

#endif
