/*
 * tests/bundle.c: bundle, bundle_mem, bundle_go and bundle_wait.
 * bundle_mem(NULL) is EINVAL; bundle_storage at an unaligned address works
 * and nothing outside it is written; bundle_go fails with EBADF (dead
 * number) and ENOTSUP (a channel) without evaluating the expression, and
 * with a negative bundle number creates a new bundle; an emptied bundle is
 * reused. bundle_wait: an empty bundle gives 0 at once, without switching,
 * whatever the deadline; it waits for the last coroutine; deadline 0 or a
 * passed deadline with running coroutines gives ETIMEDOUT; a future
 * deadline gives ETIMEDOUT not earlier than the deadline; coroutines added
 * during the wait extend it; two concurrent waiters both get 0; a waiter
 * gets 0 when another coroutine closes the bundle, and the storage is not
 * touched afterwards; EBADF, ENOTSUP and ECANCELED.
 */
#include <stdint.h>
#include <string.h>

#include "libdill.h"
#include "check.h"

static int evaluated;
static int side(void) {
    evaluated++;
    return 1;
}

coroutine static void take(int v) {
    evaluated += 100 * v;
}

static int finished;

coroutine static void quick(void) {
    finished++;
}

coroutine static void yield_n(int n) {
    for(int i = 0; i < n; i++)
        CHECK(yield() == 0);
    finished++;
}

/* Receives one int; expects success or the given errno. */
coroutine static void receiver(int ch, int expected_errno) {
    int v;
    errno = 0;
    int rc = chrecv(ch, &v, sizeof(v), -1);
    if(expected_errno)
        CHECK(rc == -1 && errno == expected_errno);
    else
        CHECK(rc == 0);
    finished++;
}

coroutine static void sleep_forever(void) {
    CHECK_ERR(msleep(-1), ECANCELED);
    finished++;
}

static void test_bundle_mem(void) {
    CHECK_ERR(bundle_mem(NULL), EINVAL);

    /* Storage at odd addresses, with a pattern around it. */
    static unsigned char raw[16 + sizeof(struct bundle_storage) + 16];
    for(int off = 1; off < 8; off += 2) {
        for(size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)(i * 5 + 1);
        struct bundle_storage *bs = (struct bundle_storage *)(raw + 16 + off);
        int b = bundle_mem(bs);
        CHECK(b >= 0);
        finished = 0;
        CHECK(bundle_go(b, quick()) == 0);
        CHECK(bundle_go(b, yield_n(3)) == 0);
        CHECK(bundle_go(b, yield_n(1)) == 0);
        CHECK(bundle_wait(b, -1) == 0);
        CHECK(finished == 3);
        CHECK(bundle_go(b, sleep_forever()) == 0);
        CHECK(hclose(b) == 0);
        CHECK(finished == 4);
        CHECK_ERR(hclose(b), EBADF);
        for(size_t i = 0; i < sizeof(raw); i++) {
            if(raw + i >= (unsigned char *)bs &&
                  raw + i < (unsigned char *)bs + sizeof(*bs))
                continue;
            CHECK(raw[i] == (unsigned char)(i * 5 + 1));
        }
    }
}

static void test_bundle_go(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    evaluated = 0;

    /* Dead numbers: a closed handle, a never used one, one far out. */
    int b = bundle();
    CHECK(b >= 0);
    CHECK(hclose(b) == 0);
    CHECK_ERR(bundle_go(b, take(side())), EBADF);
    CHECK_ERR(bundle_go(1000000, take(side())), EBADF);
    /* A live handle that is not a bundle. */
    CHECK_ERR(bundle_go(chv[0], take(side())), ENOTSUP);
    CHECK_ERR(bundle_go(chv[1], take(side())), ENOTSUP);
    CHECK(evaluated == 0);

    /* A negative number creates a new bundle and returns its handle. */
    finished = 0;
    int h1 = bundle_go(-1, quick());
    CHECK(h1 >= 0);
    CHECK(finished == 1);
    int h2 = bundle_go(-7, receiver(chv[1], 0));
    CHECK(h2 >= 0 && h2 != h1);
    CHECK(bundle_wait(h1, 0) == 0);
    CHECK_ERR(bundle_wait(h2, 0), ETIMEDOUT);
    CHECK(bundle_go(h2, quick()) == 0);
    CHECK(finished == 2);
    int v = 1;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(h2, -1) == 0);
    CHECK(finished == 3);
    CHECK(hclose(h1) == 0);
    CHECK(hclose(h2) == 0);

    /* bundle_go into a go() handle; bundles are reusable once empty. */
    finished = 0;
    int h = go(receiver(chv[1], 0));
    CHECK(h >= 0);
    CHECK(bundle_go(h, receiver(chv[1], 0)) == 0);
    CHECK(bundle_go(h, quick()) == 0);
    CHECK(finished == 1);
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(h, -1) == 0);
    CHECK(finished == 3);
    for(int round = 0; round < 3; round++) {
        CHECK(bundle_go(h, yield_n(round)) == 0);
        CHECK(bundle_wait(h, -1) == 0);
    }
    CHECK(finished == 6);
    CHECK(hclose(h) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* ---- bundle_wait ---- */

static int ticks;

/* Counts its turns; stops quietly when cancelled. */
coroutine static void ticker(int n) {
    for(int i = 0; i < n; i++) {
        ticks++;
        if(yield() != 0) {
            CHECK(errno == ECANCELED);
            return;
        }
    }
}

static void test_wait_empty(void) {
    int b = bundle();
    CHECK(b >= 0);
    ticks = 0;
    int t = go(ticker(3));
    CHECK(t >= 0);
    /* The ticker is in the ready queue now. */
    CHECK(ticks == 1);
    CHECK(bundle_wait(b, 0) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(bundle_wait(b, 1) == 0);
    CHECK(bundle_wait(b, now() + 100000) == 0);
    /* A bundle whose coroutines all finished is empty too. */
    finished = 0;
    CHECK(bundle_go(b, quick()) == 0);
    CHECK(finished == 1);
    int before = ticks;
    CHECK(bundle_wait(b, 0) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    /* None of these calls switched. */
    CHECK(ticks == before);
    CHECK(hclose(t) == 0);
    CHECK(hclose(b) == 0);
}

static void test_wait_last(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    finished = 0;
    CHECK(bundle_go(b, yield_n(1)) == 0);
    CHECK(bundle_go(b, yield_n(5)) == 0);
    CHECK(bundle_go(b, yield_n(3)) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(finished == 3);

    /* A member blocked on a channel, released by a coroutine outside. */
    finished = 0;
    CHECK(bundle_go(b, yield_n(2)) == 0);
    CHECK(bundle_go(b, receiver(chv[1], 0)) == 0);
    int v = 9;
    /* Nobody sends yet: the wait times out. */
    CHECK_ERR(bundle_wait(b, now() + 50), ETIMEDOUT);
    CHECK(finished == 1);
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(b, now() + 100000) == 0);
    CHECK(finished == 2);
    CHECK(hclose(b) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

static void test_wait_timeouts(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, receiver(chv[1], ECANCELED)) == 0);
    CHECK_ERR(bundle_wait(b, 0), ETIMEDOUT);
    /* A deadline that has already passed. */
    CHECK_ERR(bundle_wait(b, 1), ETIMEDOUT);
    CHECK_ERR(bundle_wait(b, now() - 10), ETIMEDOUT);
    /* A future deadline: not earlier. */
    for(int i = 0; i < 3; i++) {
        int64_t start = now();
        int64_t deadline = start + 60;
        CHECK_ERR(bundle_wait(b, deadline), ETIMEDOUT);
        int64_t end = now();
        CHECK(end >= deadline);
        CHECK(end < deadline + 500);
    }
    /* Deadline 0 with a member that finishes during the pass: it is in
       the ready queue ahead of the poll, so the wait succeeds. */
    finished = 0;
    int b2 = bundle();
    CHECK(b2 >= 0);
    CHECK(bundle_go(b2, yield_n(1)) == 0);
    CHECK(bundle_wait(b2, 0) == 0);
    CHECK(finished == 1);
    CHECK(hclose(b2) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* Coroutines added while somebody waits extend the wait. */
static int main_waiting;
static int adder_done;
static int late_done;

coroutine static void late(int ch) {
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    late_done = 1;
}

coroutine static void adder(int b, int ch) {
    for(int i = 0; i < 100 && !main_waiting; i++)
        CHECK(yield() == 0);
    CHECK(main_waiting);
    CHECK(bundle_go(b, late(ch)) == 0);
    adder_done = 1;
}

coroutine static void releaser(int ch) {
    for(int i = 0; i < 100 && !adder_done; i++)
        CHECK(yield() == 0);
    CHECK(adder_done);
    for(int i = 0; i < 5; i++)
        CHECK(yield() == 0);
    CHECK(late_done == 0);
    int v = 3;
    CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
}

static void test_wait_extended(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, adder(b, chv[1])) == 0);
    int r = go(releaser(chv[0]));
    CHECK(r >= 0);
    main_waiting = 1;
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(adder_done == 1);
    CHECK(late_done == 1);
    CHECK(bundle_wait(r, -1) == 0);
    CHECK(hclose(r) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* A coroutine that waits on a bundle and records the outcome. The
   outcomes are static: a launcher's locals written by a coroutine after
   go() returned are invisible to an optimising compiler, which sees the
   call as finished when go() returns. */
struct outcome {
    int rc;
    int err;
};
static struct outcome o1, o2, o3;

coroutine static void waiter(int b, struct outcome *out) {
    errno = 0;
    out->rc = bundle_wait(b, -1);
    out->err = errno;
}

static void test_two_waiters(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    finished = 0;
    CHECK(bundle_go(b, receiver(chv[1], 0)) == 0);
    o1.rc = o2.rc = o3.rc = 99;
    int w1 = go(waiter(b, &o1));
    int w2 = go(waiter(b, &o2));
    int w3 = go(waiter(b, &o3));
    CHECK(w1 >= 0 && w2 >= 0 && w3 >= 0);
    CHECK(o1.rc == 99 && o2.rc == 99 && o3.rc == 99);
    int v = 5;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    /* The main coroutine is a waiter too. */
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(bundle_wait(w1, -1) == 0);
    CHECK(bundle_wait(w2, -1) == 0);
    CHECK(bundle_wait(w3, -1) == 0);
    CHECK(o1.rc == 0 && o2.rc == 0 && o3.rc == 0);
    CHECK(finished == 1);
    CHECK(hclose(w1) == 0);
    CHECK(hclose(w2) == 0);
    CHECK(hclose(w3) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

coroutine static void closer(int b) {
    CHECK(hclose(b) == 0);
}

static void test_waiter_on_closed_bundle(void) {
    /* Heap bundle closed by another coroutine. */
    int b = bundle();
    CHECK(b >= 0);
    finished = 0;
    CHECK(bundle_go(b, sleep_forever()) == 0);
    CHECK(bundle_go(b, sleep_forever()) == 0);
    o1.rc = 99;
    int w = go(waiter(b, &o1));
    CHECK(w >= 0);
    int c = go(closer(b));
    CHECK(c >= 0);
    CHECK(bundle_wait(c, -1) == 0);
    CHECK(finished == 2);
    CHECK(bundle_wait(w, -1) == 0);
    CHECK(o1.rc == 0);
    CHECK(hclose(c) == 0);
    CHECK(hclose(w) == 0);
    CHECK_ERR(hclose(b), EBADF);

    /* Storage bundle closed by the main coroutine; the storage is reused
       as soon as hclose returns, before the waiter runs again. */
    static struct bundle_storage bs;
    b = bundle_mem(&bs);
    CHECK(b >= 0);
    finished = 0;
    CHECK(bundle_go(b, sleep_forever()) == 0);
    o2.rc = 99;
    w = go(waiter(b, &o2));
    CHECK(w >= 0);
    CHECK(hclose(b) == 0);
    CHECK(finished == 1);
    memset(&bs, 0xff, sizeof(bs));
    CHECK(bundle_wait(w, -1) == 0);
    CHECK(o2.rc == 0);
    CHECK(hclose(w) == 0);
}

coroutine static void cancelled_waiter(int b) {
    CHECK_ERR(bundle_wait(b, -1), ECANCELED);
    /* Sticky, and checked before the handle. */
    CHECK_ERR(bundle_wait(b, -1), ECANCELED);
    CHECK_ERR(bundle_wait(b, 0), ECANCELED);
    CHECK_ERR(bundle_wait(-1, 0), ECANCELED);
    finished++;
}

coroutine static void cancelled_then_wait_empty(int empty) {
    CHECK_ERR(msleep(-1), ECANCELED);
    CHECK_ERR(bundle_wait(empty, 0), ECANCELED);
    CHECK_ERR(bundle_wait(empty, -1), ECANCELED);
    finished++;
}

static void test_wait_errors(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    CHECK_ERR(bundle_wait(-1, -1), EBADF);
    CHECK_ERR(bundle_wait(-1, 0), EBADF);
    CHECK_ERR(bundle_wait(1000000, -1), EBADF);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(hclose(b) == 0);
    CHECK_ERR(bundle_wait(b, -1), EBADF);
    CHECK_ERR(bundle_wait(chv[0], -1), ENOTSUP);
    CHECK_ERR(bundle_wait(chv[1], 0), ENOTSUP);

    /* A waiting coroutine is cancelled. */
    b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, receiver(chv[1], ECANCELED)) == 0);
    finished = 0;
    int w = go(cancelled_waiter(b));
    CHECK(w >= 0);
    CHECK(hclose(w) == 0);
    CHECK(finished == 1);
    /* Cancelling the waiter did not touch the bundle it waited on. */
    CHECK_ERR(bundle_wait(b, 0), ETIMEDOUT);
    CHECK(hclose(b) == 0);
    CHECK(finished == 2);

    int empty = bundle();
    CHECK(empty >= 0);
    w = go(cancelled_then_wait_empty(empty));
    CHECK(w >= 0);
    CHECK(hclose(w) == 0);
    CHECK(finished == 3);
    CHECK(hclose(empty) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

int main(void) {
    test_bundle_mem();
    test_bundle_go();
    test_wait_empty();
    test_wait_last();
    test_wait_timeouts();
    test_wait_extended();
    test_two_waiters();
    test_waiter_on_closed_bundle();
    test_wait_errors();
    return 0;
}
