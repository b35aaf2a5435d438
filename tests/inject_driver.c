/*
 * tests/inject_driver.c: the driver of the allocation-failure tests (see
 * tests/inject.h). For each scenario and N = 1, 2, ...: a fresh thread
 * makes the N-th allocation of the library fail, runs the scenario, runs
 * it again without injection if anything was injected, checks that no
 * handle is left open and exits, which tears its context down. Leaks are
 * the sanitizer's and valgrind's to find at process exit: everything a
 * run made is freed by then, or reported with where it was allocated.
 *
 * INJECT_ONLY=name or INJECT_ONLY=name:N runs one scenario (at one N);
 * INJECT_VERBOSE=1 names every run, so a crash can be pinned down;
 * INJECT_TRACE=1 prints where each failure is injected (tests/inject_alloc.c).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
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

static const struct scenario *current;
static long current_n;
static int aborted;
static int verbose;

int inject_aborted(void) {
    return aborted;
}

long long inject_deadline(void) {
    return (long long)now() + 20000;
}

int inject_passed(int ok, long failures_before, const int *expected,
      const char *expr, const char *file, int line) {
    if(ok) return 1;
    int err = errno;
    for(; *expected; expected++)
        if(err == *expected) return 0;
    if(aborted) return 0;
    if(err == ENOMEM && dill_inject_failures() > failures_before) {
        aborted = 1;
        errno = err;
        return 0;
    }
    fprintf(stderr, "%s:%d: scenario %s, allocation %ld made to fail: %s "
        "failed with errno %d (%s)%s\n", file, line, current->name,
        current_n, expr, err, strerror(err),
        dill_inject_failures() > failures_before ? "" :
        ", though no allocation was made to fail during the call");
    exit(1);
}

/* Every handle the scenario made is closed: hquery says EBADF. */
static void check_no_handles(void) {
    static const int probe;
    for(int h = 0; h < HANDLES_CHECKED; h++) {
        errno = 0;
        if(hquery(h, &probe) == NULL && errno == EBADF) continue;
        fprintf(stderr, "scenario %s, allocation %ld made to fail: handle "
            "%d is still open at the end\n", current->name, current_n, h);
        exit(1);
    }
}

/* One run at current_n. Returns whether an allocation was made to fail. */
static void *run_once(void *arg) {
    (void)arg;
    long before = dill_inject_failures();
    aborted = 0;
    dill_inject_arm(current_n);
    current->run();
    dill_inject_arm(0);
    long injected = dill_inject_failures() - before;
    if(injected) {
        /* The retry: everything must work now. inject_passed() ends the
           test at the first failure, since none is injected. */
        aborted = 0;
        current->run();
        CHECK(!aborted);
    }
    check_no_handles();
    return injected ? (void *)1 : NULL;
}

static int run_in_thread(void) {
    int64_t start = now();
    void *injected;
#if defined DILL_THREADS
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_once, NULL) == 0);
    CHECK(pthread_join(t, &injected) == 0);
#else
    /* One process-wide context: only the first run can see it fail. */
    injected = run_once(NULL);
#endif
    if(now() - start > RUN_MS_MAX) {
        fprintf(stderr, "scenario %s, allocation %ld made to fail: the run "
            "took %lld ms, waiting for a deadline\n", current->name,
            current_n, (long long)(now() - start));
        exit(1);
    }
    return injected != NULL;
}

/* The run in a child process: its exit status says whether an allocation
   was made to fail (2) or not (0); anything else is a failure. */
static int run_in_process(void) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) exit(run_in_thread() ? 2 : 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if(WIFEXITED(status) && (WEXITSTATUS(status) == 0 ||
          WEXITSTATUS(status) == 2))
        return WEXITSTATUS(status) == 2;
    fprintf(stderr, "scenario %s, allocation %ld made to fail: the run's "
        "process ended with %s %d\n", current->name, current_n,
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

/* INJECT_ONLY: "name" or "name:N". */
static int selected(const struct scenario *s, long *only_n) {
    const char *only = getenv("INJECT_ONLY");
    *only_n = 0;
    if(!only || !*only) return 1;
    size_t len = strcspn(only, ":");
    if(strlen(s->name) != len || strncmp(s->name, only, len) != 0) return 0;
    if(only[len] == ':') *only_n = atol(only + len + 1);
    return 1;
}

void inject_run(const struct scenario *scenarios, int count) {
    signal(SIGALRM, on_watchdog);
    alarm(WATCHDOG_SECONDS);
    const char *v = getenv("INJECT_VERBOSE");
    verbose = v && *v && strcmp(v, "0") != 0;
    for(int i = 0; i < count; i++) {
        long only_n;
        if(!selected(&scenarios[i], &only_n)) continue;
        current = &scenarios[i];
        long n = only_n ? only_n : 1;
        for(;; n++) {
            current_n = n;
            if(verbose) fprintf(stderr, "%s: allocation %ld\n",
                current->name, n);
            int injected = current->own_process ? run_in_process() :
                run_in_thread();
            if(!injected || only_n) break;
        }
        printf("%s: %ld allocation%s, each made to fail in turn\n",
            current->name, n - 1, n - 1 == 1 ? "" : "s");
        fflush(stdout);
    }
}
