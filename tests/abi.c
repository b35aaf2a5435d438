/*
 * tests/abi.c: the binary launch protocol (spec 4). Coroutines are launched
 * only through tests/abi_launch.h, a copy of the launch sequence of each
 * architecture written from the spec without libdill.h, as an already
 * compiled program would. Covered: dill_unoptimisable exists, starts NULL
 * and is written by the alloca stack move only; the first handle is 0 and the child runs before the launch returns; go, go_mem
 * (unaligned caller memory), bundle_go and bundle_go_mem into a
 * dill_bundle() and into a go handle, a negative bundle number creating a
 * bundle; prologue failures (EBADF, ENOTSUP, ENOMEM) skip the call;
 * arguments of several types; callee-saved registers of the launcher
 * survive, also in a function built without optimisation; channel
 * ping-pong between such coroutines; cancellation through dill_hclose, in
 * launch order; many launches reusing stacks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "abi_launch.h"
#include "check.h"

static char order[64];
static int norder;

static void note(char c) {
    CHECK(norder < (int)sizeof(order) - 1);
    order[norder++] = c;
    order[norder] = 0;
}

static int evaluated;
static int side(void) {
    evaluated++;
    return 1;
}

ABI_COROUTINE static void take(int v) {
    evaluated += 100 * v;
}

ABI_COROUTINE static void steps(char c) {
    note(c);
    CHECK(dill_yield() == 0);
    note((char)(c - 'a' + 'A'));
}

static void test_basic(void) {
    /* The three symbols a compiled go() refers to are exported. */
    CHECK(&dill_prologue != NULL && &dill_epilogue != NULL);
    CHECK(dill_unoptimisable == NULL);
    norder = 0;
    int h = ABI_GO(steps('a'));
    /* Nothing else used the library before: the first handle is 0. */
    CHECK(h == 0);
    CHECK(strcmp(order, "a") == 0);
    int h2 = ABI_GO(steps('b'));
    CHECK(h2 > 0);
    CHECK(strcmp(order, "abA") == 0);
    CHECK(dill_yield() == 0);
    CHECK(strcmp(order, "abAB") == 0);
    CHECK(dill_bundle_wait(h, 0) == 0);
    CHECK(dill_hclose(h) == 0);
    CHECK(dill_hclose(h2) == 0);
    /* Only the alloca stack move writes it. */
    CHECK((dill_unoptimisable != NULL) == ABI_MOVE_BY_ALLOCA);
}

/* ---- Bundles and caller memory. ---- */

static int finished;

ABI_COROUTINE static void finish(int delay_turns) {
    for(int i = 0; i < delay_turns; i++)
        CHECK(dill_yield() == 0);
    finished++;
}

static unsigned char mem[4][SMALL_STACK + 16];

static void test_bundles(void) {
    finished = 0;
    int b = dill_bundle();
    CHECK(b >= 0);
    CHECK(ABI_BUNDLE_GO(b, finish(2)) == 0);
    CHECK(ABI_BUNDLE_GO(b, finish(0)) == 0);
    CHECK(ABI_BUNDLE_GO_MEM(b, finish(3), mem[0] + 1, SMALL_STACK) == 0);
    CHECK(ABI_BUNDLE_GO_MEM(b, finish(1), mem[1] + 7, SMALL_STACK) == 0);
    CHECK(dill_bundle_wait(b, -1) == 0);
    CHECK(finished == 4);
    CHECK(dill_hclose(b) == 0);

    /* go_mem on unaligned memory, and more into its handle. */
    int h = ABI_GO_MEM(finish(1), mem[2] + 3, SMALL_STACK);
    CHECK(h >= 0);
    CHECK(ABI_BUNDLE_GO(h, finish(2)) == 0);
    CHECK(ABI_BUNDLE_GO_MEM(h, finish(0), mem[3] + 5, SMALL_STACK) == 0);
    CHECK(dill_bundle_wait(h, -1) == 0);
    CHECK(finished == 7);
    CHECK(dill_hclose(h) == 0);

    /* A negative bundle number makes a new bundle. */
    h = ABI_BUNDLE_GO(-3, finish(0));
    CHECK(h >= 0);
    CHECK(finished == 8);
    CHECK(dill_hclose(h) == 0);
}

static void test_failures(void) {
    evaluated = 0;
    int b = dill_bundle();
    CHECK(b >= 0);
    CHECK(dill_hclose(b) == 0);
    CHECK_ERR(ABI_BUNDLE_GO(b, take(side())), EBADF);
    CHECK_ERR(ABI_BUNDLE_GO_MEM(b, take(side()), mem[0], SMALL_STACK), EBADF);
    int chv[2];
    CHECK(dill_chmake(chv) == 0);
    CHECK_ERR(ABI_BUNDLE_GO(chv[0], take(side())), ENOTSUP);
    CHECK_ERR(ABI_GO_MEM(take(side()), mem[0], 10), ENOMEM);
    CHECK_ERR(ABI_GO_MEM(take(side()), mem[0], 0), ENOMEM);
    CHECK(evaluated == 0);
    int h = ABI_GO(take(2));
    CHECK(h >= 0);
    CHECK(evaluated == 200);
    CHECK(dill_hclose(h) == 0);
    CHECK(dill_hclose(chv[0]) == 0);
    CHECK(dill_hclose(chv[1]) == 0);
}

/* ---- Arguments. ---- */

struct pair {
    long a;
    char s[24];
};

static int args_ok;

ABI_COROUTINE static void args(struct pair p, int i1, int i2, int i3,
      int i4, int i5, int i6, int i7, int i8, double d, const char *str) {
    CHECK(p.a == -99 && strcmp(p.s, "by value") == 0);
    CHECK(i1 == 1 && i2 == 2 && i3 == 3 && i4 == 4);
    CHECK(i5 == 5 && i6 == 6 && i7 == 7 && i8 == 8);
    CHECK(d == 0.125);
    CHECK(strcmp(str, "text") == 0);
    CHECK(dill_yield() == 0);
    CHECK(p.a == -99 && i8 == 8 && d == 0.125);
    args_ok++;
}

static void test_args(void) {
    struct pair p = {-99, "by value"};
    int four = 4;
    args_ok = 0;
    int h = ABI_GO(args(p, 1, 2, 3, four, 5, 6, 7, 8, 0.125, "text"));
    CHECK(h >= 0);
    CHECK(dill_bundle_wait(h, -1) == 0);
    CHECK(args_ok == 1);
    CHECK(dill_hclose(h) == 0);
}

/* ---- Callee-saved registers of the launcher. ---- */

ABI_COROUTINE static void park(int ch) {
    int v;
    CHECK(dill_chrecv(ch, &v, sizeof(v), -1) == 0);
}

static volatile long seed_source = 12345;

/* Many values live across the launches: the compiler keeps some of them in
   rbx and r12-r15, which only the library's restore brings back. */
__attribute__((noinline)) static long pressure(int ch, int *handles) {
    long s = seed_source;
    long a = s * 3, b = s * 5 + 1, c = s * 7 + 2, d = s * 11 + 3;
    long e = s * 13 + 4, f = s * 17 + 5, g = s * 19 + 6;
    handles[0] = ABI_GO(park(ch));
    a += b; b += c; c += d; d += e; e += f; f += g; g += a;
    handles[1] = ABI_GO(park(ch));
    a ^= g; b ^= f; c ^= e;
    handles[2] = ABI_GO(park(ch));
    return a * 2 + b * 3 + c * 5 + d * 7 + e * 11 + f * 13 + g * 17;
}

static long pressure_expected(void) {
    long s = seed_source;
    long a = s * 3, b = s * 5 + 1, c = s * 7 + 2, d = s * 11 + 3;
    long e = s * 13 + 4, f = s * 17 + 5, g = s * 19 + 6;
    a += b; b += c; c += d; d += e; e += f; f += g; g += a;
    a ^= g; b ^= f; c ^= e;
    return a * 2 + b * 3 + c * 5 + d * 7 + e * 11 + f * 13 + g * 17;
}

#if defined __GNUC__ && !defined __clang__
#define ABI_NO_OPT __attribute__((noinline, optimize("O0")))
#else
#define ABI_NO_OPT __attribute__((noinline, optnone))
#endif

ABI_NO_OPT static long unoptimised(int ch, int *handles) {
    long a = seed_source, b = a + 1;
    handles[0] = ABI_GO(park(ch));
    b += a;
    handles[1] = ABI_BUNDLE_GO(handles[0], park(ch));
    return a + b;
}

static void release(int ch, int n) {
    int v = 1;
    for(int i = 0; i < n; i++)
        CHECK(dill_chsend(ch, &v, sizeof(v), -1) == 0);
}

static void test_registers(void) {
    int chv[2];
    CHECK(dill_chmake(chv) == 0);
    int handles[3];
    long r = pressure(chv[1], handles);
    CHECK(r == pressure_expected());
    for(int i = 0; i < 3; i++)
        CHECK(handles[i] >= 0);
    release(chv[0], 3);
    for(int i = 0; i < 3; i++) {
        CHECK(dill_bundle_wait(handles[i], -1) == 0);
        CHECK(dill_hclose(handles[i]) == 0);
    }
    r = unoptimised(chv[1], handles);
    CHECK(r == seed_source * 3 + 1);
    CHECK(handles[0] >= 0);
    CHECK(handles[1] == 0);
    release(chv[0], 2);
    CHECK(dill_bundle_wait(handles[0], -1) == 0);
    CHECK(dill_hclose(handles[0]) == 0);
    CHECK(dill_hclose(chv[0]) == 0);
    CHECK(dill_hclose(chv[1]) == 0);
}

/* ---- Channel ping-pong between launched coroutines. ---- */

#define ROUNDS 10000

static long ping_sum;

ABI_COROUTINE static void ponger(int ch) {
    while(1) {
        int v;
        int rc = dill_chrecv(ch, &v, sizeof(v), -1);
        if(rc != 0) {
            CHECK(errno == EPIPE);
            return;
        }
        v = v * 2;
        CHECK(dill_chsend(ch, &v, sizeof(v), -1) == 0);
    }
}

ABI_COROUTINE static void pinger(int ch) {
    for(int i = 0; i < ROUNDS; i++) {
        int v = i;
        CHECK(dill_chsend(ch, &v, sizeof(v), -1) == 0);
        CHECK(dill_chrecv(ch, &v, sizeof(v), -1) == 0);
        CHECK(v == 2 * i);
        ping_sum += v;
    }
    CHECK(dill_chdone(ch) == 0);
}

/* Launches the pair itself, from inside a coroutine. */
ABI_COROUTINE static void match(void) {
    int chv[2];
    CHECK(dill_chmake(chv) == 0);
    int b = dill_bundle();
    CHECK(b >= 0);
    CHECK(ABI_BUNDLE_GO(b, ponger(chv[1])) == 0);
    CHECK(ABI_BUNDLE_GO(b, pinger(chv[0])) == 0);
    CHECK(dill_bundle_wait(b, -1) == 0);
    CHECK(dill_hclose(b) == 0);
    CHECK(dill_hclose(chv[0]) == 0);
    CHECK(dill_hclose(chv[1]) == 0);
}

static void test_ping_pong(void) {
    ping_sum = 0;
    int h = ABI_GO(match());
    CHECK(h >= 0);
    CHECK(dill_bundle_wait(h, -1) == 0);
    CHECK(ping_sum == (long)ROUNDS * (ROUNDS - 1));
    CHECK(dill_hclose(h) == 0);
}

/* ---- Cancellation through dill_hclose. ---- */

static int cancel_log[8];
static int ncancel;

ABI_COROUTINE static void sleeper(int id) {
    errno = 0;
    CHECK(dill_msleep(-1) == -1);
    CHECK(errno == ECANCELED);
    CHECK_ERR(dill_yield(), ECANCELED);
    cancel_log[ncancel++] = id;
}

static void test_cancel(void) {
    ncancel = 0;
    int h = ABI_GO(sleeper(1));
    CHECK(h >= 0);
    CHECK(ABI_BUNDLE_GO(h, sleeper(2)) == 0);
    CHECK(ABI_BUNDLE_GO_MEM(h, sleeper(3), mem[0] + 1, SMALL_STACK) == 0);
    CHECK(dill_hclose(h) == 0);
    CHECK(ncancel == 3);
    CHECK(cancel_log[0] == 1 && cancel_log[1] == 2 && cancel_log[2] == 3);
    CHECK(dill_hclose(h) == -1 && errno == EBADF);
}

/* ---- Many launches reuse stacks. ---- */

static void test_many(void) {
    finished = 0;
    for(int i = 0; i < 2000; i++) {
        int h = ABI_GO(finish(i % 3));
        CHECK(h >= 0);
        CHECK(dill_bundle_wait(h, -1) == 0);
        CHECK(dill_hclose(h) == 0);
    }
    CHECK(finished == 2000);
    int64_t t = dill_now();
    CHECK(t > 0);
    CHECK(dill_msleep(t + 1) == 0);
}

int main(void) {
    printf("abi: launch sequence: %s\n", ABI_FORMAT);
    test_basic();
    test_bundles();
    test_failures();
    test_args();
    test_registers();
    test_ping_pong();
    test_cancel();
    test_many();
    return 0;
}
