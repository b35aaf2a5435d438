/*
 * tests/threads.c: one scheduler per thread. Four threads and the main
 * thread run coroutines, channels and msleep side by side, all with live
 * coroutines at the same moment; each thread's first handle is 0 and its
 * numbers mean nothing in the other threads (EBADF there); a thread that
 * exits with live coroutines (blocked in msleep, chrecv, fdin) and open
 * handles does not disturb the process, and those coroutines never run
 * again; a thread started afterwards gets a fresh scheduler (first handle
 * 0 again); many threads that clean up before exiting leave nothing behind
 * (checked by valgrind).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "libdill.h"
#include "check.h"

#define NTHREADS 4
#define ROUNDS 2000

static pthread_barrier_t barrier;

struct worker {
    int id;
    long sum;      /* what the ponger sent back, summed */
    int handles;   /* live handles at the middle barrier */
};

coroutine static void pinger(int ch, struct worker *w) {
    for(int i = 0; i < ROUNDS; i++) {
        int v = i * 10 + w->id;
        CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
        CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
        CHECK(v == i * 10 + w->id + 1);
        w->sum += v;
        if(i % 500 == 0)
            CHECK(msleep(now() + 1) == 0);
    }
}

coroutine static void ponger(int ch) {
    for(int i = 0; i < ROUNDS; i++) {
        int v;
        CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
        v++;
        CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
    }
}

coroutine static void waits_for_go(int ch) {
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    CHECK(v == 1);
}

static long expected_sum(int id) {
    long s = 0;
    for(int i = 0; i < ROUNDS; i++)
        s += i * 10 + id + 1;
    return s;
}

/* Runs in every thread, including the main one, at the same time. */
static void work(struct worker *w) {
    pthread_barrier_wait(&barrier);
    int chv[2];
    CHECK(chmake(chv) == 0);
    /* The first handles of this thread, whatever the others do. */
    CHECK(chv[0] == 0);
    CHECK(chv[1] == 1);
    int gate[2];
    CHECK(chmake(gate) == 0);
    CHECK(gate[0] == 2 && gate[1] == 3);
    int h1 = go(pinger(chv[0], w));
    int h2 = go(ponger(chv[1]));
    int h3 = go(waits_for_go(gate[1]));
    CHECK(h1 == 4 && h2 == 5 && h3 == 6);
    /* Thread 0 holds many more handles. */
    int extra[100];
    int nextra = w->id == 0 ? 100 : 0;
    for(int i = 0; i < nextra; i++) {
        extra[i] = bundle();
        CHECK(extra[i] == 7 + i);
    }
    /* Everybody has live coroutines now. */
    pthread_barrier_wait(&barrier);
    if(w->id != 0) {
        /* Numbers that are live only in thread 0. */
        CHECK_ERR(hclose(50), EBADF);
        CHECK_ERR(bundle_wait(99, 0), EBADF);
        CHECK_ERR(hclose(106), EBADF);
    }
    pthread_barrier_wait(&barrier);
    for(int i = 0; i < nextra; i++)
        CHECK(hclose(extra[i]) == 0);
    int v = 1;
    CHECK(chsend(gate[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(h1, -1) == 0);
    CHECK(bundle_wait(h2, -1) == 0);
    CHECK(bundle_wait(h3, -1) == 0);
    CHECK(w->sum == expected_sum(w->id));
    CHECK(hclose(h1) == 0);
    CHECK(hclose(h2) == 0);
    CHECK(hclose(h3) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
    CHECK(hclose(gate[0]) == 0);
    CHECK(hclose(gate[1]) == 0);
}

static void *worker_main(void *arg) {
    work(arg);
    return NULL;
}

static void test_side_by_side(void) {
    CHECK(pthread_barrier_init(&barrier, NULL, NTHREADS + 1) == 0);
    pthread_t t[NTHREADS];
    static struct worker w[NTHREADS + 1];
    for(int i = 0; i < NTHREADS + 1; i++) {
        w[i].id = i;
        w[i].sum = 0;
    }
    for(int i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
    /* The main thread takes part as the last worker. */
    work(&w[NTHREADS]);
    for(int i = 0; i < NTHREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    CHECK(pthread_barrier_destroy(&barrier) == 0);
}

/* ---- A thread exits with live coroutines and open handles. ---- */

static int abandoned_ran_again;
static int abandoned_started;
static struct bundle_storage abandoned_bundle;
static struct chstorage abandoned_channel;
static unsigned char abandoned_stack[16384];
static int abandoned_pipe[2];

coroutine static void abandoned_sleeper(void) {
    abandoned_started++;
    msleep(-1);
    abandoned_ran_again++;
}

coroutine static void abandoned_receiver(int ch) {
    abandoned_started++;
    int v;
    chrecv(ch, &v, sizeof(v), -1);
    abandoned_ran_again++;
}

coroutine static void abandoned_fdin(int fd) {
    abandoned_started++;
    fdin(fd, -1);
    abandoned_ran_again++;
}

coroutine static void abandoned_timer(void) {
    abandoned_started++;
    msleep(now() + 10);
    abandoned_ran_again++;
}

static void *leaves_things_behind(void *arg) {
    (void)arg;
    int b = bundle_mem(&abandoned_bundle);
    CHECK(b == 0);
    int chv[2];
    CHECK(chmake_mem(&abandoned_channel, chv) == 0);
    CHECK(bundle_go(b, abandoned_sleeper()) == 0);
    CHECK(bundle_go(b, abandoned_receiver(chv[1])) == 0);
    CHECK(bundle_go(b, abandoned_fdin(abandoned_pipe[0])) == 0);
    CHECK(bundle_go(b, abandoned_timer()) == 0);
    int h = go_mem(abandoned_sleeper(), abandoned_stack,
        sizeof(abandoned_stack));
    CHECK(h >= 0);
    CHECK(abandoned_started == 5);
    /* Return without closing anything. */
    return NULL;
}

static void *fresh_thread(void *arg) {
    int *first = arg;
    int chv[2];
    CHECK(chmake(chv) == 0);
    *first = chv[0];
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
    return NULL;
}

static void test_abandon(void) {
    CHECK(pipe(abandoned_pipe) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, leaves_things_behind, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    /* The abandoned timer would have fired by now, and the pipe becomes
       readable; nothing runs in a thread that is gone. */
    char c = 'x';
    CHECK(write(abandoned_pipe[1], &c, 1) == 1);
    CHECK(msleep(now() + 30) == 0);
    CHECK(abandoned_ran_again == 0);
    /* A new thread starts from scratch. */
    int first = -1;
    CHECK(pthread_create(&t, NULL, fresh_thread, &first) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(first == 0);
    CHECK(abandoned_ran_again == 0);
    CHECK(close(abandoned_pipe[0]) == 0);
    CHECK(close(abandoned_pipe[1]) == 0);
}

/* ---- Many short-lived threads that clean up. ---- */

coroutine static void nap(int ch) {
    CHECK(msleep(now() + 1) == 0);
    int v = 5;
    CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
}

static void *tidy_thread(void *arg) {
    (void)arg;
    int chv[2];
    CHECK(chmake(chv) == 0);
    CHECK(chv[0] == 0);
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i < 4; i++)
        CHECK(bundle_go(b, nap(chv[1])) == 0);
    for(int i = 0; i < 4; i++) {
        int v;
        CHECK(chrecv(chv[0], &v, sizeof(v), -1) == 0);
        CHECK(v == 5);
    }
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
    return NULL;
}

static void test_tidy_threads(void) {
    for(int round = 0; round < 5; round++) {
        pthread_t t[4];
        for(int i = 0; i < 4; i++)
            CHECK(pthread_create(&t[i], NULL, tidy_thread, NULL) == 0);
        for(int i = 0; i < 4; i++)
            CHECK(pthread_join(t[i], NULL) == 0);
    }
}

int main(void) {
#if !defined DILL_TEST_THREADS
    /* A --disable-threads build has one scheduler for the whole process:
       there is nothing per-thread to test. 77 = skipped, said aloud. */
    fprintf(stderr, "tests/threads: skipped, libdill was configured with "
        "--disable-threads\n");
    return 77;
#endif
    test_side_by_side();
    test_abandon();
    test_tidy_threads();
    /* The main thread's own scheduler is unaffected by all of this. */
    int chv[2];
    CHECK(chmake(chv) == 0);
    CHECK(chv[0] >= 0 && chv[1] >= 0 && chv[0] != chv[1]);
    CHECK(msleep(now() + 1) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
    return 0;
}
