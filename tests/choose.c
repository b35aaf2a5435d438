/*
 * tests/choose.c: choose() (spec §7.6, §3.3, §3.5 item 6, §13 item 13).
 * Covers the scan in array order (lowest possible index wins, later clauses
 * are not examined), per-clause errors returned as (index, errno), success
 * as (index, errno == 0), global errors as -1 (ECANCELED, EINVAL,
 * ETIMEDOUT), choose with no clauses, blocking choose woken on any clause
 * (by a partner, chdone, closing the channel, a length mismatch) with its
 * other registrations withdrawn, and the same end in several clauses.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- Helpers ------------------------------------------------------------ */

static struct chclause clause(int op, int ch, void *val, size_t len) {
    struct chclause c;
    memset(&c, 0, sizeof(c));
    c.op = op;
    c.ch = ch;
    c.val = val;
    c.len = len;
    return c;
}

/* The outcome of a call made by a coroutine; finished[] logs the order in
   which the calls returned. */
struct op {
    int done;
    int rc;
    int err;
    int val[4];
};
static struct op *finished[16];
static int nfinished;

static void op_init(struct op *op) {
    memset(op, 0, sizeof(*op));
    op->rc = 99;
    for(int i = 0; i != 4; ++i)
        op->val[i] = -7;
}

static void finish(struct op *op, int rc) {
    op->rc = rc;
    op->err = errno;
    op->done = 1;
    if(nfinished < 16)
        finished[nfinished] = op;
    nfinished++;
}

coroutine static void do_send(int ch, int v, size_t len, int64_t deadline,
      struct op *op) {
    op->val[0] = v;
    op->val[1] = v + 1;
    int rc = chsend(ch, op->val, len, deadline);
    finish(op, rc);
}

coroutine static void do_recv(int ch, size_t len, int64_t deadline,
      struct op *op) {
    int rc = chrecv(ch, op->val, len, deadline);
    finish(op, rc);
}

/* A choose over up to four clauses; the clauses' buffers are op->val[i] for
   clause i (each clause gets its own int), or NULL for len 0. */
struct chooser {
    struct op op;
    int n;
    struct chclause cl[4];
};

coroutine static void do_choose(struct chooser *c, int64_t deadline) {
    for(int i = 0; i != c->n; ++i)
        if(c->cl[i].len > 0 && c->cl[i].val == NULL)
            c->cl[i].val = &c->op.val[i];
    errno = 12345;
    int rc = choose(c->cl, c->n, deadline);
    finish(&c->op, rc);
}

static void chooser_init(struct chooser *c, int n) {
    memset(c, 0, sizeof(*c));
    op_init(&c->op);
    c->n = n;
}

/* A coroutine that stays in the ready queue once: proves that a call made
   meanwhile by the main coroutine did not switch. */
static int ticks;
coroutine static void ticker(void) {
    CHECK(yield() == 0);
    ticks++;
}

static void *dummy_query(struct hvfs *vfs, const void *type) {
    (void)vfs; (void)type;
    errno = ENOTSUP;
    return NULL;
}
static void dummy_close(struct hvfs *vfs) {
    (void)vfs;
}
static struct hvfs dummy_vfs = {dummy_query, dummy_close};

static void make_chan(int ch[2]) {
    CHECK(chmake(ch) == 0);
    CHECK(ch[0] >= 0 && ch[1] >= 0 && ch[0] != ch[1]);
}

static void close_chan(int ch[2]) {
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);
}

/* choose() must give this (index, errno) pair. */
#define CHECK_CHOOSE(cl, n, deadline, idx, err) \
    do { \
        errno = 12345; \
        int choose_rc__ = choose((cl), (n), (deadline)); \
        CHECK(choose_rc__ == (idx) && errno == (err)); \
    } while(0)

/* ---- Immediate choices -------------------------------------------------- */

/* Among clauses that are all immediately possible the lowest index wins,
   without a switch; impossible clauses before it are skipped. */
static void test_lowest_index(void) {
    int a[2], b[2], c[2];
    make_chan(a);
    make_chan(b);
    make_chan(c);
    struct op sa, sb, rc;
    op_init(&sa);
    op_init(&sb);
    op_init(&rc);
    nfinished = 0;
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_send(a[0], 1, sizeof(int), -1, &sa)) == 0);
    CHECK(bundle_go(bn, do_send(b[0], 2, sizeof(int), -1, &sb)) == 0);
    CHECK(bundle_go(bn, do_recv(c[0], sizeof(int), -1, &rc)) == 0);
    ticks = 0;
    int t = go(ticker());
    CHECK(t >= 0);

    int x = -1, y = -1, z = 30;
    struct chclause cl[3];
    cl[0] = clause(CHRECV, c[1], &x, sizeof(x)); /* not possible */
    cl[1] = clause(CHRECV, b[1], &y, sizeof(y));
    cl[2] = clause(CHRECV, a[1], &x, sizeof(x));
    CHECK_CHOOSE(cl, 3, -1, 1, 0);
    CHECK(y == 2 && x == -1);
    CHECK(ticks == 0 && !sb.done && !sa.done);
    CHECK_CHOOSE(cl, 3, 0, 2, 0);
    CHECK(x == 1);
    CHECK(ticks == 0);
    CHECK_CHOOSE(cl, 3, 0, -1, ETIMEDOUT);
    CHECK(ticks == 0);

    /* Let the two woken senders finish. */
    CHECK(yield() == 0);
    CHECK(ticks == 1);
    CHECK(sa.done && sa.rc == 0 && sb.done && sb.rc == 0);

    /* A send clause and a receive clause, both possible: index 0 wins,
       whichever kind it is. */
    op_init(&sa);
    CHECK(bundle_go(bn, do_send(a[0], 3, sizeof(int), -1, &sa)) == 0);
    cl[0] = clause(CHSEND, c[1], &z, sizeof(z));
    cl[1] = clause(CHRECV, a[1], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 0, 0);
    CHECK(x == 1);
    CHECK(!rc.done && !sa.done);
    CHECK(yield() == 0);
    CHECK(rc.done && rc.rc == 0 && rc.val[0] == 30);
    CHECK(!sa.done);
    struct op rc2;
    op_init(&rc2);
    CHECK(bundle_go(bn, do_recv(c[0], sizeof(int), -1, &rc2)) == 0);
    z = 31;
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHSEND, c[1], &z, sizeof(z));
    CHECK_CHOOSE(cl, 2, -1, 0, 0);
    CHECK(x == 3);
    CHECK(!rc2.done);
    CHECK_CHOOSE(cl, 2, -1, 1, 0);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(rc2.rc == 0 && rc2.val[0] == 31);
    CHECK(sa.rc == 0 && sb.rc == 0);
    CHECK(yield() == 0);
    CHECK(ticks == 1);
    CHECK(hclose(t) == 0);
    CHECK(hclose(bn) == 0);
    close_chan(a);
    close_chan(b);
    close_chan(c);
}

/* Per-clause errors come back as (index, errno); the first applicable rule
   of the first failing clause decides; nothing is registered. */
static void test_clause_errors(void) {
    int a[2], d[2];
    make_chan(a);
    make_chan(d);
    int x = 5;
    struct chclause cl[3];

    /* EBADF: negative, never used and closed numbers. */
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHRECV, -1, &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 1, EBADF);
    cl[1] = clause(CHSEND, 1 << 20, &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, 0, 1, EBADF);
    int dead[2];
    make_chan(dead);
    close_chan(dead);
    cl[0] = clause(CHSEND, dead[0], &x, sizeof(x));
    CHECK_CHOOSE(cl, 1, -1, 0, EBADF);

    /* ENOTSUP: a bundle and a custom handle. */
    int bn = bundle();
    CHECK(bn >= 0);
    int h = hmake(&dummy_vfs);
    CHECK(h >= 0);
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHRECV, bn, &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 1, ENOTSUP);
    cl[0] = clause(CHSEND, h, &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 0, ENOTSUP);

    /* EINVAL: NULL buffer with len > 0, and bad op values. */
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHSEND, a[0], NULL, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 1, EINVAL);
    cl[1] = clause(CHRECV, a[0], NULL, 1);
    CHECK_CHOOSE(cl, 2, -1, 1, EINVAL);
    cl[1] = clause(0, a[0], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 1, EINVAL);
    cl[1] = clause(3, a[0], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, 0, 1, EINVAL);
    cl[1] = clause(-1, a[0], NULL, 0);
    CHECK_CHOOSE(cl, 2, -1, 1, EINVAL);
    cl[1] = clause(CHSEND | CHRECV, a[0], NULL, 0);
    CHECK_CHOOSE(cl, 2, -1, 1, EINVAL);
    /* The handle is checked before the buffer and the op. */
    cl[1] = clause(3, -1, NULL, 4);
    CHECK_CHOOSE(cl, 2, -1, 1, EBADF);
    cl[1] = clause(3, bn, NULL, 4);
    CHECK_CHOOSE(cl, 2, -1, 1, ENOTSUP);

    /* EPIPE on both sides of a done direction. */
    CHECK(chdone(d[0]) == 0);
    cl[1] = clause(CHSEND, d[0], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 1, EPIPE);
    cl[1] = clause(CHRECV, d[1], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, 0, 1, EPIPE);
    cl[1] = clause(CHRECV, d[1], NULL, 0);
    CHECK_CHOOSE(cl, 2, now() + 1000, 1, EPIPE);
    /* The buffer is checked before the direction. */
    cl[1] = clause(CHSEND, d[0], NULL, 4);
    CHECK_CHOOSE(cl, 2, -1, 1, EINVAL);
    /* The opposite direction is still fine: not possible, so skipped. */
    cl[0] = clause(CHSEND, d[1], &x, sizeof(x));
    cl[1] = clause(CHRECV, d[0], &x, sizeof(x));
    cl[2] = clause(CHRECV, -1, &x, sizeof(x));
    CHECK_CHOOSE(cl, 3, -1, 2, EBADF);

    /* An error before a possible clause wins and leaves the partner be. */
    struct op s;
    op_init(&s);
    nfinished = 0;
    CHECK(bundle_go(bn, do_send(a[0], 9, sizeof(int), -1, &s)) == 0);
    cl[0] = clause(CHRECV, -1, &x, sizeof(x));
    cl[1] = clause(CHRECV, a[1], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, -1, 0, EBADF);
    CHECK(yield() == 0);
    CHECK(!s.done && x == 5);
    CHECK_CHOOSE(cl + 1, 1, 0, 0, 0);
    CHECK(x == 9);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(s.rc == 0);

    /* Nothing was left registered by the failing calls. */
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK_ERR(chrecv(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK(hclose(h) == 0);
    CHECK(hclose(bn) == 0);
    close_chan(a);
    close_chan(d);
}

/* EMSGSIZE as a clause error: the caller gets (index, EMSGSIZE) and the first
   waiting partner fails with EMSGSIZE too; nothing is copied. */
static void test_clause_emsgsize(void) {
    int a[2];
    make_chan(a);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_recv(a[1], sizeof(int), -1, &r)) == 0);
    int big[2] = {1, 2};
    int x = 4;
    struct chclause cl[2];
    cl[0] = clause(CHRECV, a[0], &x, sizeof(x));
    cl[1] = clause(CHSEND, a[0], big, sizeof(big));
    CHECK_CHOOSE(cl, 2, -1, 1, EMSGSIZE);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(r.rc == -1 && r.err == EMSGSIZE && r.val[0] == -7);

    CHECK(bundle_go(bn, do_send(a[1], 6, 2 * sizeof(int), -1, &s)) == 0);
    cl[1] = clause(CHRECV, a[0], &x, sizeof(x));
    CHECK_CHOOSE(cl + 1, 1, 0, 0, EMSGSIZE);
    CHECK(x == 4);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(s.rc == -1 && s.err == EMSGSIZE);
    CHECK(hclose(bn) == 0);
    close_chan(a);
}

/* Success sets errno to 0; clauses after the winning one are not examined,
   so an invalid later clause goes unnoticed. */
static void test_success_and_later_clauses(void) {
    int a[2];
    make_chan(a);
    struct op s;
    op_init(&s);
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_send(a[0], 17, sizeof(int), -1, &s)) == 0);
    int x = 0;
    struct chclause cl[4];
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(77, -1, NULL, 4);
    cl[2] = clause(CHSEND, bn, NULL, 4);
    cl[3] = clause(0, 1 << 20, NULL, 1);
    errno = EINVAL;
    CHECK(choose(cl, 4, -1) == 0);
    CHECK(errno == 0);
    CHECK(x == 17);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(s.rc == 0);

    /* The same with the winner in the middle: the clauses before it were
       valid but not possible. */
    int b[2];
    make_chan(b);
    op_init(&s);
    CHECK(bundle_go(bn, do_send(b[0], 18, sizeof(int), -1, &s)) == 0);
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHRECV, b[1], &x, sizeof(x));
    cl[2] = clause(-5, -1, NULL, 4);
    errno = ETIMEDOUT;
    CHECK(choose(cl, 3, 0) == 1);
    CHECK(errno == 0);
    CHECK(x == 18);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(hclose(bn) == 0);
    close_chan(a);
    close_chan(b);
}

/* ---- Global errors ------------------------------------------------------ */

/* EINVAL for nclauses < 0 and for NULL clauses with nclauses > 0. */
static void test_global_einval(void) {
    int a[2];
    make_chan(a);
    int x;
    struct chclause cl[1];
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    CHECK_ERR(choose(cl, -1, -1), EINVAL);
    CHECK_ERR(choose(cl, -1, 0), EINVAL);
    CHECK_ERR(choose(NULL, -1, -1), EINVAL);
    CHECK_ERR(choose(NULL, 1, -1), EINVAL);
    CHECK_ERR(choose(NULL, 3, 0), EINVAL);
    close_chan(a);
}

/* Deadline 0 with nothing possible: -1/ETIMEDOUT without a switch; a past
   deadline gives ETIMEDOUT too; a future one not before it is reached, and
   the registrations are withdrawn afterwards. */
static void test_global_etimedout(void) {
    int a[2], b[2];
    make_chan(a);
    make_chan(b);
    int x = 1, y = 2;
    struct chclause cl[2];
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHSEND, b[0], &y, sizeof(y));
    ticks = 0;
    int t = go(ticker());
    CHECK(t >= 0);
    CHECK_ERR(choose(cl, 2, 0), ETIMEDOUT);
    CHECK(ticks == 0);
    CHECK(yield() == 0);
    CHECK(ticks == 1);
    CHECK(hclose(t) == 0);
    CHECK_ERR(choose(cl, 2, 1), ETIMEDOUT);
    int64_t deadline = now() + 30;
    CHECK_ERR(choose(cl, 2, deadline), ETIMEDOUT);
    int64_t end = now();
    CHECK(end >= deadline);
    CHECK(end < deadline + 1000);
    CHECK(x == 1 && y == 2);
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK_ERR(chrecv(b[1], &y, sizeof(y), 0), ETIMEDOUT);
    close_chan(a);
    close_chan(b);
}

/* With no clauses: deadline 0 fails at once, a deadline sleeps until then,
   -1 waits until the coroutine is cancelled. */
static void test_no_clauses(void) {
    CHECK_ERR(choose(NULL, 0, 0), ETIMEDOUT);
    struct chclause cl[1];
    CHECK_ERR(choose(cl, 0, 0), ETIMEDOUT);
    int64_t start = now();
    int64_t deadline = start + 50;
    CHECK_ERR(choose(NULL, 0, deadline), ETIMEDOUT);
    int64_t end = now();
    CHECK(end >= deadline);
    CHECK(end < deadline + 1000);

    struct chooser c;
    chooser_init(&c, 0);
    nfinished = 0;
    int cr = go(do_choose(&c, -1));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!c.op.done);
    CHECK(hclose(cr) == 0);
    CHECK(c.op.done && c.op.rc == -1 && c.op.err == ECANCELED);
}

/* A cancelled coroutine's choose fails with -1/ECANCELED before anything
   else: with a possible clause, with invalid arguments, with no clauses.
   A choose blocked when its bundle is closed gets ECANCELED and withdraws
   its registrations. */
static struct {
    int a0, a1;
    int sleep_rc, sleep_err;
    int rc[5], err[5];
} ce;

coroutine static void cancelled_choose(void) {
    errno = 0;
    ce.sleep_rc = msleep(-1);
    ce.sleep_err = errno;
    int x = 1;
    struct chclause cl[2];
    cl[0] = clause(CHSEND, ce.a0, &x, sizeof(x));
    cl[1] = clause(CHRECV, -1, NULL, 4);
    int i = 0;
    errno = 0; ce.rc[i] = choose(cl, 2, -1); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = choose(cl, 2, 0); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = choose(cl + 1, 1, 0); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = choose(NULL, -1, 0); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = choose(NULL, 0, 0); ce.err[i++] = errno;
}

static void test_cancelled(void) {
    int a[2];
    make_chan(a);
    struct op r;
    op_init(&r);
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_recv(a[1], sizeof(int), -1, &r)) == 0);
    memset(&ce, 0, sizeof(ce));
    ce.a0 = a[0];
    int cr = go(cancelled_choose());
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(ce.sleep_rc == -1 && ce.sleep_err == ECANCELED);
    for(int i = 0; i != 5; ++i)
        CHECK(ce.rc[i] == -1 && ce.err[i] == ECANCELED);
    CHECK(!r.done);
    int x = 8;
    CHECK(chsend(a[0], &x, sizeof(x), 0) == 0);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 8);

    /* Blocked, then cancelled. */
    struct chooser c;
    chooser_init(&c, 2);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    c.cl[1] = clause(CHSEND, a[1], NULL, sizeof(int));
    cr = go(do_choose(&c, -1));
    CHECK(cr >= 0);
    CHECK(!c.op.done);
    CHECK(hclose(cr) == 0);
    CHECK(c.op.done && c.op.rc == -1 && c.op.err == ECANCELED);
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK_ERR(chrecv(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK(hclose(bn) == 0);
    close_chan(a);
}

/* Inside a close callback choose fails with ECANCELED. */
static int cb_rc, cb_err, cb_ch;
static void cb_close(struct hvfs *vfs) {
    (void)vfs;
    int x = 1;
    struct chclause cl[1];
    cl[0] = clause(CHSEND, cb_ch, &x, sizeof(x));
    errno = 0;
    cb_rc = choose(cl, 1, 0);
    cb_err = errno;
}
static struct hvfs cb_vfs = {dummy_query, cb_close};

static void test_close_callback(void) {
    int a[2];
    make_chan(a);
    struct op r;
    op_init(&r);
    int cr = go(do_recv(a[1], sizeof(int), -1, &r));
    CHECK(cr >= 0);
    cb_ch = a[0];
    int h = hmake(&cb_vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(cb_rc == -1 && cb_err == ECANCELED);
    CHECK(!r.done);
    CHECK(hclose(cr) == 0);
    CHECK(r.rc == -1 && r.err == ECANCELED);
    close_chan(a);
}

/* ---- Blocking choose ---------------------------------------------------- */

/* A blocked choose woken by a sender on its second clause returns 1 with
   errno 0; its first registration is withdrawn, so a later sender on the
   first clause's channel is not taken. */
static void test_woken_by_second(void) {
    int a[2], b[2];
    make_chan(a);
    make_chan(b);
    struct chooser c;
    chooser_init(&c, 2);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    c.cl[1] = clause(CHRECV, b[1], NULL, sizeof(int));
    nfinished = 0;
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_choose(&c, -1)) == 0);
    CHECK(!c.op.done);
    int x = 71;
    CHECK(chsend(b[0], &x, sizeof(x), -1) == 0);
    CHECK(!c.op.done);
    x = 72;
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    struct op s;
    op_init(&s);
    CHECK(bundle_go(bn, do_send(a[0], 73, sizeof(int), -1, &s)) == 0);
    CHECK(yield() == 0);
    CHECK(c.op.done && c.op.rc == 1 && c.op.err == 0);
    CHECK(c.op.val[1] == 71 && c.op.val[0] == -7);
    CHECK(!s.done);
    CHECK(chrecv(a[1], &x, sizeof(x), 0) == 0);
    CHECK(x == 73);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(s.rc == 0);
    CHECK(hclose(bn) == 0);
    close_chan(a);
    close_chan(b);
}

/* A blocked choose with send clauses is woken by a receiver on one of them;
   it returns that index and the value arrives. */
static void test_woken_by_receiver(void) {
    int a[2], b[2];
    make_chan(a);
    make_chan(b);
    struct chooser c;
    chooser_init(&c, 3);
    c.op.val[0] = 10;
    c.op.val[1] = 11;
    c.op.val[2] = 12;
    c.cl[0] = clause(CHSEND, a[0], NULL, sizeof(int));
    c.cl[1] = clause(CHRECV, a[0], NULL, sizeof(int));
    c.cl[2] = clause(CHSEND, b[0], NULL, sizeof(int));
    int cr = go(do_choose(&c, now() + 60000));
    CHECK(cr >= 0);
    int x = 0;
    CHECK(chrecv(b[1], &x, sizeof(x), 0) == 0);
    CHECK(x == 12);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(c.op.rc == 2 && c.op.err == 0);
    CHECK_ERR(chrecv(a[1], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK_ERR(chsend(a[1], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK(hclose(cr) == 0);

    /* A choose meets a choose. */
    chooser_init(&c, 1);
    c.op.val[0] = 44;
    c.cl[0] = clause(CHSEND, a[0], NULL, sizeof(int));
    cr = go(do_choose(&c, -1));
    CHECK(cr >= 0);
    struct chclause cl[2];
    cl[0] = clause(CHRECV, b[1], &x, sizeof(x));
    cl[1] = clause(CHRECV, a[1], &x, sizeof(x));
    CHECK_CHOOSE(cl, 2, 0, 1, 0);
    CHECK(x == 44);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(c.op.rc == 0 && c.op.err == 0);
    CHECK(hclose(cr) == 0);
    close_chan(a);
    close_chan(b);
}

/* A blocked choose learns of failures on a clause as (index, errno): chdone
   on the peer gives EPIPE, a partner with another length EMSGSIZE, closing
   both ends EPIPE. */
static void test_woken_by_errors(void) {
    int a[2], b[2];
    make_chan(a);
    make_chan(b);
    struct chooser c;

    chooser_init(&c, 2);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    c.cl[1] = clause(CHRECV, b[1], NULL, sizeof(int));
    int cr = go(do_choose(&c, -1));
    CHECK(cr >= 0);
    CHECK(chdone(b[0]) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(c.op.rc == 1 && c.op.err == EPIPE);
    CHECK(hclose(cr) == 0);
    int x = 1;
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    close_chan(b);
    make_chan(b);

    chooser_init(&c, 2);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    c.cl[1] = clause(CHRECV, b[1], NULL, sizeof(int));
    cr = go(do_choose(&c, -1));
    CHECK(cr >= 0);
    int big[2] = {3, 4};
    CHECK_ERR(chsend(b[0], big, sizeof(big), -1), EMSGSIZE);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(c.op.rc == 1 && c.op.err == EMSGSIZE);
    CHECK(c.op.val[1] == -7);
    CHECK(hclose(cr) == 0);
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);

    chooser_init(&c, 2);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    c.cl[1] = clause(CHSEND, b[1], NULL, sizeof(int));
    cr = go(do_choose(&c, -1));
    CHECK(cr >= 0);
    CHECK(hclose(b[0]) == 0);
    CHECK(yield() == 0);
    CHECK(!c.op.done);
    CHECK(hclose(b[1]) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(c.op.rc == 1 && c.op.err == EPIPE);
    CHECK(hclose(cr) == 0);
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    close_chan(a);
}

/* Blocked choose clauses queue behind earlier waiters in FIFO order like
   plain calls do. */
static void test_fifo_with_plain(void) {
    int a[2];
    make_chan(a);
    struct op r;
    op_init(&r);
    struct chooser c;
    chooser_init(&c, 1);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    nfinished = 0;
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_recv(a[1], sizeof(int), -1, &r)) == 0);
    CHECK(bundle_go(bn, do_choose(&c, -1)) == 0);
    int x = 1;
    CHECK(chsend(a[0], &x, sizeof(x), 0) == 0);
    x = 2;
    CHECK(chsend(a[0], &x, sizeof(x), 0) == 0);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 1);
    CHECK(c.op.rc == 0 && c.op.err == 0 && c.op.val[0] == 2);
    CHECK(nfinished == 2 && finished[0] == &r && finished[1] == &c.op);
    CHECK(hclose(bn) == 0);
    close_chan(a);
}

/* The same end may appear in several clauses: immediately, the first
   possible one wins; blocked, the first registered one is served and the
   other is withdrawn. A send and a receive clause on one end are two
   different directions. */
static void test_same_end(void) {
    int a[2];
    make_chan(a);
    struct op s;
    op_init(&s);
    int bn = bundle();
    CHECK(bn >= 0);
    CHECK(bundle_go(bn, do_send(a[0], 5, sizeof(int), -1, &s)) == 0);
    int x = -1, y = -1;
    struct chclause cl[2];
    cl[0] = clause(CHRECV, a[1], &x, sizeof(x));
    cl[1] = clause(CHRECV, a[1], &y, sizeof(y));
    CHECK_CHOOSE(cl, 2, 0, 0, 0);
    CHECK(x == 5 && y == -1);
    CHECK(bundle_wait(bn, -1) == 0);

    struct chooser c;
    chooser_init(&c, 2);
    c.cl[0] = clause(CHRECV, a[1], NULL, sizeof(int));
    c.cl[1] = clause(CHRECV, a[1], NULL, sizeof(int));
    CHECK(bundle_go(bn, do_choose(&c, -1)) == 0);
    x = 6;
    CHECK(chsend(a[0], &x, sizeof(x), 0) == 0);
    CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    CHECK(bundle_wait(bn, -1) == 0);
    CHECK(c.op.rc == 0 && c.op.err == 0);
    CHECK(c.op.val[0] == 6 && c.op.val[1] == -7);

    /* Send and receive on one end: the partner decides which. */
    for(int round = 0; round != 2; ++round) {
        chooser_init(&c, 2);
        c.op.val[0] = 60;
        c.cl[0] = clause(CHSEND, a[1], NULL, sizeof(int));
        c.cl[1] = clause(CHRECV, a[1], NULL, sizeof(int));
        CHECK(bundle_go(bn, do_choose(&c, -1)) == 0);
        if(round == 0) {
            CHECK(chrecv(a[0], &x, sizeof(x), 0) == 0);
            CHECK(x == 60);
        }
        else {
            x = 61;
            CHECK(chsend(a[0], &x, sizeof(x), 0) == 0);
        }
        CHECK(bundle_wait(bn, -1) == 0);
        CHECK(c.op.rc == round && c.op.err == 0);
        if(round == 1)
            CHECK(c.op.val[1] == 61);
        CHECK_ERR(chsend(a[0], &x, sizeof(x), 0), ETIMEDOUT);
        CHECK_ERR(chrecv(a[0], &x, sizeof(x), 0), ETIMEDOUT);
    }
    CHECK(hclose(bn) == 0);
    close_chan(a);
}

/* One choose registered as a sender on a[0] and as a receiver at a[1]
   waits on both sides of one direction. chdone(a[0]) wakes receivers at the
   peer end before senders on the same end, so it returns the receive
   clause's index with EPIPE, whichever order the clauses are in. Closing
   both ends also wakes receivers before senders. */
static void test_chdone_order(void) {
    for(int round = 0; round != 4; ++round) {
        int a[2];
        make_chan(a);
        int recv_idx = round % 2;
        struct chooser c;
        chooser_init(&c, 2);
        c.cl[recv_idx] = clause(CHRECV, a[1], NULL, sizeof(int));
        c.cl[1 - recv_idx] = clause(CHSEND, a[0], NULL, sizeof(int));
        int cr = go(do_choose(&c, -1));
        CHECK(cr >= 0);
        CHECK(!c.op.done);
        if(round < 2) {
            CHECK(chdone(a[0]) == 0);
        }
        else {
            CHECK(hclose(a[0]) == 0);
            CHECK(hclose(a[1]) == 0);
        }
        CHECK(bundle_wait(cr, -1) == 0);
        CHECK(c.op.rc == recv_idx && c.op.err == EPIPE);
        CHECK(hclose(cr) == 0);
        if(round < 2)
            close_chan(a);
    }
}

int main(void) {
    /* A watchdog: a test that would block forever fails instead. */
    alarm(60);
    test_lowest_index();
    test_clause_errors();
    test_clause_emsgsize();
    test_success_and_later_clauses();
    test_global_einval();
    test_global_etimedout();
    test_no_clauses();
    test_cancelled();
    test_close_callback();
    test_woken_by_second();
    test_woken_by_receiver();
    test_woken_by_errors();
    test_fifo_with_plain();
    test_same_end();
    test_chdone_order();
    return 0;
}
