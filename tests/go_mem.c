/*
 * tests/go_mem.c: go_mem and bundle_go_mem with caller memory. A 4 KiB
 * buffer works for a coroutine that nests calls and blocks (yield, chrecv,
 * msleep), also when it is unaligned or on the caller's own stack; the
 * coroutine stays inside the buffer and nothing around it is written; too
 * small buffers (0, 63, 100, 1024 bytes) fail with ENOMEM, do not evaluate
 * the expression and leave no live handle behind; mem == NULL means a
 * library stack like go(); the handle is closed after the coroutine
 * finished and the buffer is then reused; bundle_go_mem launches into an
 * existing bundle and fails with EBADF and ENOTSUP.
 */
#include <stdint.h>
#include <string.h>

#include "libdill.h"
#include "check.h"

#if defined __has_include
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* Just above the library's minimum, which grows by 4 KiB under ASan too. */
#define TINY_STACK (SMALL_STACK - 2048)

/* Coroutines on small stacks must not call fprintf (CHECK's failure path
   needs more stack than they have): they record the first failing line. */
static int bad_line;
#define SOFT(expr) do { if(!(expr) && !bad_line) bad_line = __LINE__; } while(0)

static void check_soft(void) {
    if(bad_line) {
        fprintf(stderr, "%s:%d: check in a coroutine failed\n", __FILE__,
            bad_line);
        exit(1);
    }
}

static int evaluated;
static int side(void) {
    evaluated++;
    return 1;
}

coroutine static void take(int v) {
    evaluated += 100 * v;
}

/* A few nested calls with locals, each checking it is inside [lo, hi). */
__attribute__((noinline)) static int nest(int n, char *lo, char *hi) {
    volatile char local[96];
    for(int i = 0; i < (int)sizeof(local); i++)
        local[i] = (char)n;
    SOFT((char *)local >= lo && (char *)local + sizeof(local) <= hi);
    int r = n == 0 ? 0 : nest(n - 1, lo, hi);
    return r + local[50];
}

static int small_done;

coroutine static void small_stack(char *lo, char *hi, int ch) {
    volatile char here = 0;
    SOFT((char *)&here >= lo && (char *)&here < hi);
    SOFT(nest(5, lo, hi) == 5 + 4 + 3 + 2 + 1);
    SOFT(yield() == 0);
    int v = 0;
    SOFT(chrecv(ch, &v, sizeof(v), -1) == 0);
    SOFT(v == 77);
    /* The scheduler's poll runs on this stack too. */
    SOFT(msleep(now() + 2) == 0);
    SOFT(msleep(0) == 0);
    SOFT(nest(3, lo, hi) == 3 + 2 + 1);
    small_done++;
}

coroutine static void quick(void) {
    small_done++;
}

/* An arena with a known pattern around the caller's buffer. */
#define PAD 4096
static unsigned char arena[PAD + SMALL_STACK + 1 + PAD] __attribute__((aligned(64)));

static void fill_arena(void) {
    for(size_t i = 0; i < sizeof(arena); i++)
        arena[i] = (unsigned char)(i * 7 + 13);
}

/* Everything outside [buf, buf + len) still holds the pattern. */
static void check_arena(unsigned char *buf, size_t len) {
    for(size_t i = 0; i < sizeof(arena); i++) {
        if(arena + i >= buf && arena + i < buf + len)
            continue;
        CHECK(arena[i] == (unsigned char)(i * 7 + 13));
    }
}

/* Runs small_stack on buf and checks it; go_mem when bndl < 0. */
static void run_small(unsigned char *buf, size_t len, int bndl) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    small_done = 0;
    bad_line = 0;
    int h;
    char *lo = (char *)buf, *hi = (char *)buf + len;
    if(bndl < 0) {
        h = go_mem(small_stack(lo, hi, chv[1]), buf, len);
        CHECK(h >= 0);
    }
    else {
        CHECK(bundle_go_mem(bndl, small_stack(lo, hi, chv[1]), buf, len)
            == 0);
        h = bndl;
    }
    check_soft();
    int v = 77;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(h, -1) == 0);
    check_soft();
    CHECK(small_done == 1);
    if(bndl < 0)
        CHECK(hclose(h) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

static void test_4k(void) {
    /* Aligned, in static memory. */
    fill_arena();
    run_small(arena + PAD, SMALL_STACK, -1);
    check_arena(arena + PAD, SMALL_STACK);

    /* Unaligned: buf + 1. */
    fill_arena();
    run_small(arena + PAD + 1, SMALL_STACK, -1);
    check_arena(arena + PAD + 1, SMALL_STACK);

    /* On the heap. */
    unsigned char *heap = malloc(SMALL_STACK + 1);
    CHECK(heap);
    run_small(heap + 1, SMALL_STACK, -1);
    free(heap);

    /* On the caller's own stack. Valgrind cannot tell such a stack from
       frames of the enclosing one (it takes the switches for frame pops
       and pushes and reports the launcher's locals), so only natively. */
    if(!RUNNING_ON_VALGRIND) {
        char onstack[SMALL_STACK + 1];
        run_small((unsigned char *)onstack + 1, SMALL_STACK, -1);
    }

    /* The same with bundle_go_mem into a bundle. */
    int b = bundle();
    CHECK(b >= 0);
    fill_arena();
    run_small(arena + PAD + 1, SMALL_STACK, b);
    check_arena(arena + PAD + 1, SMALL_STACK);
    fill_arena();
    run_small(arena + PAD, SMALL_STACK, b);
    check_arena(arena + PAD, SMALL_STACK);
    CHECK(hclose(b) == 0);
}

/* Just above the documented minimum (64-byte bundle area, a record of at
   most 256 bytes, 1 KiB of stack, alignment) a trivial coroutine works. */
static void test_2k(void) {
    fill_arena();
    small_done = 0;
    int h = go_mem(quick(), arena + PAD + 3, TINY_STACK);
    CHECK(h >= 0);
    CHECK(small_done == 1);
    CHECK(hclose(h) == 0);
    check_arena(arena + PAD + 3, TINY_STACK);
    /* With 4-byte alignment (i386) that bundle began at PAD + 4. */
    fill_arena();
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go_mem(b, quick(), arena + PAD + 5, TINY_STACK) == 0);
    CHECK(small_done == 2);
    CHECK(hclose(b) == 0);
    check_arena(arena + PAD + 5, TINY_STACK);
}

/* Every number between two fresh handles is dead: a failed launch left
   nothing open. */
static void check_no_live_between(int before, int after) {
    for(int k = before + 1; k < after; k++)
        CHECK_ERR(hclose(k), EBADF);
}

static void test_too_small(void) {
    static const size_t go_sizes[] = {0, 1, 63, 64, 100, 320, 1024};
    static const size_t bgo_sizes[] = {0, 1, 63, 100, 256, 1024};
    evaluated = 0;
    fill_arena();
    int before = bundle();
    CHECK(before >= 0);
    for(size_t i = 0; i < sizeof(go_sizes) / sizeof(go_sizes[0]); i++) {
        CHECK_ERR(go_mem(take(side()), arena + PAD, go_sizes[i]), ENOMEM);
        CHECK_ERR(go_mem(take(side()), arena + PAD + 1, go_sizes[i]),
            ENOMEM);
    }
    for(size_t i = 0; i < sizeof(bgo_sizes) / sizeof(bgo_sizes[0]); i++) {
        CHECK_ERR(bundle_go_mem(before, take(side()), arena + PAD,
            bgo_sizes[i]), ENOMEM);
        CHECK_ERR(bundle_go_mem(before, take(side()), arena + PAD + 1,
            bgo_sizes[i]), ENOMEM);
    }
    CHECK(evaluated == 0);
    int after = bundle();
    CHECK(after >= 0);
    check_no_live_between(before, after);
    /* The bundle that took the failed launches is still empty. */
    CHECK(bundle_wait(before, 0) == 0);
    CHECK(hclose(before) == 0);
    CHECK(hclose(after) == 0);
    /* A failed launch writes nothing outside its (too small) buffer. */
    check_arena(arena + PAD, 1025);
}

/* ---- mem == NULL: a library stack. ---- */

#define DEPTH 150
#define FRAME 1000
__attribute__((noinline)) static int deep(int n) {
    volatile char pad[FRAME];
    for(int i = 0; i < FRAME; i++)
        pad[i] = (char)(n + i);
    if(n == 0)
        return 1;
    int r = deep(n - 1);
    return r + (pad[FRAME / 2] == (char)(n + FRAME / 2) ? 1 : 0);
}

static int deep_result;
coroutine static void recurse(void) {
    deep_result = deep(DEPTH);
    CHECK(yield() == 0);
}

static void test_null_mem(void) {
    deep_result = 0;
    int h = go_mem(recurse(), NULL, 0);
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(deep_result == DEPTH + 1);
    /* The handle is a normal bundle. */
    CHECK(bundle_go(h, recurse()) == 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(hclose(h) == 0);
    /* len is ignored when mem is NULL. */
    deep_result = 0;
    h = go_mem(recurse(), NULL, 100);
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(deep_result == DEPTH + 1);
    CHECK(hclose(h) == 0);
    int b = bundle();
    CHECK(b >= 0);
    deep_result = 0;
    CHECK(bundle_go_mem(b, recurse(), NULL, 0) == 0);
    CHECK(bundle_go_mem(b, recurse(), NULL, 7) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(deep_result == DEPTH + 1);
    CHECK(hclose(b) == 0);
}

/* ---- The handle outlives the coroutine; the buffer is reused. ---- */

static unsigned char reuse[SMALL_STACK + 64];

coroutine static void blocker(int ch, int expected_errno) {
    int v;
    errno = 0;
    int rc = chrecv(ch, &v, sizeof(v), -1);
    SOFT(expected_errno ? rc == -1 && errno == expected_errno : rc == 0);
    small_done++;
}

static void test_close_after_finish(void) {
    small_done = 0;
    bad_line = 0;
    for(int round = 0; round < 20; round++) {
        int h = go_mem(quick(), reuse + round % 7, SMALL_STACK);
        CHECK(h >= 0);
        CHECK(small_done == 2 * round + 1);
        /* Finished: the bundle in the buffer is still alive and usable. */
        CHECK(bundle_wait(h, 0) == 0);
        CHECK(bundle_go(h, quick()) == 0);
        CHECK(small_done == 2 * round + 2);
        CHECK(hclose(h) == 0);
        CHECK_ERR(hclose(h), EBADF);
    }
    /* A go_mem bundle accepts more caller-memory coroutines. */
    static unsigned char more[3][SMALL_STACK];
    int chv[2];
    CHECK(chmake(chv) == 0);
    small_done = 0;
    int h = go_mem(blocker(chv[1], 0), reuse, sizeof(reuse));
    CHECK(h >= 0);
    CHECK(bundle_go_mem(h, blocker(chv[1], 0), more[0], SMALL_STACK) == 0);
    CHECK(bundle_go_mem(h, blocker(chv[1], 0), more[1] + 1, SMALL_STACK - 1) == 0);
    CHECK(bundle_go_mem(h, blocker(chv[1], 0), more[2] + 3, SMALL_STACK - 3) == 0);
    int v = 1;
    for(int i = 0; i < 4; i++)
        CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(h, -1) == 0);
    check_soft();
    CHECK(small_done == 4);
    CHECK(hclose(h) == 0);

    /* Closing while they still run cancels them; the buffers are free to
       reuse afterwards. */
    small_done = 0;
    h = go_mem(blocker(chv[1], ECANCELED), reuse, sizeof(reuse));
    CHECK(h >= 0);
    CHECK(bundle_go_mem(h, blocker(chv[1], ECANCELED), more[0], SMALL_STACK) == 0);
    CHECK(small_done == 0);
    CHECK(hclose(h) == 0);
    check_soft();
    CHECK(small_done == 2);
    memset(reuse, 0xee, sizeof(reuse));
    memset(more, 0xee, sizeof(more));
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* ---- bundle_go_mem errors. ---- */

static void test_bundle_go_mem_errors(void) {
    static unsigned char buf[SMALL_STACK];
    evaluated = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(hclose(b) == 0);
    CHECK_ERR(bundle_go_mem(b, take(side()), buf, sizeof(buf)), EBADF);
    CHECK_ERR(bundle_go_mem(123456, take(side()), buf, sizeof(buf)), EBADF);
    CHECK_ERR(bundle_go_mem(b, take(side()), NULL, 0), EBADF);
    int chv[2];
    CHECK(chmake(chv) == 0);
    CHECK_ERR(bundle_go_mem(chv[0], take(side()), buf, sizeof(buf)),
        ENOTSUP);
    CHECK_ERR(bundle_go_mem(chv[1], take(side()), NULL, 0), ENOTSUP);
    CHECK(evaluated == 0);
    /* A negative bundle number creates a new bundle, using the first 64
       bytes of the buffer for it, like go_mem. */
    int h = bundle_go_mem(-1, take(3), buf, sizeof(buf));
    CHECK(h >= 0);
    CHECK(evaluated == 300);
    CHECK(bundle_wait(h, 0) == 0);
    CHECK(hclose(h) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

int main(void) {
    test_4k();
    test_2k();
    test_too_small();
    test_null_mem();
    test_close_after_finish();
    test_bundle_go_mem_errors();
    return 0;
}
