/*
 * tests/stack.c: coroutine stacks. 100,000 coroutines with default stacks
 * are alive at the same time (blocked in msleep or chrecv; the count comes
 * from DILL_TEST_COROUTINES) and none fails with ENOMEM; they all run and
 * are then closed. In forked children: unbounded recursion in a go()
 * coroutine dies by SIGSEGV after exactly the line "libdill: stack overflow
 * in coroutine started at FILE:LINE" naming that go(), also in a second
 * thread; a NULL write in a coroutine dies by SIGSEGV without that line; a
 * SIGSEGV handler installed before the first go() still receives faults
 * that are not guard-page hits; a coroutine on a 4 KiB caller buffer
 * (go_mem and bundle_go_mem) that writes past the bottom of its buffer
 * dies by SIGABRT with the same line at its next switch, and so does a
 * coroutine on a library stack without a guard page (once more stacks are
 * alive than guard pages are given: vm.max_map_count / 2) that writes
 * past its bottom.
 *
 * On a 32-bit machine 4 GiB of address space hold about 15,000 stacks of
 * 256 KiB: 10,000 coroutines are alive at once by default, and the library
 * stack canary is not reached (the address space runs out before the guard
 * pages do), which the test prints.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"

/* ---- Running a scenario in a child and collecting its stderr. ---- */

struct outcome {
    int status;
    char err[65536];
};

static void run_child(void (*scenario)(void), struct outcome *out) {
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) {
        close(p[0]);
        if(dup2(p[1], 2) < 0)
            _exit(100);
        close(p[1]);
        alarm(60);
        scenario();
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    while(1) {
        ssize_t n = read(p[0], out->err + len, sizeof(out->err) - 1 - len);
        if(n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0);
        if(n == 0)
            break;
        len += (size_t)n;
        CHECK(len < sizeof(out->err) - 1);
    }
    out->err[len] = 0;
    close(p[0]);
    CHECK(waitpid(pid, &out->status, 0) == pid);
}

/* Does text contain line as one complete line? */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    const char *s = text;
    while((s = strstr(s, line)) != NULL) {
        if((s == text || s[-1] == '\n') && (s[n] == '\n' || s[n] == 0))
            return 1;
        s++;
    }
    return 0;
}

static void show(const char *what, struct outcome *out) {
    fprintf(stderr, "%s: status 0x%x, stderr:\n%s\n", what, out->status,
        out->err);
}

static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    for(const char *s = text; (s = strstr(s, prefix)) != NULL; s++)
        n++;
    return n;
}

#define PREFIX "libdill: stack overflow in coroutine started at "

static char expected[512];

/* Each scenario puts its go() and the recording of __LINE__ on one line.
   The parent learns the line by running the scenario with want_line set,
   which skips every library call. */
static int want_line;
static int go_line;

static void expect_line(int line) {
    snprintf(expected, sizeof(expected), PREFIX "%s:%d", __FILE__, line);
}

/* ---- Guard page: unbounded recursion. ---- */

static volatile int keep_going = 1;

__attribute__((noinline)) static int bottomless(int n) {
    volatile char pad[512];
    for(int i = 0; i < (int)sizeof(pad); i++)
        pad[i] = (char)(n + i);
    if(!keep_going)
        return 0;
    return bottomless(n + 1) + pad[n % 512];
}

coroutine static void overflow(void) {
    bottomless(0);
}

static void overflow_scenario(void) {
    int h = want_line ? 0 : go(overflow()); go_line = __LINE__;
    (void)h;
}

coroutine static void harmless(void) {
}

/* Another coroutine first, so that the overflowing one is not alone. */
static void overflow_second_scenario(void) {
    int h1 = want_line ? 0 : go(harmless());
    CHECK(h1 >= 0);
    int h2 = want_line ? 0 : go(overflow()); go_line = __LINE__;
    (void)h2;
}

coroutine static void parked(void) {
    msleep(-1);
}

/* A stack whose mapping was given back with MADV_FREE (go(3)) keeps its
   guard page. 192 coroutines fill three mappings; closed in order, the
   first two mappings are given back as the next one empties, and the
   third is kept as the spare. Stacks are reused from the mapping freed
   into last: 64 from the spare, then the 65th from a mapping given back. */
static void overflow_after_release_scenario(void) {
    if(!want_line) {
        static int h[192];
        for(int i = 0; i < 192; i++) CHECK((h[i] = go(parked())) >= 0);
        for(int i = 0; i < 192; i++) CHECK(hclose(h[i]) == 0);
        for(int i = 0; i < 64; i++) CHECK(go(parked()) >= 0);
    }
    int h = want_line ? 0 : go(overflow()); go_line = __LINE__;
    (void)h;
}

static void *overflow_thread(void *arg) {
    (void)arg;
    int h = want_line ? 0 : go(overflow()); go_line = __LINE__;
    (void)h;
    return NULL;
}

static void overflow_in_thread_scenario(void) {
    if(want_line) {
        overflow_thread(NULL);
        return;
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, overflow_thread, NULL) == 0);
    pthread_join(t, NULL);
}

static int line_of(void (*scenario)(void)) {
    want_line = 1;
    go_line = 0;
    scenario();
    want_line = 0;
    CHECK(go_line > 0);
    return go_line;
}

static void check_overflow(const char *what, void (*scenario)(void)) {
    struct outcome *out = malloc(sizeof(*out));
    CHECK(out);
    expect_line(line_of(scenario));
    run_child(scenario, out);
    if(!WIFSIGNALED(out->status) || WTERMSIG(out->status) != SIGSEGV ||
          !has_line(out->err, expected) || count_lines(out->err, PREFIX) != 1) {
        show(what, out);
        fprintf(stderr, "expected the line: %s\n", expected);
    }
    CHECK(WIFSIGNALED(out->status));
    CHECK(WTERMSIG(out->status) == SIGSEGV);
    CHECK(has_line(out->err, expected));
    CHECK(count_lines(out->err, PREFIX) == 1);
    free(out);
}

/* ---- Faults that are not guard-page hits. ---- */

static int *volatile nowhere = NULL;

/* UBSan would report the NULL store itself; the point is the real fault. */
#if defined __clang__ || (defined __GNUC__ && __GNUC__ >= 8)
__attribute__((no_sanitize("null")))
#endif
coroutine static void null_write(void) {
    *nowhere = 1;
}

static void null_scenario(void) {
    /* No handler of the program's own (a sanitizer runtime may have put
       one there before main). */
    signal(SIGSEGV, SIG_DFL);
    int h = go(null_write());
    (void)h;
}

/* Ends the process by a signal of its own (an exit status would be
   replaced by valgrind's error exit code: the NULL write is an error). */
static void own_handler(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    static const char msg[] = "own handler: NULL fault\n";
    static const char other[] = "own handler: other fault\n";
    int null = info->si_addr == NULL;
    if(write(2, null ? msg : other, null ? sizeof(msg) - 1 :
          sizeof(other) - 1) < 0)
        _exit(44);
    raise(null ? SIGUSR2 : SIGUSR1);
    _exit(45);
}

static void chained_scenario(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = own_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if(sigaction(SIGSEGV, &sa, NULL) != 0)
        _exit(101);
    /* The first go(): the library installs its handler now. */
    int h1 = go(harmless());
    CHECK(h1 >= 0);
    int h2 = go(null_write());
    (void)h2;
}

static void test_not_guard(void) {
    struct outcome *out = malloc(sizeof(*out));
    CHECK(out);
    run_child(null_scenario, out);
    if(!WIFSIGNALED(out->status) || WTERMSIG(out->status) != SIGSEGV ||
          strstr(out->err, PREFIX))
        show("NULL write", out);
    CHECK(WIFSIGNALED(out->status));
    CHECK(WTERMSIG(out->status) == SIGSEGV);
    CHECK(strstr(out->err, PREFIX) == NULL);

    run_child(chained_scenario, out);
    if(!WIFSIGNALED(out->status) || WTERMSIG(out->status) != SIGUSR2 ||
          !has_line(out->err, "own handler: NULL fault"))
        show("chained handler", out);
    CHECK(WIFSIGNALED(out->status));
    CHECK(WTERMSIG(out->status) == SIGUSR2);
    CHECK(has_line(out->err, "own handler: NULL fault"));
    CHECK(strstr(out->err, PREFIX) == NULL);
    free(out);
}

/* ---- Canary on caller memory. ---- */

/* The caller buffer sits at the top of an arena, so writing below it only
   hits our own padding. */
static unsigned char arena[16384 + SMALL_STACK] __attribute__((aligned(64)));

/* Fills 8 KiB below the current stack position, covering the bottom of a
   4 KiB buffer and everything between. */
__attribute__((noinline)) static void trample(void) {
    volatile unsigned char big[8192];
    for(size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7 + 3);
}

coroutine static void past_the_bottom(void) {
    trample();
    /* The next switch away checks the canary. */
    yield();
    /* Not reached. */
    _exit(3);
}

static void canary_go_mem_scenario(void) {
    unsigned char *buf = arena + 16384;
    int h = want_line ? 0 : go_mem(past_the_bottom(), buf, SMALL_STACK); go_line = __LINE__;
    if(!want_line)
        _exit(4 + 0 * h);
}

static void canary_bundle_go_mem_scenario(void) {
    unsigned char *buf = arena + 16384;
    int b = want_line ? 0 : bundle();
    CHECK(b >= 0);
    int rc = want_line ? 0 : bundle_go_mem(b, past_the_bottom(), buf, SMALL_STACK); go_line = __LINE__;
    if(!want_line)
        _exit(4 + 0 * rc);
}

/* Below the bottom of a library stack: 4 KiB past its 256 KiB. */
static char *dig_limit;

__attribute__((noinline)) static int dig(void) {
    volatile char pad[512];
    for(size_t i = 0; i < sizeof(pad); i++)
        pad[i] = (char)(i * 5 + 1);
    if((char *)pad > dig_limit)
        return dig() + pad[1];
    return pad[0];
}

coroutine static void past_the_library_bottom(void) {
    char here;
    dig_limit = &here - 256 * 1024 - 4096;
    dig();
    yield();
    _exit(3);
}

static long max_map_count(void) {
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if(f) {
        if(fscanf(f, "%ld", &max) != 1)
            max = 65530;
        fclose(f);
    }
    return max;
}

/* Past the guard pages: more coroutines alive than guards are given. */
static void canary_library_scenario(void) {
    long n = want_line ? 0 : max_map_count() / 2 + 64;
    for(long i = 0; i < n; i++)
        CHECK(go(parked()) >= 0);
    int h = want_line ? 0 : go(past_the_library_bottom()); go_line = __LINE__;
    if(!want_line)
        _exit(4 + 0 * h);
}

static void check_canary(const char *what, void (*scenario)(void));

/* Under AddressSanitizer the writes below the bottom land in the frames of
   the coroutine whose stack is next, which ASan guards with redzones: ASan
   reports the overflow itself, before any switch. Not where go() saves
   its launcher with sigsetjmp (every machine but x86-64 and i386, and the
   portable switch): the launcher's first resume is a siglongjmp, whose
   interceptor clears the redzones of the stack it leaves, that of the
   coroutine next door; the library's canary reports the overflow then. */
#if defined UNDER_ASAN && (defined __x86_64__ || defined __i386__) && \
      !defined DILL_ARCH_FALLBACK
#define ASAN_SEES_LIBRARY_OVERFLOW 1
#endif
static void check_library_canary(const char *what, void (*scenario)(void)) {
#if defined ASAN_SEES_LIBRARY_OVERFLOW
    struct outcome *out = malloc(sizeof(*out));
    CHECK(out);
    run_child(scenario, out);
    const char *asan = "ERROR: AddressSanitizer: stack-buffer-";
    if(!WIFEXITED(out->status) || WEXITSTATUS(out->status) == 0 ||
          !strstr(out->err, asan))
        show(what, out);
    CHECK(WIFEXITED(out->status));
    CHECK(WEXITSTATUS(out->status) != 0);
    CHECK(strstr(out->err, asan) != NULL);
    free(out);
#else
    check_canary(what, scenario);
#endif
}

static void check_canary(const char *what, void (*scenario)(void)) {
    struct outcome *out = malloc(sizeof(*out));
    CHECK(out);
    expect_line(line_of(scenario));
    run_child(scenario, out);
    if(!WIFSIGNALED(out->status) || WTERMSIG(out->status) != SIGABRT ||
          !has_line(out->err, expected) || count_lines(out->err, PREFIX) != 1) {
        show(what, out);
        fprintf(stderr, "expected the line: %s\n", expected);
    }
    CHECK(WIFSIGNALED(out->status));
    CHECK(WTERMSIG(out->status) == SIGABRT);
    CHECK(has_line(out->err, expected));
    CHECK(count_lines(out->err, PREFIX) == 1);
    free(out);
}

/* ---- Many coroutines alive at once. ---- */

static int started;
static int cancelled;
static int received;
static long sum;

coroutine static void sleeper(void) {
    started++;
    CHECK_ERR(msleep(-1), ECANCELED);
    cancelled++;
}

coroutine static void receiver(int ch) {
    started++;
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    sum += v;
    received++;
    CHECK_ERR(msleep(-1), ECANCELED);
    cancelled++;
}

static void test_many(void) {
    int n = sizeof(void *) >= 8 ? 100000 : 10000;
    const char *env = getenv("DILL_TEST_COROUTINES");
    if(env)
        n = atoi(env);
    CHECK(n >= 2);
    int nsleepers = n / 2;
    int nreceivers = n - nsleepers;
    int *handles = malloc(sizeof(int) * (size_t)nsleepers);
    CHECK(handles);
    int chv[2];
    CHECK(chmake(chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < n; i++) {
        if(i % 2 == 0) {
            int h = go(sleeper());
            if(h < 0)
                fprintf(stderr, "go() number %d failed\n", i);
            CHECK(h >= 0);
            handles[i / 2] = h;
        }
        else {
            int rc = bundle_go(b, receiver(chv[1]));
            if(rc != 0)
                fprintf(stderr, "bundle_go() number %d failed\n", i);
            CHECK(rc == 0);
        }
    }
    CHECK(started == n);
    /* Each receiver runs again on its own stack. */
    long expected_sum = 0;
    for(int i = 0; i < nreceivers; i++) {
        CHECK(chsend(chv[0], &i, sizeof(i), -1) == 0);
        expected_sum += i;
    }
    CHECK(yield() == 0);
    CHECK(received == nreceivers);
    CHECK(sum == expected_sum);
    CHECK_ERR(bundle_wait(b, 0), ETIMEDOUT);
    for(int i = 0; i < nsleepers; i++)
        CHECK(hclose(handles[i]) == 0);
    CHECK(cancelled == nsleepers);
    CHECK(hclose(b) == 0);
    CHECK(cancelled == n);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
    free(handles);

    /* And once more, after everything was given back. */
    started = 0;
    cancelled = 0;
    b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < n; i++)
        CHECK(bundle_go(b, sleeper()) == 0);
    CHECK(started == n);
    CHECK(hclose(b) == 0);
    CHECK(cancelled == n);
}

int main(void) {
    /* The fork tests come first: their children must start without any
       library state (the SIGSEGV handler is installed at the first go). */
    check_overflow("overflow", overflow_scenario);
    check_overflow("overflow after another coroutine",
        overflow_second_scenario);
    check_overflow("overflow in a thread", overflow_in_thread_scenario);
    check_overflow("overflow on a stack given back and reused",
        overflow_after_release_scenario);
    test_not_guard();
    check_canary("go_mem canary", canary_go_mem_scenario);
    check_canary("bundle_go_mem canary", canary_bundle_go_mem_scenario);
    if(sizeof(void *) >= 8)
        check_library_canary("library stack canary", canary_library_scenario);
    else
        printf("stack: library stack canary not run: a 32-bit address "
            "space holds fewer stacks than the guard pages given "
            "(vm.max_map_count / 2), so no library stack goes without one\n");
    test_many();
    return 0;
}
