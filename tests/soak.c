/*
 * tests/soak.c: the soak test, `make soak` (never part of make check).
 * Two threads, one scheduler each (tests/soak_worker.c), each with a TCP
 * and an IPC listener, and 32 client lanes that connect to either thread's
 * listeners over loopback, one connection after another: thousands of
 * connections opened, used for a random number of checksummed, numbered
 * messages that the server checks and echoes (tests/soak_server.c) and the
 * client checks again (tests/soak_client.c), and closed. Deadlines meant
 * to expire and cancellations of servers and clients by hclose come at
 * random all the while.
 *
 * It runs SOAK_SECONDS (the first argument, or the environment; "90",
 * "90s" or "5m"; 60 s by default) in two phases: a warm-up of a sixth of
 * the time (2 to 30 s), then the rest. At the end of each phase every
 * connection is closed and every coroutine but the acceptors has returned,
 * and main measures open descriptors (/proc/self/fd), RSS and the heap in
 * use. The soak fails, saying why, if any message was lost, duplicated,
 * reordered or corrupted, if the counts do not add up (every message sent
 * is delivered or abandoned on purpose), if the descriptors after the run
 * differ from after the warm-up or, once the threads are gone, from the
 * start, or if RSS or the heap grew beyond a tolerance (see the limits
 * below). It prints its figures at the end.
 */
#include <dirent.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "soak.h"
#include "check.h"

/* Limits on growth from the end of the warm-up to the end of the run.
   Both points are the same moment of the same load: every connection
   closed, every client and server returned. RSS may still differ by where
   freed memory happens to sit (malloc arenas are trimmed only at their
   top; 2 x 32 x 60 KB client buffers alone are 7.5 MiB): measured growth
   is 0.3 to 1 MiB in a plain build. 16 MiB leaves room for a loaded
   machine and still catches 64 coroutine stacks (256 KiB each) or 1 KiB
   per connection of a 60 s run left behind. The heap in use is counted
   exactly; it moves by a KiB or two (caches filled to their bound: handle
   tables, glibc's tcache). 512 KiB is nine 60 KB buffers, or 35 bytes per
   connection of a 60 s run. Under ASan, RSS gets more room: see below. */
#define HEAP_TOLERANCE_KIB 512

#if defined UNDER_ASAN
/* The ASan runtime's count of bytes allocated and not yet freed (its
   quarantine left out); declared here because GCC 12 ships no
   sanitizer/allocator_interface.h. */
size_t __sanitizer_get_current_allocated_bytes(void);

/* ASan holds freed memory back in a quarantine, 256 MiB by default, to
   catch later uses of it. The soak frees about 20 MB a second under ASan,
   so its RSS would climb for the first minutes of any run, whatever the
   library does. A 16 MiB quarantine still holds the last second or so of
   frees. It is usually full by the end of the warm-up, but not always on
   a loaded machine (seen: 11 MiB of growth after the warm-up, 4 to 6 MiB
   otherwise), so under ASan the RSS limit grows by the quarantine's size.
   ASAN_OPTIONS=quarantine_size_mb=N overrides this (and then the RSS
   check may fail for a large N). */
#define QUARANTINE_MIB 16
#define QUARANTINE_OPTION(n) "quarantine_size_mb=" #n
#define QUARANTINE_OPTION_OF(n) QUARANTINE_OPTION(n)
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return QUARANTINE_OPTION_OF(QUARANTINE_MIB);
}
#else
#define QUARANTINE_MIB 0
#endif
#define RSS_TOLERANCE_KIB ((16 + QUARANTINE_MIB) * 1024)

struct measure {
    long fds;
    long rss_kib;
    long heap_kib;
};

static char dir[64];

static long count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if(!d) return -1;
    long n = 0;
    struct dirent *e;
    while((e = readdir(d)))
        if(e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if(!f) return -1;
    long size, resident;
    int ok = fscanf(f, "%ld %ld", &size, &resident) == 2;
    fclose(f);
    return ok ? resident * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

static long heap_kib(void) {
#if defined UNDER_ASAN
    return (long)(__sanitizer_get_current_allocated_bytes() / 1024);
#elif defined __GLIBC__ && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
#else
    return -1;
#endif
}

static struct measure measure(void) {
    return (struct measure){count_fds(), rss_kib(), heap_kib()};
}

static double seconds_since(const struct timespec *start) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - start->tv_sec) +
        (double)(t.tv_nsec - start->tv_nsec) / 1e9;
}

static void remove_dir(void) {
    for(int i = 0; i < SOAK_THREADS; i++) unlink(soak_workers[i].ipc_path);
    rmdir(dir);
}

/* "90", "90s" or "5m". */
static long parse_duration(const char *s) {
    char *end;
    long n = strtol(s, &end, 10);
    if(end == s || n <= 0) return -1;
    if(strcmp(end, "m") == 0) return n * 60;
    if(*end == '\0' || strcmp(end, "s") == 0) return n;
    return -1;
}

static long duration(int argc, char **argv) {
    const char *s = argc > 1 ? argv[1] : getenv("SOAK_SECONDS");
    if(!s || !*s) return 60;
    long n = parse_duration(s);
    if(n < 3) {
        fprintf(stderr, "soak: the duration must be at least 3 s, as N, "
            "Ns or Nm (got '%s')\n", s);
        exit(2);
    }
    return n;
}

static void start_threads(pthread_t *t, uint64_t seed) {
    for(int i = 0; i < SOAK_THREADS; i++) {
        struct soak_worker *w = &soak_workers[i];
        w->index = i;
        w->rng = seed * (2 * (uint64_t)i + 1) | 1;
        w->lanes = &soak_lanes[i * SOAK_LANES];
        snprintf(w->ipc_path, sizeof(w->ipc_path), "%s/w%d", dir, i);
        for(int k = 0; k < SOAK_LANES; k++) {
            struct soak_lane *l = &w->lanes[k];
            l->id = (uint32_t)(i * SOAK_LANES + k);
            l->handle = -1;
            l->w = w;
        }
    }
    for(int i = 0; i < SOAK_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, soak_worker_main,
            &soak_workers[i]) == 0);
}

/* A phase ends within its length plus the time the clients and servers
   are given to finish; past that, something hangs. */
static struct measure at_quiet(int phase) {
    long limit_ms = soak_phase_ms[phase] + 4 * SOAK_PATIENCE_MS + 30000;
    for(long waited = 0; atomic_load(&soak_quiet[phase]) < SOAK_THREADS;
          waited += 10) {
        if(waited > limit_ms) {
            fprintf(stderr, "soak: FAIL: phase %d not over after %ld s: "
                "the threads hang\n", phase, limit_ms / 1000);
            remove_dir();
            _exit(1);
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return measure();
}

static struct soak_stats total(void) {
    struct soak_stats sum = {0};
    uint64_t *to = (uint64_t *)&sum;
    for(int i = 0; i < SOAK_THREADS; i++) {
        const uint64_t *from = (const uint64_t *)&soak_workers[i].st;
        for(size_t k = 0; k < sizeof(sum) / sizeof(uint64_t); k++)
            to[k] += from[k];
    }
    return sum;
}

static int failed(const char *what) {
    fprintf(stderr, "soak: FAIL: %s\n", what);
    return 1;
}

static int check_counts(const struct soak_stats *s, long seconds) {
    int bad = 0;
    if(s->sent != s->delivered + s->abandoned + s->lost)
        bad |= failed("messages sent != delivered + abandoned + lost");
    if(s->lost != 0) bad |= failed("messages lost");
    if(s->server_messages < s->delivered || s->server_messages > s->sent)
        bad |= failed("the servers' count is outside [delivered, sent]");
    if(s->connections == 0 || s->delivered == 0)
        bad |= failed("no connection, or no message delivered");
    /* Long enough for each kind of trouble to have come up many times. */
    if(seconds >= 10 && (s->timeouts == 0 || s->server_timeouts == 0 ||
          s->cancelled_servers == 0 || s->cancelled_clients == 0 ||
          s->by_cancelled_server == 0))
        bad |= failed("some kind of timeout or cancellation never happened");
    return bad;
}

static int check_resources(const struct measure *start,
      const struct measure *base, const struct measure *end, long final_fds) {
    int bad = 0;
    if(start->fds < 0) {
        printf("soak: descriptors and RSS not checked: no /proc/self\n");
        return 0;
    }
    if(end->fds != base->fds)
        bad |= failed("open descriptors after the run != after the warm-up");
    if(final_fds != start->fds)
        bad |= failed("open descriptors at the end != at the start");
    if(end->rss_kib > base->rss_kib + RSS_TOLERANCE_KIB)
        bad |= failed("RSS grew past its tolerance after the warm-up");
    if(base->heap_kib < 0)
        printf("soak: heap in use not checked on this libc\n");
    else if(end->heap_kib > base->heap_kib + HEAP_TOLERANCE_KIB)
        bad |= failed("the heap in use grew past its tolerance");
    return bad;
}

static void report(const struct soak_stats *s, double secs,
      const struct measure *start, const struct measure *base,
      const struct measure *end, long final_fds) {
    printf("soak: %.1f s, %d threads, %d client lanes each\n", secs,
        SOAK_THREADS, SOAK_LANES);
    printf("soak: connections %" PRIu64 " (tcp %" PRIu64 ", ipc %" PRIu64
        ", prefix %" PRIu64 ", to the other thread %" PRIu64 "; ipc "
        "backlog retries %" PRIu64 ")\n", s->connections, s->tcp, s->ipc,
        s->framed, s->cross, s->connect_retries);
    printf("soak: closes: %" PRIu64 " orderly, %" PRIu64 " hclose, %" PRIu64
        " walked away from\n", s->clean_closes, s->abrupt_closes,
        s->walkaways);
    printf("soak: messages %" PRIu64 " sent, %" PRIu64 " echoed intact and "
        "in order, %" PRIu64 " abandoned on purpose, %" PRIu64 " lost; %"
        PRIu64 " checked by the servers\n", s->sent, s->delivered,
        s->abandoned, s->lost, s->server_messages);
    printf("soak: bytes %" PRIu64 " (%.1f MB/s)\n", s->bytes,
        (double)s->bytes / secs / 1e6);
    printf("soak: timeouts %" PRIu64 " (client deadlines), %" PRIu64
        " (server first-message deadlines)\n", s->timeouts,
        s->server_timeouts);
    printf("soak: cancellations %" PRIu64 " (servers), %" PRIu64
        " (clients); connections ended by a cancelled server %" PRIu64
        ", by a server's deadline %" PRIu64 "\n", s->cancelled_servers,
        s->cancelled_clients, s->by_cancelled_server, s->by_server_timeout);
    printf("soak: descriptors %ld at the start, %ld after the warm-up, %ld "
        "at the end, %ld after the threads\n", start->fds, base->fds,
        end->fds, final_fds);
    printf("soak: RSS %ld KiB at the start, %ld after the warm-up, %ld at "
        "the end (tolerance %d)\n", start->rss_kib, base->rss_kib,
        end->rss_kib, RSS_TOLERANCE_KIB);
    printf("soak: heap in use %ld KiB after the warm-up, %ld at the end "
        "(tolerance %d)\n", base->heap_kib, end->heap_kib,
        HEAP_TOLERANCE_KIB);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    long seconds = duration(argc, argv);
    long warm = seconds / 6 < 2 ? 2 : seconds / 6 > 30 ? 30 : seconds / 6;
    soak_phase_ms[0] = warm * 1000;
    soak_phase_ms[1] = (seconds - warm) * 1000;
    const char *s = getenv("SOAK_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
    printf("soak: %ld s (warm-up %ld s), seed %" PRIu64 " (SOAK_SEED)\n",
        seconds, warm, seed);
    soak_wire_init();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct measure start = measure();
    snprintf(dir, sizeof(dir), "/tmp/dill-soak.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    pthread_t t[SOAK_THREADS];
    start_threads(t, seed);
    struct measure base = at_quiet(0);
    atomic_store(&soak_resume, 1);
    struct measure end = at_quiet(1);
    atomic_store(&soak_resume, 2);
    for(int i = 0; i < SOAK_THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    remove_dir();
    long final_fds = count_fds();
    struct soak_stats sum = total();
    report(&sum, seconds_since(&t0), &start, &base, &end, final_fds);
    int bad = atomic_load(&soak_failures) != 0;
    if(bad) fprintf(stderr, "soak: FAIL: %d failures (the first ones are "
        "above)\n", atomic_load(&soak_failures));
    bad |= check_counts(&sum, seconds);
    bad |= check_resources(&start, &base, &end, final_fds);
    printf("soak: %s\n", bad ? "FAILED" : "passed");
    return bad;
}
