/*
 * tests/inject.h: control of the allocation failures of the library's
 * test build (tests/inject_alloc.c), and the scenario driver the
 * injection tests share (tests/inject_driver.c).
 */
#ifndef DILL_TESTS_INJECT_H
#define DILL_TESTS_INJECT_H

/* ---- The test build of the library --------------------------------- */

/* Make the n-th allocation of the library from now on fail (1: the next
   one); 0 disarms. A failure fires once: the calls after it succeed. */
void dill_inject_arm(long n);

/* The same for OpenSSL's allocations (--enable-tls), which are counted
   apart from the library's: the n-th one from now on fails. */
void dill_inject_arm_openssl(long n);

/* How many failures were injected since the process started. */
long dill_inject_failures(void);

/* How many allocations OpenSSL asked for since the process started. */
long dill_inject_openssl_calls(void);

/* How many OpenSSL failures the library reported as EFAULT because
   OpenSSL's error queue named no cause it knows (alloc.h). */
long dill_inject_openssl_unnamed(void);

/* ---- The driver ------------------------------------------------------- */

/* A scenario: calls over some part of the API, each checked with OK().
   It returns after closing everything it made, whether its calls all
   succeeded or it stopped at a failure. A coroutine of a scenario that
   stops at a failure wakes whoever waits for it (closes its socket, ends
   a channel's direction): nothing may rest on a deadline to end. */
struct scenario {
    const char *name;
    void (*run)(void);
    /* Each run in a forked process of its own too: for what the library
       keeps per process, made once (the resolver's files). */
    int own_process;
    /* Its calls go into OpenSSL: after the library's allocations, run it
       again with OpenSSL's failing in turn, or every stride-th of them
       (inject_run). */
    int openssl;
};

/* Run each scenario with the 1st, 2nd, 3rd, ... allocation failing, each
   run in a fresh thread (so with a fresh thread context), until a run in
   which no allocation was made to fail. A forked run must exit normally
   and with status 0, so that the leak checkers (LeakSanitizer, valgrind)
   look at it at its exit and their verdict counts. After a run that had a failure
   injected, the same thread runs the scenario again without injection: it
   must succeed throughout. After both, no handle may be left open. Exits
   the process with 1 on any failure.

   A scenario with openssl set then goes through OpenSSL's allocations the
   same way, after one run with nothing failing (which leaves OpenSSL's
   process-wide objects made: see inject_driver.c). There are thousands of
   them in a handshake, so by default only every stride-th fails, the
   stride chosen for about OPENSSL_RUNS runs and printed; the environment
   variable INJECT_OPENSSL_STRIDE sets it (1: every one). */
void inject_run(const struct scenario *scenarios, int count);

/* The check of a call under test (use OK or OK_OR): 1 if it succeeded.
   Else 0, after checking that it failed with ENOMEM because an allocation
   was made to fail during the call itself, or with one of the errnos the
   scenario expects there (the list ends with 0): any other failure ends
   the test. A scenario that has seen the ENOMEM is aborted, and later
   failures elsewhere in it (a peer that the failed party no longer
   answers) are its consequences: 0 with no check. errno is kept.
   While OpenSSL's allocations are made to fail, EFAULT aborts the
   scenario too, if a failure was injected during the call and the
   library said EFAULT because OpenSSL did not say it lacked memory
   (dill_inject_openssl_unnamed grew): OpenSSL 3.0 often does not. */
int inject_passed(int ok, long failures_before, long unnamed_before,
    const int *expected, const char *expr, const char *file, int line);

/* expr is a call that returns -1 on failure (a handle, a size or 0
   otherwise). */
#define OK_OR(expr, ...) \
    ({ \
        long inject_before__ = dill_inject_failures(); \
        long inject_unnamed__ = dill_inject_openssl_unnamed(); \
        int inject_ok__ = (expr) >= 0; \
        inject_passed(inject_ok__, inject_before__, inject_unnamed__, \
            (const int[]){__VA_ARGS__, 0}, #expr, __FILE__, __LINE__); \
    })
#define OK(expr) OK_OR(expr, 0)

/* Whether the running scenario was aborted by an injected failure. */
int inject_aborted(void);

/* A deadline for blocking calls in scenarios: far enough never to pass in
   a correct run, even under valgrind, near enough to end a hang. */
long long inject_deadline(void);

#endif
