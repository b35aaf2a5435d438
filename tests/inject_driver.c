/*
 * tests/inject_driver.c: the driver of the allocation-failure tests (see
 * tests/inject.h). For each scenario and N = 1, 2, ...: a fresh thread
 * makes the N-th allocation of the library fail, runs the scenario, runs
 * it again without injection if anything was injected, checks that no
 * handle is left open and exits, which tears its context down. Leaks are
 * the sanitizer's and valgrind's to find at process exit: everything a
 * run made is freed by then, or reported with where it was allocated.
 *
 * The allocations OpenSSL makes for itself once per process (its
 * initialisation, its providers, the algorithms it fetches and caches) are
 * never made to fail: OpenSSL runs that code once (CRYPTO_THREAD_run_once)
 * and keeps its result, so that after a failure there every later call
 * fails too and no retry could succeed.
 * The OpenSSL phase of a scenario starts with a run in which nothing
 * fails, which leaves them made; every allocation after that, per thread
 * (the error queue, the random generators) and per connection, can fail.
 *
 * INJECT_ONLY=name runs one scenario, INJECT_ONLY=name:N at one N of the
 * library's allocations, INJECT_ONLY=name:openssl:N at one of OpenSSL's;
 * INJECT_OPENSSL_STRIDE=S makes every S-th of OpenSSL's fail (1: all);
 * INJECT_VERBOSE=1 names every run, so a crash can be pinned down;
 * INJECT_TRACE=1 prints where each failure is injected (tests/inject_alloc.c).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined DILL_THREADS
#include <pthread.h>
#endif

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"
#include "inject.h"

/* No scenario gets anywhere near this many handles. */
#define HANDLES_CHECKED 2048
/* A run, under valgrind included, takes well under a second: one that
   takes this long has waited for a deadline (inject_deadline's 20 s) for
   something that never came. */
#define RUN_MS_MAX 10000
/* The whole program, under valgrind included, takes well under this. */
#define WATCHDOG_SECONDS 600
/* About how many runs go through OpenSSL's allocations in a scenario by
   default: a TLS run takes a few milliseconds (tens under ASan). */
#define OPENSSL_RUNS 400

/* Which allocations a run makes fail: the library's or OpenSSL's. */
struct phase {
    const char *what; /* for messages */
    void (*arm)(long n);
};

static const struct phase library_phase = {"allocation", dill_inject_arm};
#if defined HAVE_TLS
static const struct phase openssl_phase = {"OpenSSL's allocation",
    dill_inject_arm_openssl};
#endif

static const struct scenario *current;
static const struct phase *phase = &library_phase;
static long current_n;
static int aborted;
static int verbose;

int inject_aborted(void) {
    return aborted;
}

long long inject_deadline(void) {
    return (long long)now() + 20000;
}

/* EFAULT for an OpenSSL failure OpenSSL gave no cause for, during a call
   in which one of its allocations was made to fail. */
static int unnamed_openssl_failure(int err, long unnamed_before) {
#if defined HAVE_TLS
    return phase == &openssl_phase && err == EFAULT &&
        dill_inject_openssl_unnamed() > unnamed_before;
#else
    (void)err;
    (void)unnamed_before;
    return 0;
#endif
}

int inject_passed(int ok, long failures_before, long unnamed_before,
      const int *expected, const char *expr, const char *file, int line) {
    if(ok) return 1;
    int err = errno;
    for(; *expected; expected++)
        if(err == *expected) return 0;
    if(aborted) return 0;
    int injected = dill_inject_failures() > failures_before;
    if(injected && (err == ENOMEM ||
          unnamed_openssl_failure(err, unnamed_before))) {
        aborted = err;
        errno = err;
        return 0;
    }
    fprintf(stderr, "%s:%d: scenario %s, %s %ld made to fail: %s "
        "failed with errno %d (%s)%s\n", file, line, current->name,
        phase->what, current_n, expr, err, strerror(err),
        injected ? "" :
        ", though no allocation was made to fail during the call");
    exit(1);
}

/* Every handle the scenario made is closed: hquery says EBADF. */
static void check_no_handles(void) {
    static const int probe;
    for(int h = 0; h < HANDLES_CHECKED; h++) {
        errno = 0;
        if(hquery(h, &probe) == NULL && errno == EBADF) continue;
        fprintf(stderr, "scenario %s, %s %ld made to fail: handle %d is "
            "still open at the end\n", current->name, phase->what,
            current_n, h);
        exit(1);
    }
}

/* What a run saw: no failure injected; one injected (and, if the run
   stopped at it, reported as ENOMEM); one that the library reported as
   EFAULT because OpenSSL named no cause (inject_passed). */
enum outcome { RUN_CLEAN, RUN_INJECTED, RUN_UNNAMED };

/* One run at current_n. */
static void *run_once(void *arg) {
    (void)arg;
    long before = dill_inject_failures();
    aborted = 0;
    phase->arm(current_n);
    current->run();
    phase->arm(0);
    long injected = dill_inject_failures() - before;
    enum outcome o = !injected ? RUN_CLEAN :
        aborted == EFAULT ? RUN_UNNAMED : RUN_INJECTED;
    if(injected) {
        /* The retry: everything must work now. inject_passed() ends the
           test at the first failure, since none is injected. */
        aborted = 0;
        current->run();
        CHECK(!aborted);
    }
    check_no_handles();
    return (void *)(intptr_t)o;
}

static enum outcome run_in_thread(void) {
    int64_t start = now();
    void *o;
#if defined DILL_THREADS
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_once, NULL) == 0);
    CHECK(pthread_join(t, &o) == 0);
#else
    /* One process-wide context: only the first run can see it fail. */
    o = run_once(NULL);
#endif
    if(now() - start > RUN_MS_MAX) {
        fprintf(stderr, "scenario %s, %s %ld made to fail: the run took "
            "%lld ms, waiting for a deadline\n", current->name, phase->what,
            current_n, (long long)(now() - start));
        exit(1);
    }
    return (enum outcome)(intptr_t)o;
}

/* The run in a child process: its exit status is 10 plus the outcome;
   anything else is a failure. */
#define OUTCOME_STATUS 10

static enum outcome run_in_process(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) exit(OUTCOME_STATUS + (int)run_in_thread());
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) - OUTCOME_STATUS : -1;
    if(code == RUN_CLEAN || code == RUN_INJECTED || code == RUN_UNNAMED)
        return (enum outcome)code;
    fprintf(stderr, "scenario %s, %s %ld made to fail: the run's process "
        "ended with %s %d\n", current->name, phase->what, current_n,
        WIFEXITED(status) ? "status" : "signal",
        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    exit(1);
}

static void on_watchdog(int sig) {
    (void)sig;
    static const char msg[] = "inject: the watchdog fired: a run hangs "
        "(run with INJECT_VERBOSE=1 to see which)\n";
    ssize_t rc = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)rc;
    _exit(1);
}

/* INJECT_ONLY: "name", "name:N" or "name:openssl:N". *only_n is 0 for
   every N, else the one N of the phase *only_phase. */
static int selected(const struct scenario *s, long *only_n,
      const struct phase **only_phase) {
    const char *only = getenv("INJECT_ONLY");
    *only_n = 0;
    *only_phase = NULL;
    if(!only || !*only) return 1;
    size_t len = strcspn(only, ":");
    if(strlen(s->name) != len || strncmp(s->name, only, len) != 0) return 0;
    if(only[len] != ':') return 1;
    const char *n = only + len + 1;
    *only_phase = &library_phase;
#if defined HAVE_TLS
    if(strncmp(n, "openssl:", 8) == 0) {
        *only_phase = &openssl_phase;
        n += 8;
    }
#endif
    *only_n = atol(n);
    return 1;
}

static enum outcome run_one(void) {
    if(verbose) fprintf(stderr, "%s: %s %ld\n", current->name, phase->what,
        current_n);
    return current->own_process ? run_in_process() : run_in_thread();
}

/* How the runs of a phase went. */
struct tally {
    long points; /* the allocations gone through */
    long runs;   /* the runs in which one was made to fail */
    long unnamed; /* the runs of those that stopped at an unnamed EFAULT */
};

/* Runs at N = first, first + stride, ... until one has nothing injected
   (or only at first, if only). */
static struct tally run_phase(const struct phase *p, long first,
      long stride, int only) {
    struct tally t = {0, 0, 0};
    phase = p;
    long n = first;
    for(;; n += stride) {
        current_n = n;
        enum outcome o = run_one();
        if(o == RUN_CLEAN) break;
        t.runs++;
        if(o == RUN_UNNAMED) t.unnamed++;
        if(only) break;
    }
    t.points = n - 1;
    phase = &library_phase;
    return t;
}

static void run_library_phase(long only_n) {
    struct tally t = run_phase(&library_phase, only_n ? only_n : 1, 1,
        only_n != 0);
    printf("%s: %ld allocation%s, each made to fail in turn\n",
        current->name, t.points, t.points == 1 ? "" : "s");
    fflush(stdout);
}

#if defined HAVE_TLS
/* INJECT_OPENSSL_STRIDE, or a stride for about OPENSSL_RUNS runs of a
   scenario that makes calls allocations. */
static long openssl_stride(long calls) {
    const char *env = getenv("INJECT_OPENSSL_STRIDE");
    if(env && atol(env) > 0) return atol(env);
    long stride = (calls + OPENSSL_RUNS - 1) / OPENSSL_RUNS;
    return stride > 0 ? stride : 1;
}

static void run_openssl_phase(long only_n) {
    /* The run that makes OpenSSL's process-wide objects, and counts. */
    phase = &openssl_phase;
    current_n = 0;
    long before = dill_inject_openssl_calls();
    CHECK(run_one() == RUN_CLEAN);
    long calls = dill_inject_openssl_calls() - before;
    long stride = only_n ? 1 : openssl_stride(calls);
    struct tally t = run_phase(&openssl_phase, only_n ? only_n : 1, stride,
        only_n != 0);
    printf("%s: %ld OpenSSL allocations in a run, ", current->name, calls);
    if(stride == 1) printf("each made to fail in turn");
    else printf("one in %ld made to fail in turn (INJECT_OPENSSL_STRIDE=1 "
        "for all)", stride);
    printf(": %ld runs, %ld of them reported EFAULT, OpenSSL's error queue "
        "naming no lack of memory\n", t.runs, t.unnamed);
    fflush(stdout);
}
#endif

void inject_run(const struct scenario *scenarios, int count) {
    signal(SIGALRM, on_watchdog);
    alarm(WATCHDOG_SECONDS);
    const char *v = getenv("INJECT_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    for(int i = 0; i < count; i++) {
        long only_n;
        const struct phase *only_phase;
        if(!selected(&scenarios[i], &only_n, &only_phase)) continue;
        current = &scenarios[i];
        if(!only_phase || only_phase == &library_phase)
            run_library_phase(only_n);
#if defined HAVE_TLS
        if(current->openssl && (!only_phase || only_phase == &openssl_phase))
            run_openssl_phase(only_n);
#endif
    }
}
