/*
 * tests/go.c: go(). The first handle of a thread is 0; the child runs
 * before go() returns and the launcher resumes only after every coroutine
 * queued ahead of it (spec 3.5); go() returns bundle handles that
 * bundle_go and bundle_wait accept and that must be closed after the
 * coroutine finished; go fails with ECANCELED in a cancelled coroutine and
 * inside a close callback, and then the expression is not evaluated;
 * arguments of many types arrive intact; ~200 KiB of recursion fits in a
 * default stack; a coroutine can outlive the coroutine that launched it.
 */
#include <stdint.h>
#include <string.h>

#include "libdillimpl.h"
#include "check.h"

/* ---- An order log: each coroutine appends a letter. ---- */

static char order[128];
static int norder;

static void note(char c) {
    CHECK(norder < (int)sizeof(order) - 1);
    order[norder++] = c;
    order[norder] = 0;
}

static void reset_order(void) {
    norder = 0;
    order[0] = 0;
}

/* ---- Coroutines used by several tests. ---- */

static int ran;
static int evaluated;

coroutine static void set_ran(int v) {
    ran = v;
}

coroutine static int returns_int(int v) {
    ran = v;
    return v * 2;
}

/* Counts evaluations: used as an argument that must never be evaluated. */
static int side(void) {
    evaluated++;
    return 1;
}

coroutine static void take(int v) {
    evaluated += 100 * v;
}

coroutine static void two_steps(void) {
    note('a');
    CHECK(yield() == 0);
    note('b');
}

coroutine static void step_twice(char c) {
    note(c);
    CHECK(yield() == 0);
    note((char)(c - 'a' + 'A'));
}

coroutine static void blocks_then_notes(int ch, char c) {
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    note(c);
}

/* ---- First handle, child-first, discarded value. ---- */

static void test_first_handle(void) {
    /* Nothing before this touched the library in this thread. */
    int h = go(set_ran(7));
    CHECK(h == 0);
    CHECK(ran == 7);
    /* The coroutine finished: its bundle is empty but alive. */
    CHECK(bundle_wait(h, 0) == 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(bundle_go(h, set_ran(8)) == 0);
    CHECK(ran == 8);
    CHECK(hclose(h) == 0);
    CHECK_ERR(hclose(h), EBADF);

    /* A non-void expression: its value is discarded. */
    h = go(returns_int(9));
    CHECK(h >= 0);
    CHECK(ran == 9);
    CHECK(hclose(h) == 0);

    /* Several live handles are distinct. */
    int chv[2];
    CHECK(chmake(chv) == 0);
    int h1 = go(blocks_then_notes(chv[1], 'p'));
    int h2 = go(blocks_then_notes(chv[1], 'q'));
    CHECK(h1 >= 0 && h2 >= 0 && h1 != h2);
    CHECK(h1 != chv[0] && h1 != chv[1] && h2 != chv[0] && h2 != chv[1]);
    reset_order();
    int v = 1;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(h1, -1) == 0);
    CHECK(bundle_wait(h2, -1) == 0);
    CHECK(strcmp(order, "pq") == 0);
    CHECK(hclose(h1) == 0);
    CHECK(hclose(h2) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

static void test_child_first(void) {
    reset_order();
    int h = go(two_steps());
    CHECK(h >= 0);
    /* The child ran up to its first suspension before go() returned. */
    CHECK(strcmp(order, "a") == 0);
    note('m');
    CHECK(yield() == 0);
    note('n');
    CHECK(strcmp(order, "ambn") == 0);
    CHECK(hclose(h) == 0);

    /* A child that blocks: go() returns as soon as it blocked. */
    int chv[2];
    CHECK(chmake(chv) == 0);
    reset_order();
    h = go(blocks_then_notes(chv[1], 'c'));
    CHECK(h >= 0);
    CHECK(strcmp(order, "") == 0);
    int v = 5;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    /* The receiver was only queued; the sender keeps running. */
    CHECK(strcmp(order, "") == 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(strcmp(order, "c") == 0);
    CHECK(hclose(h) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* Spec 3.5 item 2: go() returns only after every coroutine that was queued
   ahead of the launcher has had its turn. */
static void test_launcher_queues_behind(void) {
    reset_order();
    int hx = go(step_twice('x'));
    /* x yielded: queue is [x] once main runs again. */
    CHECK(strcmp(order, "x") == 0);
    int hy = go(step_twice('y'));
    /* y ran, then x (queued ahead of main) finished, then main resumed. */
    CHECK(strcmp(order, "xyX") == 0);
    note('m');
    CHECK(yield() == 0);
    CHECK(strcmp(order, "xyXmY") == 0);
    CHECK(hclose(hx) == 0);
    CHECK(hclose(hy) == 0);
}

coroutine static void blocks_expect_epipe(int ch, char c) {
    int v;
    CHECK_ERR(chrecv(ch, &v, sizeof(v), -1), EPIPE);
    note(c);
}

static void test_launcher_queues_behind_woken(void) {
    reset_order();
    int chv[2];
    CHECK(chmake(chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, blocks_expect_epipe(chv[1], '1')) == 0);
    CHECK(bundle_go(b, blocks_expect_epipe(chv[1], '2')) == 0);
    CHECK(bundle_go(b, blocks_expect_epipe(chv[1], '3')) == 0);
    CHECK(chdone(chv[0]) == 0);
    CHECK(strcmp(order, "") == 0);
    int h = go(step_twice('a'));
    CHECK(h >= 0);
    /* a ran first, then the three woken receivers that were queued
       ahead of main, then main; a was queued behind main. */
    CHECK(strcmp(order, "a123") == 0);
    CHECK(yield() == 0);
    CHECK(strcmp(order, "a123A") == 0);
    CHECK(hclose(h) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* ---- ECANCELED: in a cancelled coroutine and in a close callback. ---- */

static int gbundle = -1;
static char membuf[8192];
static int cancelled_checked;

coroutine static void cancelled_launcher(void) {
    CHECK_ERR(msleep(-1), ECANCELED);
    CHECK_ERR(go(take(side())), ECANCELED);
    CHECK_ERR(go_mem(take(side()), membuf, sizeof(membuf)), ECANCELED);
    CHECK_ERR(bundle_go(gbundle, take(side())), ECANCELED);
    CHECK_ERR(bundle_go_mem(gbundle, take(side()), membuf, sizeof(membuf)),
        ECANCELED);
    /* ECANCELED comes before any argument check. */
    CHECK_ERR(bundle_go(123456, take(side())), ECANCELED);
    CHECK_ERR(go_mem(take(side()), membuf, 0), ECANCELED);
    CHECK(evaluated == 0);
    cancelled_checked = 1;
}

struct probe {
    struct hvfs vfs;
    int calls;
    int rc[5];
    int err[5];
};

static void *probe_query(struct hvfs *vfs, const void *type) {
    (void)vfs;
    (void)type;
    errno = ENOTSUP;
    return NULL;
}

static void probe_close(struct hvfs *vfs) {
    struct probe *p = (struct probe *)vfs;
    p->calls++;
    errno = 0;
    p->rc[0] = go(take(side()));
    p->err[0] = errno;
    errno = 0;
    p->rc[1] = go_mem(take(side()), membuf, sizeof(membuf));
    p->err[1] = errno;
    errno = 0;
    p->rc[2] = bundle_go(gbundle, take(side()));
    p->err[2] = errno;
    errno = 0;
    p->rc[3] = bundle_go_mem(gbundle, take(side()), membuf, sizeof(membuf));
    p->err[3] = errno;
    errno = 0;
    p->rc[4] = bundle_go(-1, take(side()));
    p->err[4] = errno;
}

static void check_probe(struct probe *p) {
    CHECK(p->calls == 1);
    for(int i = 0; i < 5; i++) {
        CHECK(p->rc[i] == -1);
        CHECK(p->err[i] == ECANCELED);
    }
}

coroutine static void close_probe_in_coroutine(void) {
    struct probe p = {{probe_query, probe_close}, 0, {0}, {0}};
    int h = hmake(&p.vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    check_probe(&p);
    /* Outside the callback this coroutine may launch again. */
    int h2 = go(set_ran(21));
    CHECK(h2 >= 0);
    CHECK(ran == 21);
    CHECK(hclose(h2) == 0);
    cancelled_checked = 2;
}

static void test_ecanceled(void) {
    gbundle = bundle();
    CHECK(gbundle >= 0);
    evaluated = 0;
    cancelled_checked = 0;
    int h = go(cancelled_launcher());
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(cancelled_checked == 1);
    CHECK(evaluated == 0);

    /* The close callback of a handle closed by the main coroutine. */
    struct probe p = {{probe_query, probe_close}, 0, {0}, {0}};
    h = hmake(&p.vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    check_probe(&p);
    CHECK(evaluated == 0);

    /* The same inside a launched coroutine. */
    h = go(close_probe_in_coroutine());
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(cancelled_checked == 2);
    CHECK(evaluated == 0);
    CHECK(hclose(h) == 0);

    /* After the callback the main coroutine launches normally. */
    h = go(take(2));
    CHECK(h >= 0);
    CHECK(evaluated == 200);
    CHECK(hclose(h) == 0);
    CHECK(bundle_wait(gbundle, 0) == 0);
    CHECK(hclose(gbundle) == 0);
}

/* ---- Arguments of many types. ---- */

struct mixed {
    char c;
    long long l; /* a value beyond 32 bits, also where long has them */
    double d;
    char s[40];
    short sh;
};

static int args_ok;

coroutine static void many_args(double d, struct mixed m, int i1, int i2,
      int i3, int i4, int i5, int i6, int i7, int i8, float f, int64_t big,
      const char *str, char ch, unsigned char uc, long double ld) {
    CHECK(d == 3.25);
    CHECK(m.c == 'k');
    CHECK(m.l == -1234567890123LL);
    CHECK(m.d == -0.5);
    CHECK(strcmp(m.s, "struct passed by value") == 0);
    CHECK(m.sh == -7);
    CHECK(i1 == 1 && i2 == -2 && i3 == 3 && i4 == -4);
    CHECK(i5 == 5 && i6 == -6 && i7 == 7 && i8 == -8);
    CHECK(f == 1.5f);
    CHECK(big == INT64_MIN + 5);
    CHECK(strcmp(str, "string") == 0);
    CHECK(ch == 'z');
    CHECK(uc == 250);
    CHECK(ld == 2.75L);
    /* Still intact after a suspension. */
    CHECK(yield() == 0);
    CHECK(d == 3.25 && m.sh == -7 && i8 == -8 && big == INT64_MIN + 5);
    CHECK(strcmp(m.s, "struct passed by value") == 0);
    args_ok++;
}

coroutine static void eight_ints(int a, int b, int c, int d, int e, int f,
      int g, int h) {
    CHECK(a == 10 && b == 20 && c == 30 && d == 40);
    CHECK(e == 50 && f == 60 && g == 70 && h == 80);
    args_ok++;
}

coroutine static void relaunch(int depth, double x) {
    /* Locals of a coroutine passed to a grandchild. */
    struct mixed m;
    memset(&m, 0, sizeof(m));
    m.c = 'k';
    m.l = -1234567890123LL;
    m.d = -0.5;
    strcpy(m.s, "struct passed by value");
    m.sh = -7;
    int h = go(many_args(x, m, 1, -2, 3, -4, 5, -6, 7, -8, 1.5f,
        INT64_MIN + 5, "string", 'z', 250, 2.75L));
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(hclose(h) == 0);
    if(depth > 0) {
        int h2 = go(relaunch(depth - 1, x));
        CHECK(h2 >= 0);
        CHECK(bundle_wait(h2, -1) == 0);
        CHECK(hclose(h2) == 0);
    }
}

static void test_arguments(void) {
    struct mixed m;
    memset(&m, 0, sizeof(m));
    m.c = 'k';
    m.l = -1234567890123LL;
    m.d = -0.5;
    strcpy(m.s, "struct passed by value");
    m.sh = -7;
    double d = 3.25;
    args_ok = 0;
    int h = go(many_args(d, m, 1, -2, 3, -4, 5, -6, 7, -8, 1.5f,
        INT64_MIN + 5, "string", 'z', 250, 2.75L));
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(args_ok == 1);
    CHECK(hclose(h) == 0);

    int a = 10, b = 20, c = 30, e = 50, g = 70;
    h = go(eight_ints(a, b, c, 40, e, 60, g, 80));
    CHECK(h >= 0);
    CHECK(args_ok == 2);
    CHECK(hclose(h) == 0);

    h = go(relaunch(3, d));
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(args_ok == 6);
    CHECK(hclose(h) == 0);
}

/* ---- Deep recursion on the default stack. ---- */

#define DEPTH 200
#define FRAME 1000

static uintptr_t deepest;

__attribute__((noinline)) static int deep(int n) {
    volatile char pad[FRAME];
    for(int i = 0; i < FRAME; i++)
        pad[i] = (char)(n + i);
    if(n == 0) {
        deepest = (uintptr_t)pad;
        return 1;
    }
    int r = deep(n - 1);
    /* Our frame survived the deeper calls. */
    return r + (pad[FRAME / 2] == (char)(n + FRAME / 2) ? 1 : 0);
}

static int deep_result;
static uintptr_t deep_top;

coroutine static void recurse(void) {
    volatile char top;
    deep_top = (uintptr_t)&top;
    deep_result = deep(DEPTH);
    /* And the stack is still usable for library calls. */
    CHECK(yield() == 0);
}

static void test_deep_recursion(void) {
    int h = go(recurse());
    CHECK(h >= 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(deep_result == DEPTH + 1);
    /* At least 195 KiB of the coroutine's stack were really used. */
    CHECK(deep_top > deepest);
    CHECK(deep_top - deepest >= (uintptr_t)DEPTH * FRAME);
    CHECK(hclose(h) == 0);
}

/* ---- A coroutine outlives its launcher. ---- */

static int grandchild_handle = -1;
static int grandchild_got;

coroutine static void grandchild(int ch) {
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    grandchild_got = v;
}

coroutine static void short_parent(int ch) {
    grandchild_handle = go(grandchild(ch));
    CHECK(grandchild_handle >= 0);
}

static void test_outlive(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    int hp = go(short_parent(chv[1]));
    CHECK(hp >= 0);
    /* go() returned to main as soon as the grandchild blocked, before the
       parent's own go() returned (the parent was queued behind main). */
    CHECK(grandchild_handle == -1);
    CHECK(bundle_wait(hp, -1) == 0);
    CHECK(grandchild_handle >= 0);
    /* The launcher has finished: its bundle is empty. */
    CHECK(bundle_wait(hp, 0) == 0);
    CHECK(hclose(hp) == 0);
    CHECK(grandchild_got == 0);
    int v = 42;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(grandchild_handle, -1) == 0);
    CHECK(grandchild_got == 42);
    CHECK(hclose(grandchild_handle) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

int main(void) {
    test_first_handle();
    test_child_first();
    test_launcher_queues_behind();
    test_launcher_queues_behind_woken();
    test_ecanceled();
    test_arguments();
    test_deep_recursion();
    test_outlive();
    return 0;
}
