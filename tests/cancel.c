/*
 * tests/cancel.c: cancellation (spec 5.8, 13 items 3-5). hclose of a bundle
 * cancels its coroutines one at a time in launch order, waiting for each,
 * and returns 0; members not reached yet keep running and may block and
 * succeed; coroutines blocked in msleep, chrecv, chsend, choose, fdin and
 * bundle_wait get ECANCELED; a coroutine already in the ready queue (just
 * woken, after yield, or waiting for its own go() to return) gets its real
 * result and its next call fails; cancellation is sticky and comes before
 * argument checks, for blocking calls, launches and handle creation, while
 * hclose, chdone, hquery, now and fdclean keep working; the same rules hold
 * inside a close callback, also for the main coroutine, which is otherwise
 * never cancelled; nested bundles are torn down depth-first; a coroutine
 * cancelled while it waits inside hclose for its child finishes that
 * hclose and fails on its next blocking call; hclose of a finished
 * coroutine or an empty bundle does not switch; a coroutine closing its
 * own bundle aborts the process.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libdillimpl.h"
#include "check.h"

/* ---- A log of events: (who, what). ---- */

struct event {
    int who;
    int what;
};
static struct event events[256];
static int nevents;

static void log_event(int who, int what) {
    CHECK(nevents < (int)(sizeof(events) / sizeof(events[0])));
    events[nevents].who = who;
    events[nevents].what = what;
    nevents++;
}

static void check_events(const struct event *expected, int n) {
    int same = nevents == n;
    for(int i = 0; same && i < n; i++)
        same = events[i].who == expected[i].who &&
            events[i].what == expected[i].what;
    if(!same) {
        for(int i = 0; i < nevents; i++)
            fprintf(stderr, "  event %d: %d %d\n", i, events[i].who,
                events[i].what);
        for(int i = 0; i < n; i++)
            fprintf(stderr, "  expected %d: %d %d\n", i, expected[i].who,
                expected[i].what);
    }
    CHECK(same);
}

/* what: an errno value, or one of these. */
#define OK 0
#define YIELDED 1000
#define ENTER 1001
#define LEAVE 1002

static int evaluated;
static int side(void) {
    evaluated++;
    return 1;
}

coroutine static void take(int v) {
    evaluated += 100 * v;
}

/* ---- Launch order, one at a time. ---- */

static int other_chv[2];
static int forever_chv[2];

/* Member 1: on cancellation, closes the channel member 3 waits on. */
coroutine static void member1(int ch) {
    int v;
    errno = 0;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == -1);
    log_event(1, errno);
    CHECK(chdone(other_chv[0]) == 0);
}

coroutine static void member2(int ch) {
    int v;
    errno = 0;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == -1);
    log_event(2, errno);
}

/* Member 3: woken by member 1's chdone while not cancelled yet. */
coroutine static void member3(void) {
    int v;
    errno = 0;
    CHECK(chrecv(other_chv[1], &v, sizeof(v), -1) == -1);
    log_event(3, errno);
    CHECK(yield() == 0);
    log_event(3, YIELDED);
    errno = 0;
    CHECK(chrecv(forever_chv[1], &v, sizeof(v), -1) == -1);
    log_event(3, errno);
}

static void test_launch_order(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    CHECK(chmake(other_chv) == 0);
    CHECK(chmake(forever_chv) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, member1(chv[1])) == 0);
    CHECK(bundle_go(b, member2(chv[1])) == 0);
    CHECK(bundle_go(b, member3()) == 0);
    nevents = 0;
    CHECK(hclose(b) == 0);
    static const struct event expected[] = {
        {1, ECANCELED},
        {3, EPIPE},
        {3, YIELDED},
        {2, ECANCELED},
        {3, ECANCELED},
    };
    check_events(expected, 5);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
    CHECK(hclose(other_chv[0]) == 0);
    CHECK(hclose(other_chv[1]) == 0);
    CHECK(hclose(forever_chv[0]) == 0);
    CHECK(hclose(forever_chv[1]) == 0);
}

/* ---- Every kind of blocked coroutine gets ECANCELED. ---- */

static int pipefd[2];

coroutine static void block_msleep(int who, int64_t deadline) {
    errno = 0;
    CHECK(msleep(deadline) == -1);
    log_event(who, errno);
}

coroutine static void block_chrecv(int who, int ch) {
    int v;
    errno = 0;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == -1);
    log_event(who, errno);
}

coroutine static void block_chsend(int who, int ch, int64_t deadline) {
    int v = 1;
    errno = 0;
    CHECK(chsend(ch, &v, sizeof(v), deadline) == -1);
    log_event(who, errno);
}

coroutine static void block_choose(int who, int ch) {
    int v;
    struct chclause cl[2] = {
        {CHRECV, ch, &v, sizeof(v)},
        {CHSEND, ch, &v, sizeof(v)},
    };
    errno = 0;
    CHECK(choose(cl, 2, -1) == -1);
    log_event(who, errno);
}

coroutine static void block_fdin(int who, int fd) {
    errno = 0;
    CHECK(fdin(fd, -1) == -1);
    log_event(who, errno);
    CHECK(fdclean(fd) == 0);
}

coroutine static void block_bundle_wait(int who, int b) {
    errno = 0;
    CHECK(bundle_wait(b, now() + 600000) == -1);
    log_event(who, errno);
}

static void test_blocked(void) {
    /* Separate channels, so that no two of the waiters could match. */
    int rch[2], sch[2], cch[2];
    CHECK(chmake(rch) == 0);
    CHECK(chmake(sch) == 0);
    CHECK(chmake(cch) == 0);
    CHECK(pipe(pipefd) == 0);
    int other = bundle();
    CHECK(other >= 0);
    CHECK(bundle_go(other, block_chrecv(100, rch[1])) == 0);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, block_msleep(1, -1)) == 0);
    CHECK(bundle_go(b, block_msleep(2, now() + 600000)) == 0);
    CHECK(bundle_go(b, block_chrecv(3, rch[1])) == 0);
    CHECK(bundle_go(b, block_chsend(4, sch[0], -1)) == 0);
    CHECK(bundle_go(b, block_chsend(5, sch[0], now() + 600000)) == 0);
    CHECK(bundle_go(b, block_choose(6, cch[0])) == 0);
    CHECK(bundle_go(b, block_fdin(7, pipefd[0])) == 0);
    CHECK(bundle_go(b, block_bundle_wait(8, other)) == 0);
    CHECK(bundle_go(b, block_msleep(9, -12345)) == 0);
    nevents = 0;
    CHECK(hclose(b) == 0);
    static const struct event expected[] = {
        {1, ECANCELED}, {2, ECANCELED}, {3, ECANCELED}, {4, ECANCELED},
        {5, ECANCELED}, {6, ECANCELED}, {7, ECANCELED}, {8, ECANCELED},
        {9, ECANCELED},
    };
    check_events(expected, 9);
    /* The other bundle was left alone. */
    CHECK_ERR(bundle_wait(other, 0), ETIMEDOUT);
    nevents = 0;
    CHECK(hclose(other) == 0);
    static const struct event expected2[] = {{100, ECANCELED}};
    check_events(expected2, 1);
    CHECK(hclose(rch[0]) == 0);
    CHECK(hclose(rch[1]) == 0);
    CHECK(hclose(sch[0]) == 0);
    CHECK(hclose(sch[1]) == 0);
    CHECK(hclose(cch[0]) == 0);
    CHECK(hclose(cch[1]) == 0);
    CHECK(close(pipefd[0]) == 0);
    CHECK(close(pipefd[1]) == 0);
}

/* ---- Coroutines in the ready queue get their real result. ---- */

static int closing;
static int yields_after_close;

coroutine static void woken_receiver(int ch) {
    int v = 0;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    log_event(1, v);
    CHECK_ERR(msleep(-1), ECANCELED);
    log_event(1, ECANCELED);
}

coroutine static void yielder(void) {
    while(1) {
        int rc = yield();
        if(rc != 0) {
            CHECK(rc == -1 && errno == ECANCELED);
            log_event(2, ECANCELED);
            return;
        }
        if(closing)
            yields_after_close++;
    }
}

/* P and C: C closes P while P waits for its own go(C) to return. */
static int hp = -1;
static int hc = -1;

coroutine static void child_closing_parent(void) {
    log_event(11, ENTER);
    CHECK(hclose(hp) == 0);
    log_event(11, LEAVE);
}

coroutine static void parent_closed_by_child(int ch) {
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    hc = go(child_closing_parent());
    /* go() itself succeeded although the parent is cancelled by now. */
    CHECK(hc >= 0);
    log_event(10, OK);
    CHECK_ERR(msleep(-1), ECANCELED);
    log_event(10, ECANCELED);
}

static void test_ready_queue(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    nevents = 0;
    int h = go(woken_receiver(chv[1]));
    CHECK(h >= 0);
    int v = 42;
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    /* The receiver is in the ready queue with its message. */
    CHECK(hclose(h) == 0);
    static const struct event expected[] = {{1, 42}, {1, ECANCELED}};
    check_events(expected, 2);

    /* A yielding coroutine: its pending yield returns 0, the next fails. */
    nevents = 0;
    closing = 0;
    yields_after_close = 0;
    h = go(yielder());
    CHECK(h >= 0);
    for(int i = 0; i < 3; i++)
        CHECK(yield() == 0);
    closing = 1;
    CHECK(hclose(h) == 0);
    CHECK(yields_after_close == 1);
    static const struct event expected2[] = {{2, ECANCELED}};
    check_events(expected2, 1);

    /* A coroutine waiting for its own go() to return. */
    nevents = 0;
    hp = go(parent_closed_by_child(chv[1]));
    CHECK(hp >= 0);
    CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
    /* P runs go(C), C closes P and waits, P resumes from go(). */
    for(int i = 0; i < 10 && hc < 0; i++)
        CHECK(yield() == 0);
    CHECK(hc >= 0);
    CHECK(bundle_wait(hc, -1) == 0);
    static const struct event expected3[] = {
        {11, ENTER}, {10, OK}, {10, ECANCELED}, {11, LEAVE},
    };
    check_events(expected3, 4);
    CHECK(hclose(hc) == 0);
    CHECK_ERR(hclose(hp), EBADF);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* ---- Sticky cancellation; what keeps working. ---- */

static const int probe_type_tag = 0;
static const void *probe_type = &probe_type_tag;

struct probe {
    struct hvfs vfs;
    int closes;
    int queries;
};

static void *probe_query(struct hvfs *vfs, const void *type) {
    struct probe *p = (struct probe *)vfs;
    p->queries++;
    if(type == probe_type)
        return p;
    errno = ENOTSUP;
    return NULL;
}

static void probe_close(struct hvfs *vfs) {
    struct probe *p = (struct probe *)vfs;
    p->closes++;
}

static int gbundle = -1;      /* an empty bundle */
static int peer_chv[2];       /* a receiver waits at peer_chv[1] */
static struct probe sticky_probe = {{probe_query, probe_close}, 0, 0};
static int sticky_probe_h = -1;
static int sticky_done;
static char membuf[8192];

/* All the calls that must fail with ECANCELED, before their arguments. */
static void expect_all_cancelled(void) {
    int v = 1;
    CHECK_ERR(msleep(0), ECANCELED);
    CHECK_ERR(msleep(-1), ECANCELED);
    CHECK_ERR(msleep(now() - 5), ECANCELED);
    CHECK_ERR(yield(), ECANCELED);
    /* A receiver is waiting: this send could complete at once. */
    CHECK_ERR(chsend(peer_chv[0], &v, sizeof(v), -1), ECANCELED);
    CHECK_ERR(chsend(peer_chv[0], &v, sizeof(v), 0), ECANCELED);
    CHECK_ERR(chrecv(peer_chv[0], &v, sizeof(v), 0), ECANCELED);
    CHECK_ERR(chsend(-1, NULL, 5, -1), ECANCELED);
    CHECK_ERR(chrecv(gbundle, &v, sizeof(v), 0), ECANCELED);
    struct chclause cl = {CHSEND, peer_chv[0], &v, sizeof(v)};
    CHECK_ERR(choose(&cl, 1, -1), ECANCELED);
    CHECK_ERR(choose(&cl, 1, 0), ECANCELED);
    CHECK_ERR(choose(NULL, 0, 0), ECANCELED);
    CHECK_ERR(choose(NULL, -1, 0), ECANCELED);
    CHECK_ERR(bundle_wait(gbundle, -1), ECANCELED);
    CHECK_ERR(bundle_wait(gbundle, 0), ECANCELED);
    CHECK_ERR(bundle_wait(-1, 0), ECANCELED);
    CHECK_ERR(fdin(pipefd[0], -1), ECANCELED);
    CHECK_ERR(fdout(pipefd[1], 0), ECANCELED);
    CHECK_ERR(fdin(-1, 0), ECANCELED);
    CHECK_ERR(go(take(side())), ECANCELED);
    CHECK_ERR(go_mem(take(side()), membuf, sizeof(membuf)), ECANCELED);
    CHECK_ERR(go_mem(take(side()), membuf, 0), ECANCELED);
    CHECK_ERR(bundle_go(gbundle, take(side())), ECANCELED);
    CHECK_ERR(bundle_go(-1, take(side())), ECANCELED);
    CHECK_ERR(bundle_go(1000000, take(side())), ECANCELED);
    CHECK_ERR(bundle_go_mem(gbundle, take(side()), membuf, sizeof(membuf)),
        ECANCELED);
    CHECK(evaluated == 0);
    /* Handle creation: ECANCELED, after the constructors' own checks. */
    CHECK_ERR(bundle(), ECANCELED);
    struct bundle_storage bs;
    CHECK_ERR(bundle_mem(&bs), ECANCELED);
    CHECK_ERR(bundle_mem(NULL), EINVAL);
    int chv[2];
    CHECK_ERR(chmake(chv), ECANCELED);
    struct chstorage cs;
    CHECK_ERR(chmake_mem(&cs, chv), ECANCELED);
    CHECK_ERR(chmake_mem(NULL, chv), EINVAL);
    struct probe p = {{probe_query, probe_close}, 0, 0};
    CHECK_ERR(hmake(&p.vfs), ECANCELED);
    CHECK_ERR(hmake(NULL), EINVAL);
    CHECK(p.closes == 0);
}

coroutine static void sticky(void) {
    int own[2];
    CHECK(chmake(own) == 0);
    CHECK_ERR(msleep(-1), ECANCELED);
    /* Twice: it stays cancelled. */
    expect_all_cancelled();
    expect_all_cancelled();
    /* These keep working. */
    int64_t t = now();
    CHECK(t > 0);
    CHECK(hquery(sticky_probe_h, probe_type) == &sticky_probe);
    CHECK(chdone(own[1]) == 0);
    CHECK_ERR(chdone(own[1]), EPIPE);
    CHECK(fdclean(pipefd[0]) == 0);
    CHECK(hclose(sticky_probe_h) == 0);
    CHECK(sticky_probe.closes == 1);
    /* hown fails and closes the object. */
    CHECK_ERR(hown(own[0]), ECANCELED);
    CHECK_ERR(hclose(own[0]), EBADF);
    CHECK(hclose(own[1]) == 0);
    sticky_done = 1;
}

static int peer_result = 99;

coroutine static void peer_receiver(void) {
    int v;
    errno = 0;
    peer_result = chrecv(peer_chv[1], &v, sizeof(v), -1);
    if(peer_result == 0)
        peer_result = v;
}

static void test_sticky(void) {
    CHECK(pipe(pipefd) == 0);
    CHECK(chmake(peer_chv) == 0);
    gbundle = bundle();
    CHECK(gbundle >= 0);
    sticky_probe_h = hmake(&sticky_probe.vfs);
    CHECK(sticky_probe_h >= 0);
    int r = go(peer_receiver());
    CHECK(r >= 0);
    evaluated = 0;
    sticky_done = 0;
    int h = go(sticky());
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(sticky_done == 1);
    CHECK(evaluated == 0);
    /* The receiver did not get anything from the cancelled sender. */
    CHECK(peer_result == 99);
    int v = 7;
    CHECK(chsend(peer_chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(r, -1) == 0);
    CHECK(peer_result == 7);
    CHECK(hclose(r) == 0);
    CHECK(bundle_wait(gbundle, 0) == 0);
    CHECK(hclose(gbundle) == 0);
    CHECK(hclose(peer_chv[0]) == 0);
    CHECK(hclose(peer_chv[1]) == 0);
    CHECK(close(pipefd[0]) == 0);
    CHECK(close(pipefd[1]) == 0);
}

/* ---- Close callbacks: no-blocking mode, also in the main coroutine. ---- */

static int callback_checked;

static void blocking_close(struct hvfs *vfs) {
    struct probe *p = (struct probe *)vfs;
    p->closes++;
    expect_all_cancelled();
    CHECK(now() > 0);
    CHECK(fdclean(pipefd[0]) == 0);
    callback_checked++;
}

coroutine static void close_in_coroutine(void) {
    struct probe p = {{probe_query, blocking_close}, 0, 0};
    int h = hmake(&p.vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(p.closes == 1);
    /* Out of the callback, this coroutine is not cancelled. */
    CHECK(yield() == 0);
    CHECK(msleep(0) == 0);
}

static void test_close_callback(void) {
    CHECK(pipe(pipefd) == 0);
    CHECK(chmake(peer_chv) == 0);
    gbundle = bundle();
    CHECK(gbundle >= 0);
    int r = go(peer_receiver());
    CHECK(r >= 0);
    evaluated = 0;
    callback_checked = 0;
    struct probe p = {{probe_query, blocking_close}, 0, 0};
    int h = hmake(&p.vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(p.closes == 1);
    CHECK(callback_checked == 1);
    /* The main coroutine is back to normal. */
    CHECK(yield() == 0);
    CHECK(msleep(0) == 0);
    CHECK(msleep(now() + 1) == 0);
    int h2 = go(close_in_coroutine());
    CHECK(h2 >= 0);
    CHECK(bundle_wait(h2, -1) == 0);
    CHECK(callback_checked == 2);
    CHECK(hclose(h2) == 0);
    CHECK(evaluated == 0);
    int v = 8;
    CHECK(chsend(peer_chv[0], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(r, -1) == 0);
    CHECK(peer_result == 8);
    CHECK(hclose(r) == 0);
    CHECK(hclose(gbundle) == 0);
    CHECK(hclose(peer_chv[0]) == 0);
    CHECK(hclose(peer_chv[1]) == 0);
    CHECK(close(pipefd[0]) == 0);
    CHECK(close(pipefd[1]) == 0);
    /* After all this closing, the main coroutine still works. */
    int chv[2];
    CHECK(chmake(chv) == 0);
    CHECK(yield() == 0);
    CHECK(msleep(now() + 1) == 0);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* ---- Nested bundles: depth-first teardown. ---- */

coroutine static void node(int depth, int id) {
    int kids = -1;
    if(depth > 0) {
        kids = bundle();
        CHECK(kids >= 0);
        int left = id * 2, right = id * 2 + 1, d = depth - 1;
        CHECK(bundle_go(kids, node(d, left)) == 0);
        CHECK(bundle_go(kids, node(d, right)) == 0);
    }
    CHECK_ERR(msleep(-1), ECANCELED);
    log_event(id, ENTER);
    if(kids >= 0)
        CHECK(hclose(kids) == 0);
    log_event(id, LEAVE);
}

static struct event expected_tree[256];
static int nexpected_tree;

static void expect_tree(int depth, int id) {
    expected_tree[nexpected_tree].who = id;
    expected_tree[nexpected_tree++].what = ENTER;
    if(depth > 0) {
        expect_tree(depth - 1, id * 2);
        expect_tree(depth - 1, id * 2 + 1);
    }
    expected_tree[nexpected_tree].who = id;
    expected_tree[nexpected_tree++].what = LEAVE;
}

static void test_nested(void) {
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, node(3, 1)) == 0);
    CHECK(bundle_go(b, node(1, 100)) == 0);
    nevents = 0;
    CHECK(hclose(b) == 0);
    nexpected_tree = 0;
    expect_tree(3, 1);
    expect_tree(1, 100);
    check_events(expected_tree, nexpected_tree);
    CHECK(nevents == 2 * (15 + 3));
}

/* ---- Cancelled while waiting inside hclose for a child. ---- */

static int inner_child = -1;

coroutine static void slow_child(int ch) {
    int v;
    CHECK_ERR(chrecv(ch, &v, sizeof(v), -1), ECANCELED);
    log_event(2, ECANCELED);
}

coroutine static void closes_child(int ch) {
    inner_child = go(slow_child(ch));
    CHECK(inner_child >= 0);
    CHECK(yield() == 0);
    log_event(1, ENTER);
    /* Cancelled by the main coroutine while in here. */
    CHECK(hclose(inner_child) == 0);
    log_event(1, LEAVE);
    CHECK_ERR(msleep(0), ECANCELED);
    log_event(1, ECANCELED);
}

static void test_cancel_inside_hclose(void) {
    int chv[2];
    CHECK(chmake(chv) == 0);
    nevents = 0;
    int outer = bundle();
    CHECK(outer >= 0);
    CHECK(bundle_go(outer, closes_child(chv[1])) == 0);
    /* Its go() returns, then it yields, then it enters hclose. */
    CHECK(yield() == 0);
    CHECK(nevents == 0);
    CHECK(yield() == 0);
    /* closes_child is now inside hclose, waiting for slow_child. */
    CHECK(nevents == 1);
    CHECK(hclose(outer) == 0);
    static const struct event expected[] = {
        {1, ENTER}, {2, ECANCELED}, {1, LEAVE}, {1, ECANCELED},
    };
    check_events(expected, 4);
    CHECK(hclose(chv[0]) == 0);
    CHECK(hclose(chv[1]) == 0);
}

/* ---- hclose of finished coroutines and empty bundles: no switch. ---- */

static int ticks;

coroutine static void ticker(void) {
    while(1) {
        ticks++;
        if(yield() != 0) {
            CHECK(errno == ECANCELED);
            return;
        }
    }
}

coroutine static void quick(void) {
}

static void test_no_switch(void) {
    int h = go(quick());
    CHECK(h >= 0);
    int h2 = go_mem(quick(), membuf, sizeof(membuf));
    CHECK(h2 >= 0);
    int b = bundle();
    CHECK(b >= 0);
    int b2 = bundle();
    CHECK(b2 >= 0);
    CHECK(bundle_go(b2, quick()) == 0);
    ticks = 0;
    int t = go(ticker());
    CHECK(t >= 0);
    CHECK(ticks == 1);
    CHECK(hclose(h) == 0);
    CHECK(hclose(h2) == 0);
    CHECK(hclose(b) == 0);
    CHECK(hclose(b2) == 0);
    CHECK(ticks == 1);
    CHECK(yield() == 0);
    CHECK(ticks == 2);
    CHECK(hclose(t) == 0);
}

/* ---- A coroutine closing its own bundle aborts the process. ---- */

static int self_handle = -1;

coroutine static void close_self(int ch) {
    int v;
    CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
    hclose(self_handle);
}

static void test_close_self(void) {
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if(pid == 0) {
        alarm(20);
        int chv[2];
        CHECK(chmake(chv) == 0);
        self_handle = go(close_self(chv[1]));
        CHECK(self_handle >= 0);
        int v = 1;
        CHECK(chsend(chv[0], &v, sizeof(v), -1) == 0);
        CHECK(bundle_wait(self_handle, -1) == 0);
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
}

int main(void) {
    test_close_self();
    test_launch_order();
    test_blocked();
    test_ready_queue();
    test_sticky();
    test_close_callback();
    test_nested();
    test_cancel_inside_hclose();
    test_no_switch();
    return 0;
}
