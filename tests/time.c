/*
 * tests/time.c: now(), msleep(), yield() and deadlines. now() is positive,
 * never -1, monotonic and advances with msleep at the real clock's pace;
 * msleep(now() + 50) returns 0 not before the deadline (and not much
 * later); msleep(0) and msleep(past) return 0 only after the ready
 * coroutines have run and the scheduler has polled; a negative deadline
 * sleeps until cancelled (ECANCELED); equal deadlines wake in registration
 * order and 10,000 random deadlines wake in deadline order; deadlines far
 * in the future (2^32 ms ahead, INT64_MAX) neither fire early nor break
 * other waits; a signal does not cut a sleep short; yield returns 0, runs
 * the ready coroutines in FIFO order and fails with ECANCELED once
 * cancelled; channel deadlines: 0 fails at once without switching, a
 * passed deadline can still succeed when the peer is already queued, a
 * future one gives ETIMEDOUT not before the deadline.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"

/* Generous: the tests also run under valgrind. */
#define LATE 500

static int64_t real_ms(void) {
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_now(void) {
    int64_t first = now();
    CHECK(first > 0);
    CHECK(first != -1);
    int64_t prev = first;
    for(int i = 0; i < 100000; i++) {
        int64_t t = now();
        CHECK(t >= prev);
        prev = t;
    }
    /* It advances with the real clock (+-20 ms for caching and ticks). */
    int64_t r0 = real_ms(), t0 = now();
    CHECK(msleep(t0 + 30) == 0);
    int64_t r1 = real_ms(), t1 = now();
    CHECK(t1 >= t0 + 30);
    CHECK(t1 - t0 >= (r1 - r0) - 20);
    CHECK(t1 - t0 <= (r1 - r0) + 20);
}

static void test_msleep(void) {
    for(int i = 0; i < 3; i++) {
        int64_t r0 = real_ms();
        int64_t start = now();
        int64_t deadline = start + 50;
        CHECK(msleep(deadline) == 0);
        int64_t end = now();
        CHECK(end >= deadline);
        CHECK(end < deadline + LATE);
        CHECK(real_ms() - r0 >= 50 - 20);
    }
    /* Deadlines that have passed: still a successful sleep. */
    CHECK(msleep(0) == 0);
    CHECK(msleep(1) == 0);
    CHECK(msleep(now()) == 0);
    CHECK(msleep(now() - 1000) == 0);
}

/* ---- msleep(0) lets every ready coroutine run first. ---- */

static int ticks;

coroutine static void ticker(int n) {
    for(int i = 0; i < n; i++) {
        ticks++;
        if(yield() != 0) {
            CHECK(errno == ECANCELED);
            return;
        }
    }
}

static void test_msleep_passes(void) {
    int64_t past[] = {0, 1, -2 /* now() - 100 */, -3 /* now() */};
    for(int i = 0; i < 4; i++) {
        /* Poll once now, so that the next poll is due only when the ready
           queue drains (spec 3.4). */
        CHECK(msleep(0) == 0);
        ticks = 0;
        int h = go(ticker(3));
        CHECK(h >= 0);
        CHECK(ticks == 1);
        int64_t d = past[i] == -2 ? now() - 100 :
            past[i] == -3 ? now() : past[i];
        CHECK(msleep(d) == 0);
        /* The ticker used all its turns before the poll woke us. */
        CHECK(ticks == 3);
        CHECK(bundle_wait(h, 0) == 0);
        CHECK(hclose(h) == 0);
    }
    /* yield, by contrast, comes back after one turn of the others. */
    CHECK(msleep(0) == 0);
    ticks = 0;
    int h = go(ticker(3));
    CHECK(h >= 0);
    CHECK(yield() == 0);
    CHECK(ticks == 2);
    CHECK(hclose(h) == 0);
}

/* ---- Negative deadlines: until cancelled. ---- */

static int sleepers_woken;

coroutine static void sleep_until_cancelled(int64_t deadline) {
    CHECK_ERR(msleep(deadline), ECANCELED);
    sleepers_woken++;
}

static void test_forever(void) {
    sleepers_woken = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, sleep_until_cancelled(-1)) == 0);
    CHECK(bundle_go(b, sleep_until_cancelled(-1000)) == 0);
    CHECK(bundle_go(b, sleep_until_cancelled(INT64_MIN)) == 0);
    CHECK(msleep(now() + 30) == 0);
    CHECK_ERR(bundle_wait(b, now() + 20), ETIMEDOUT);
    CHECK(sleepers_woken == 0);
    CHECK(hclose(b) == 0);
    CHECK(sleepers_woken == 3);
}

/* ---- Far deadlines. ---- */

static int wakefd[2];

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    char c = 'x';
    if(write(wakefd[1], &c, 1) != 1)
        abort();
    errno = saved;
}

static void arm_alarm(int ms) {
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
}

static void install_alarm(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    /* No SA_RESTART: the kernel wait really is interrupted. */
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    CHECK(pipe(wakefd) == 0);
}

static void test_far_deadlines(void) {
    sleepers_woken = 0;
    int b = bundle();
    CHECK(b >= 0);
    int64_t t = now();
    CHECK(bundle_go(b, sleep_until_cancelled(t + (INT64_C(1) << 32) + 10))
        == 0);
    CHECK(bundle_go(b, sleep_until_cancelled(t + (INT64_C(1) << 31) + 10))
        == 0);
    CHECK(bundle_go(b, sleep_until_cancelled(t + INT64_C(30) * 86400000))
        == 0);
    CHECK(bundle_go(b, sleep_until_cancelled(INT64_MAX)) == 0);
    CHECK(bundle_go(b, sleep_until_cancelled(INT64_MAX - 1)) == 0);
    /* Only the far timers exist while we wait for a signal-driven pipe:
       the poll timeout comes from them. */
    arm_alarm(100);
    int64_t start = now();
    CHECK(fdin(wakefd[0], -1) == 0);
    int64_t end = now();
    char c;
    CHECK(read(wakefd[0], &c, 1) == 1);
    CHECK(fdclean(wakefd[0]) == 0);
    CHECK(end - start >= 100 - 20);
    CHECK(sleepers_woken == 0);
    /* Nearer timers still work next to the far ones. */
    CHECK(msleep(now() + 20) == 0);
    CHECK_ERR(bundle_wait(b, now() + 30), ETIMEDOUT);
    CHECK(sleepers_woken == 0);
    CHECK(hclose(b) == 0);
    CHECK(sleepers_woken == 5);
}

/* A signal in the middle of a sleep does not end it early. */
static void test_signal_during_sleep(void) {
    for(int i = 0; i < 3; i++) {
        arm_alarm(20);
        int64_t deadline = now() + 80;
        CHECK(msleep(deadline) == 0);
        CHECK(now() >= deadline);
        char c;
        CHECK(read(wakefd[0], &c, 1) == 1);
    }
}

/* ---- Timer order. ---- */

static int wake_order[16];
static int nwake;

coroutine static void sleep_and_log(int id, int64_t deadline) {
    CHECK(msleep(deadline) == 0);
    CHECK(now() >= deadline);
    wake_order[nwake++] = id;
}

static void test_equal_deadlines(void) {
    nwake = 0;
    int b = bundle();
    CHECK(b >= 0);
    int64_t d = now() + 30;
    for(int i = 0; i < 6; i++)
        CHECK(bundle_go(b, sleep_and_log(i, d)) == 0);
    /* Earlier and later ones around them. */
    CHECK(bundle_go(b, sleep_and_log(7, d + 10)) == 0);
    CHECK(bundle_go(b, sleep_and_log(6, d - 10)) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    static const int expected[] = {6, 0, 1, 2, 3, 4, 5, 7};
    CHECK(nwake == 8);
    for(int i = 0; i < 8; i++)
        CHECK(wake_order[i] == expected[i]);
    CHECK(hclose(b) == 0);
}

#define NTIMED 10000
#define SPREAD 500

static int offsets[NTIMED];
static int woken[NTIMED];
static int nwoken;
static int64_t base_deadline;
static int late_registrations;

coroutine static void timed(int i, int gate) {
    int v;
    CHECK_ERR(chrecv(gate, &v, sizeof(v), -1), EPIPE);
    int64_t deadline = base_deadline + offsets[i];
    if(now() >= base_deadline)
        late_registrations++;
    CHECK(msleep(deadline) == 0);
    CHECK(now() >= deadline);
    woken[nwoken++] = i;
}

static void test_many_deadlines(void) {
    uint32_t seed = 12345;
    for(int i = 0; i < NTIMED; i++) {
        seed = seed * 1103515245u + 12345u;
        offsets[i] = (int)((seed >> 8) % SPREAD);
    }
    int gate[2];
    CHECK(chmake(gate) == 0);
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < NTIMED; i++)
        CHECK(bundle_go(b, timed(i, gate[1])) == 0);
    /* All of them register (in index order) well before the first
       deadline, even under valgrind. */
    nwoken = 0;
    late_registrations = 0;
    base_deadline = now() + 1000;
    CHECK(chdone(gate[0]) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(late_registrations == 0);
    CHECK(nwoken == NTIMED);
    /* Stable order by deadline: ties in registration order. */
    int k = 0;
    for(int off = 0; off < SPREAD; off++) {
        for(int i = 0; i < NTIMED; i++) {
            if(offsets[i] != off)
                continue;
            if(woken[k] != i)
                fprintf(stderr, "wake %d: got %d (offset %d), expected %d "
                    "(offset %d)\n", k, woken[k], offsets[woken[k]], i, off);
            CHECK(woken[k] == i);
            k++;
        }
    }
    CHECK(k == NTIMED);
    CHECK(hclose(b) == 0);
    CHECK(hclose(gate[0]) == 0);
    CHECK(hclose(gate[1]) == 0);
}

/* ---- yield ---- */

static char turns[64];
static int nturns;

coroutine static void take_turns(char c, int gate) {
    int v;
    CHECK_ERR(chrecv(gate, &v, sizeof(v), -1), EPIPE);
    for(int i = 0; i < 3; i++) {
        turns[nturns++] = c;
        CHECK(yield() == 0);
    }
}

coroutine static void yield_until_cancelled(void) {
    while(1) {
        int rc = yield();
        if(rc != 0) {
            CHECK(rc == -1 && errno == ECANCELED);
            break;
        }
    }
    /* Sticky. */
    CHECK_ERR(yield(), ECANCELED);
    CHECK_ERR(msleep(0), ECANCELED);
    sleepers_woken++;
}

static void test_yield(void) {
    /* Alone: returns at once. */
    for(int i = 0; i < 10; i++)
        CHECK(yield() == 0);

    int gate[2];
    CHECK(chmake(gate) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, take_turns('A', gate[1])) == 0);
    CHECK(bundle_go(b, take_turns('B', gate[1])) == 0);
    CHECK(bundle_go(b, take_turns('C', gate[1])) == 0);
    nturns = 0;
    memset(turns, 0, sizeof(turns));
    /* Wakes A, B, C in this order; they run when main yields. */
    CHECK(chdone(gate[0]) == 0);
    for(int i = 0; i < 3; i++) {
        CHECK(yield() == 0);
        turns[nturns++] = 'm';
    }
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(strcmp(turns, "ABCmABCmABCm") == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(gate[0]) == 0);
    CHECK(hclose(gate[1]) == 0);

    sleepers_woken = 0;
    int h = go(yield_until_cancelled());
    CHECK(h >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(h) == 0);
    CHECK(sleepers_woken == 1);
}

/* ---- Channel deadlines. ---- */

coroutine static void send_one(int ch, int v) {
    CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
}

coroutine static void yield_then_send(int ch, int v) {
    CHECK(yield() == 0);
    CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
}

static void test_channel_deadlines(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    int v = 0;
    /* Deadline 0: no switch. */
    ticks = 0;
    int t = go(ticker(5));
    CHECK(t >= 0);
    CHECK(ticks == 1);
    CHECK_ERR(chrecv(chv[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK_ERR(chsend(chv[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK(ticks == 1);
    CHECK(hclose(t) == 0);

    /* A passed deadline with nobody there: ETIMEDOUT at the next poll. */
    CHECK_ERR(chrecv(chv[0], &v, sizeof(v), 1), ETIMEDOUT);
    CHECK_ERR(chrecv(chv[0], &v, sizeof(v), now() - 10), ETIMEDOUT);

    /* A passed deadline, but the sender is queued ahead of the poll. */
    CHECK(msleep(0) == 0);
    int s = go(yield_then_send(chv[1], 17));
    CHECK(s >= 0);
    CHECK(chrecv(chv[0], &v, sizeof(v), 1) == 0);
    CHECK(v == 17);
    CHECK(bundle_wait(s, -1) == 0);
    CHECK(hclose(s) == 0);

    /* A sender already waiting: deadline 0 succeeds. */
    s = go(send_one(chv[1], 18));
    CHECK(s >= 0);
    CHECK(chrecv(chv[0], &v, sizeof(v), 0) == 0);
    CHECK(v == 18);
    CHECK(hclose(s) == 0);

    /* A future deadline: ETIMEDOUT, not before it. */
    int64_t deadline = now() + 40;
    CHECK_ERR(chrecv(chv[0], &v, sizeof(v), deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK(now() < deadline + LATE);
    deadline = now() + 40;
    CHECK_ERR(chsend(chv[0], &v, sizeof(v), deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK(now() < deadline + LATE);
    struct chclause cl = {CHRECV, chv[0], &v, sizeof(v)};
    deadline = now() + 40;
    CHECK_ERR(choose(&cl, 1, deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK(now() < deadline + LATE);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

int main(void) {
    install_alarm();
    test_now();
    test_msleep();
    test_msleep_passes();
    test_forever();
    test_far_deadlines();
    test_signal_during_sleep();
    test_equal_deadlines();
    test_many_deadlines();
    test_yield();
    test_channel_deadlines();
    return 0;
}
