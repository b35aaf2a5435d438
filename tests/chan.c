/*
 * tests/chan.c: channels (spec §7.1-7.5, §7.7, §3.5, §13 items 10-12).
 * Covers chmake/chmake_mem (handles, EINVAL, storage at an odd address,
 * ECANCELED in a close callback and in a cancelled coroutine), chsend and
 * chrecv (rendezvous in both orders without a switch for the second party,
 * FIFO queues, EMSGSIZE for both parties, zero-length messages, EINVAL,
 * deadlines, EBADF/ENOTSUP, cancellation), chdone (EPIPE in each direction,
 * wake-up order, the opposite direction keeps working), closing the ends,
 * and a 100,000-message ping-pong.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- Helpers ------------------------------------------------------------ */

/* The outcome of one channel call made by a coroutine. */
struct op {
    int done;
    int rc;
    int err;
    int val[4];
};

/* Coroutines append their op here when their call has returned, so a test
   can check the order in which waiters were woken. */
static struct op *finished[16];
static int nfinished;

static void op_init(struct op *op) {
    memset(op, 0, sizeof(*op));
    op->rc = 99;
    op->val[0] = op->val[1] = op->val[2] = op->val[3] = -7;
}

static void finish(struct op *op, int rc) {
    op->rc = rc;
    op->err = errno;
    op->done = 1;
    if(nfinished < 16)
        finished[nfinished] = op;
    nfinished++;
}

coroutine static void do_recv(int ch, size_t len, int64_t deadline,
      struct op *op) {
    int rc = chrecv(ch, op->val, len, deadline);
    finish(op, rc);
}

coroutine static void do_send(int ch, int v, size_t len, int64_t deadline,
      struct op *op) {
    op->val[0] = v;
    op->val[1] = v + 1;
    int rc = chsend(ch, op->val, len, deadline);
    finish(op, rc);
}

coroutine static void do_recv_null(int ch, struct op *op) {
    int rc = chrecv(ch, NULL, 0, -1);
    finish(op, rc);
}

coroutine static void do_send_null(int ch, struct op *op) {
    int rc = chsend(ch, NULL, 0, -1);
    finish(op, rc);
}

/* A coroutine that stays in the ready queue once: it proves that a call made
   meanwhile by the main coroutine did not switch. */
static int ticks;
coroutine static void ticker(void) {
    CHECK(yield() == 0);
    ticks++;
}

/* A handle that is not a channel. */
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
    ch[0] = ch[1] = -5;
    CHECK(chmake(ch) == 0);
    CHECK(ch[0] >= 0 && ch[1] >= 0 && ch[0] != ch[1]);
}

static void close_chan(int ch[2]) {
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);
}

/* ---- chmake / chmake_mem ------------------------------------------------ */

/* chmake and chmake_mem return 0 and two distinct live handles; both ends
   of a second channel differ from the first's. */
static void test_chmake(void) {
    int a[2], b[2];
    make_chan(a);
    make_chan(b);
    CHECK(b[0] != a[0] && b[0] != a[1] && b[1] != a[0] && b[1] != a[1]);
    struct chstorage st;
    int c[2] = {-5, -5};
    CHECK(chmake_mem(&st, c) == 0);
    CHECK(c[0] >= 0 && c[1] >= 0 && c[0] != c[1]);
    CHECK(c[0] != a[0] && c[0] != a[1] && c[0] != b[0] && c[0] != b[1]);
    close_chan(a);
    close_chan(b);
    close_chan(c);
    /* The storage can be used again once both ends are closed. */
    CHECK(chmake_mem(&st, c) == 0);
    close_chan(c);
}

/* chmake_mem(NULL) fails with EINVAL and creates no handle. */
static void test_chmake_mem_null(void) {
    int ch[2] = {-5, -5};
    CHECK_ERR(chmake_mem(NULL, ch), EINVAL);
}

/* Storage at an odd address works, and the library writes nothing outside
   the 144 bytes it was given. */
coroutine static void echo_n(int ch, int n) {
    for(int i = 0; i != n; ++i) {
        int v;
        CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
        v *= 2;
        CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
    }
}

static void test_chmake_mem_unaligned(void) {
    _Alignas(16) char buf[160];
    memset(buf, 0xa5, sizeof(buf));
    struct chstorage *st = (struct chstorage *)(buf + 1);
    int ch[2];
    CHECK(chmake_mem(st, ch) == 0);
    int cr = go(echo_n(ch[0], 100));
    CHECK(cr >= 0);
    for(int i = 0; i != 100; ++i) {
        int v = i;
        CHECK(chsend(ch[1], &v, sizeof(v), -1) == 0);
        CHECK(chrecv(ch[1], &v, sizeof(v), -1) == 0);
        CHECK(v == 2 * i);
    }
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(chdone(ch[0]) == 0);
    CHECK_ERR(chrecv(ch[1], NULL, 0, 0), EPIPE);
    close_chan(ch);
    CHECK((unsigned char)buf[0] == 0xa5);
    for(size_t i = 145; i != sizeof(buf); ++i)
        CHECK((unsigned char)buf[i] == 0xa5);
}

/* Inside a close callback: chmake and chmake_mem fail with ECANCELED
   (chmake_mem(NULL) still reports EINVAL first), chsend and chrecv fail with
   ECANCELED even with a partner waiting, chdone works. */
static struct {
    int ch[2];
    int chmake_rc, chmake_err;
    int mem_rc, mem_err;
    int memnull_rc, memnull_err;
    int send_rc, send_err;
    int recv_rc, recv_err;
    int done_rc;
    int closes;
} cb;

static void cb_close(struct hvfs *vfs) {
    (void)vfs;
    cb.closes++;
    int chv[2];
    struct chstorage st;
    errno = 0;
    cb.chmake_rc = chmake(chv);
    cb.chmake_err = errno;
    errno = 0;
    cb.mem_rc = chmake_mem(&st, chv);
    cb.mem_err = errno;
    errno = 0;
    cb.memnull_rc = chmake_mem(NULL, chv);
    cb.memnull_err = errno;
    int v = 3;
    errno = 0;
    cb.send_rc = chsend(cb.ch[1], &v, sizeof(v), -1);
    cb.send_err = errno;
    errno = 0;
    cb.recv_rc = chrecv(cb.ch[1], &v, sizeof(v), 0);
    cb.recv_err = errno;
    cb.done_rc = chdone(cb.ch[1]);
}
static struct hvfs cb_vfs = {dummy_query, cb_close};

static void test_close_callback(void) {
    memset(&cb, 0, sizeof(cb));
    make_chan(cb.ch);
    /* A receiver waits at ch[0]: a send on ch[1] could complete at once. */
    struct op r;
    op_init(&r);
    nfinished = 0;
    int cr = go(do_recv(cb.ch[0], sizeof(int), -1, &r));
    CHECK(cr >= 0);
    int h = hmake(&cb_vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(cb.closes == 1);
    CHECK(cb.chmake_rc == -1 && cb.chmake_err == ECANCELED);
    CHECK(cb.mem_rc == -1 && cb.mem_err == ECANCELED);
    CHECK(cb.memnull_rc == -1 && cb.memnull_err == EINVAL);
    CHECK(cb.send_rc == -1 && cb.send_err == ECANCELED);
    CHECK(cb.recv_rc == -1 && cb.recv_err == ECANCELED);
    CHECK(cb.done_rc == 0);
    /* chdone(ch[1]) in the callback woke the receiver with EPIPE. */
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(r.done && r.rc == -1 && r.err == EPIPE && r.val[0] == -7);
    CHECK(hclose(cr) == 0);
    /* Outside the callback everything works again. */
    int ch[2];
    make_chan(ch);
    close_chan(ch);
    close_chan(cb.ch);
}

/* In a cancelled coroutine: chmake and chmake_mem fail with ECANCELED;
   chmake_mem(NULL) reports EINVAL first. */
static struct {
    int sleep_rc, sleep_err;
    int chmake_rc, chmake_err;
    int mem_rc, mem_err;
    int memnull_rc, memnull_err;
} cc;

coroutine static void cancelled_chmake(void) {
    errno = 0;
    cc.sleep_rc = msleep(-1);
    cc.sleep_err = errno;
    int chv[2];
    struct chstorage st;
    errno = 0;
    cc.chmake_rc = chmake(chv);
    cc.chmake_err = errno;
    errno = 0;
    cc.mem_rc = chmake_mem(&st, chv);
    cc.mem_err = errno;
    errno = 0;
    cc.memnull_rc = chmake_mem(NULL, chv);
    cc.memnull_err = errno;
}

static void test_chmake_cancelled(void) {
    memset(&cc, 0, sizeof(cc));
    int cr = go(cancelled_chmake());
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(cc.sleep_rc == -1 && cc.sleep_err == ECANCELED);
    CHECK(cc.chmake_rc == -1 && cc.chmake_err == ECANCELED);
    CHECK(cc.mem_rc == -1 && cc.mem_err == ECANCELED);
    CHECK(cc.memnull_rc == -1 && cc.memnull_err == EINVAL);
}

/* ---- chsend / chrecv: rendezvous ---------------------------------------- */

/* Receiver first: chsend completes at once without a switch (the ready ticker
   has not run and the receiver is only queued), the receiver then gets the
   value. */
static void test_receiver_first(void) {
    int ch[2];
    make_chan(ch);
    struct op r;
    op_init(&r);
    nfinished = 0;
    int cr = go(do_recv(ch[0], sizeof(int), -1, &r));
    CHECK(cr >= 0);
    CHECK(!r.done);
    ticks = 0;
    int t = go(ticker());
    CHECK(t >= 0);
    CHECK(ticks == 0);
    int v = 1234;
    CHECK(chsend(ch[1], &v, sizeof(v), -1) == 0);
    CHECK(ticks == 0);
    CHECK(!r.done);
    CHECK(yield() == 0);
    CHECK(ticks == 1);
    CHECK(r.done && r.rc == 0 && r.val[0] == 1234 && r.val[1] == -7);
    /* The ticker was queued first, the woken receiver after it. */
    CHECK(nfinished == 1 && finished[0] == &r);
    CHECK(hclose(t) == 0);
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

/* Sender first: chrecv completes at once without a switch and gets the
   waiting sender's value. */
static void test_sender_first(void) {
    int ch[2];
    make_chan(ch);
    struct op s;
    op_init(&s);
    nfinished = 0;
    int cr = go(do_send(ch[0], 4321, sizeof(int), -1, &s));
    CHECK(cr >= 0);
    CHECK(!s.done);
    ticks = 0;
    int t = go(ticker());
    CHECK(t >= 0);
    int v = -1;
    CHECK(chrecv(ch[1], &v, sizeof(v), -1) == 0);
    CHECK(v == 4321);
    CHECK(ticks == 0);
    CHECK(!s.done);
    CHECK(yield() == 0);
    CHECK(ticks == 1);
    CHECK(s.done && s.rc == 0);
    CHECK(hclose(t) == 0);
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

/* Exactly len bytes are copied, in both orders: a 1000-byte message arrives
   intact and the receiver's bytes beyond len are untouched. */
static unsigned char big_out[1000];

coroutine static void send_big(int ch, struct op *op) {
    int rc = chsend(ch, big_out, sizeof(big_out), -1);
    finish(op, rc);
}

static unsigned char big_in[1100];

coroutine static void recv_big(int ch, struct op *op) {
    int rc = chrecv(ch, big_in, sizeof(big_out), -1);
    finish(op, rc);
}

static void check_big_in(void) {
    CHECK(memcmp(big_in, big_out, sizeof(big_out)) == 0);
    for(size_t i = sizeof(big_out); i != sizeof(big_in); ++i)
        CHECK(big_in[i] == 0xee);
}

static void test_message_bytes(void) {
    int ch[2];
    make_chan(ch);
    for(size_t i = 0; i != sizeof(big_out); ++i)
        big_out[i] = (unsigned char)(i * 7 + 3);
    /* The sender waits, the receiver copies. */
    memset(big_in, 0xee, sizeof(big_in));
    struct op s;
    op_init(&s);
    int cr = go(send_big(ch[0], &s));
    CHECK(cr >= 0);
    CHECK(chrecv(ch[1], big_in, sizeof(big_out), -1) == 0);
    check_big_in();
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(s.rc == 0);
    CHECK(hclose(cr) == 0);
    /* The receiver waits, the sender copies. */
    memset(big_in, 0xee, sizeof(big_in));
    struct op r;
    op_init(&r);
    cr = go(recv_big(ch[1], &r));
    CHECK(cr >= 0);
    CHECK(chsend(ch[0], big_out, sizeof(big_out), -1) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(r.rc == 0);
    check_big_in();
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

/* Several senders on one direction are served in arrival order. */
static void test_fifo_senders(void) {
    int ch[2];
    make_chan(ch);
    struct op s[3];
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i != 3; ++i) {
        op_init(&s[i]);
        CHECK(bundle_go(b, do_send(ch[0], 100 + i, sizeof(int), -1, &s[i]))
            == 0);
    }
    for(int i = 0; i != 3; ++i) {
        int v;
        CHECK(chrecv(ch[1], &v, sizeof(v), -1) == 0);
        CHECK(v == 100 + i);
    }
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(nfinished == 3);
    for(int i = 0; i != 3; ++i) {
        CHECK(s[i].done && s[i].rc == 0);
        CHECK(finished[i] == &s[i]);
    }
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* Several receivers on one direction are served in arrival order. */
static void test_fifo_receivers(void) {
    int ch[2];
    make_chan(ch);
    struct op r[3];
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i != 3; ++i) {
        op_init(&r[i]);
        CHECK(bundle_go(b, do_recv(ch[1], sizeof(int), -1, &r[i])) == 0);
    }
    for(int i = 0; i != 3; ++i) {
        int v = 200 + i;
        CHECK(chsend(ch[0], &v, sizeof(v), -1) == 0);
    }
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(nfinished == 3);
    for(int i = 0; i != 3; ++i) {
        CHECK(r[i].done && r[i].rc == 0 && r[i].val[0] == 200 + i);
        CHECK(finished[i] == &r[i]);
    }
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* A length mismatch fails with EMSGSIZE for the caller and for the first
   waiting peer only; nothing is copied; the next waiter is still there. */
static void test_emsgsize(void) {
    int ch[2];
    make_chan(ch);
    struct op r[2];
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i != 2; ++i) {
        op_init(&r[i]);
        CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &r[i])) == 0);
    }
    int big[2] = {1, 2};
    CHECK_ERR(chsend(ch[1], big, sizeof(big), -1), EMSGSIZE);
    CHECK(!r[0].done);
    CHECK(yield() == 0);
    CHECK(r[0].done && r[0].rc == -1 && r[0].err == EMSGSIZE);
    CHECK(r[0].val[0] == -7 && r[0].val[1] == -7);
    CHECK(!r[1].done);
    /* Also with deadline 0: the mismatch is found before the timeout. */
    CHECK_ERR(chsend(ch[1], big, sizeof(big), 0), EMSGSIZE);
    CHECK(yield() == 0);
    CHECK(r[1].done && r[1].rc == -1 && r[1].err == EMSGSIZE);
    CHECK(r[1].val[0] == -7);
    CHECK(bundle_wait(b, -1) == 0);

    /* The other way round: a sender waits with 8 bytes, chrecv asks for 4. */
    struct op s;
    op_init(&s);
    CHECK(bundle_go(b, do_send(ch[1], 55, 2 * sizeof(int), -1, &s)) == 0);
    int v = -3;
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), -1), EMSGSIZE);
    CHECK(v == -3);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(s.done && s.rc == -1 && s.err == EMSGSIZE);

    /* Zero length against four bytes is a mismatch too. */
    struct op z;
    op_init(&z);
    CHECK(bundle_go(b, do_recv_null(ch[1], &z)) == 0);
    v = 9;
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), -1), EMSGSIZE);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(z.done && z.rc == -1 && z.err == EMSGSIZE);

    /* The channel still works after the failures. */
    op_init(&r[0]);
    CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &r[0])) == 0);
    v = 77;
    CHECK(chsend(ch[1], &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(r[0].rc == 0 && r[0].val[0] == 77);
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* Zero-length messages with NULL buffers synchronise in both orders. */
static void test_zero_length(void) {
    int ch[2];
    make_chan(ch);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    int cr = go(do_recv_null(ch[0], &r));
    CHECK(cr >= 0);
    CHECK(!r.done);
    CHECK(chsend(ch[1], NULL, 0, -1) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(r.done && r.rc == 0);
    CHECK(hclose(cr) == 0);
    cr = go(do_send_null(ch[1], &s));
    CHECK(cr >= 0);
    CHECK(!s.done);
    CHECK(chrecv(ch[0], NULL, 0, 0) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(s.done && s.rc == 0);
    CHECK(hclose(cr) == 0);
    /* A non-NULL buffer with len 0 matches a NULL one; nothing is written. */
    cr = go(do_send_null(ch[1], &s));
    CHECK(cr >= 0);
    int v = 31;
    CHECK(chrecv(ch[0], &v, 0, -1) == 0);
    CHECK(v == 31);
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

/* NULL val with len > 0: EINVAL, checked after the handle lookup (EBADF,
   ENOTSUP) and the EPIPE check; a waiting peer is left alone. */
static void test_einval(void) {
    int ch[2];
    make_chan(ch);
    CHECK_ERR(chsend(ch[0], NULL, 4, now() + 1000), EINVAL);
    CHECK_ERR(chrecv(ch[0], NULL, 4, now() + 1000), EINVAL);
    CHECK_ERR(chsend(ch[0], NULL, 4, 0), EINVAL);
    CHECK_ERR(chrecv(ch[1], NULL, 4, 0), EINVAL);
    CHECK_ERR(chsend(-1, NULL, 4, -1), EBADF);
    CHECK_ERR(chrecv(-1, NULL, 4, -1), EBADF);
    int b = bundle();
    CHECK(b >= 0);
    CHECK_ERR(chsend(b, NULL, 4, -1), ENOTSUP);
    CHECK_ERR(chrecv(b, NULL, 4, -1), ENOTSUP);

    /* A waiting sender is not consumed by the failing receive. */
    struct op s;
    op_init(&s);
    CHECK(bundle_go(b, do_send(ch[1], 66, sizeof(int), -1, &s)) == 0);
    CHECK_ERR(chrecv(ch[0], NULL, sizeof(int), -1), EINVAL);
    CHECK(yield() == 0);
    CHECK(!s.done);
    int v = 0;
    CHECK(chrecv(ch[0], &v, sizeof(v), 0) == 0);
    CHECK(v == 66);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(s.rc == 0);

    /* A waiting receiver is not disturbed by the failing send. */
    struct op r;
    op_init(&r);
    CHECK(bundle_go(b, do_recv(ch[1], sizeof(int), -1, &r)) == 0);
    CHECK_ERR(chsend(ch[0], NULL, sizeof(int), 0), EINVAL);
    CHECK(yield() == 0);
    CHECK(!r.done);
    v = 67;
    CHECK(chsend(ch[0], &v, sizeof(v), 0) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 67);

    /* EPIPE comes before EINVAL. */
    CHECK(chdone(ch[0]) == 0);
    CHECK_ERR(chsend(ch[0], NULL, 4, -1), EPIPE);
    CHECK_ERR(chrecv(ch[1], NULL, 4, -1), EPIPE);
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* ---- Deadlines ---------------------------------------------------------- */

/* Deadline 0 and no partner: ETIMEDOUT at once, without a switch. */
static void test_deadline_zero_no_peer(void) {
    int ch[2];
    make_chan(ch);
    ticks = 0;
    int t = go(ticker());
    CHECK(t >= 0);
    int v = 1;
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK_ERR(chsend(ch[1], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK_ERR(chrecv(ch[1], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK_ERR(chsend(ch[0], NULL, 0, 0), ETIMEDOUT);
    CHECK(ticks == 0);
    CHECK(v == 1);
    CHECK(yield() == 0);
    CHECK(ticks == 1);
    CHECK(hclose(t) == 0);
    /* Nothing was left registered by the failed attempts. */
    struct op r;
    op_init(&r);
    int cr = go(do_recv(ch[1], sizeof(int), -1, &r));
    CHECK(cr >= 0);
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    v = 5;
    CHECK(chsend(ch[0], &v, sizeof(v), 0) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 5);
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

/* Deadline 0 with a waiting partner succeeds, in both directions. */
static void test_deadline_zero_with_peer(void) {
    int ch[2];
    make_chan(ch);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &r)) == 0);
    CHECK(bundle_go(b, do_send(ch[0], 8, sizeof(int), -1, &s)) == 0);
    int v = 9;
    CHECK(chsend(ch[1], &v, sizeof(v), 0) == 0);
    v = 0;
    CHECK(chrecv(ch[1], &v, sizeof(v), 0) == 0);
    CHECK(v == 8);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 9);
    CHECK(s.rc == 0);
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* A deadline already passed and a future one give ETIMEDOUT, the future one
   not before it is reached; the timed-out call leaves nothing registered. */
static void test_deadlines(void) {
    int ch[2];
    make_chan(ch);
    int v = 1;
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), 1), ETIMEDOUT);
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), 1), ETIMEDOUT);
    int64_t past = now() - 100;
    CHECK(past > 0);
    CHECK_ERR(chsend(ch[1], &v, sizeof(v), past), ETIMEDOUT);

    int64_t start = now();
    int64_t deadline = start + 30;
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), deadline), ETIMEDOUT);
    int64_t end = now();
    CHECK(end >= deadline);
    CHECK(end < deadline + 1000);

    deadline = now() + 30;
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), deadline), ETIMEDOUT);
    end = now();
    CHECK(end >= deadline);
    CHECK(end < deadline + 1000);
    CHECK(v == 1);

    /* The timed-out sender is gone from the queue. */
    CHECK_ERR(chrecv(ch[1], &v, sizeof(v), 0), ETIMEDOUT);

    /* A coroutine with a deadline times out while main waits for it. */
    struct op r;
    op_init(&r);
    deadline = now() + 20;
    int cr = go(do_recv(ch[1], sizeof(int), deadline, &r));
    CHECK(cr >= 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(now() >= deadline);
    CHECK(r.rc == -1 && r.err == ETIMEDOUT && r.val[0] == -7);
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

/* ---- Handle errors ------------------------------------------------------ */

/* EBADF for numbers that are not live handles, ENOTSUP for live handles that
   are not channel ends (a bundle, a custom hmake object). */
static void test_bad_handles(void) {
    int v = 0;
    CHECK_ERR(chsend(-1, &v, sizeof(v), -1), EBADF);
    CHECK_ERR(chrecv(-1, &v, sizeof(v), -1), EBADF);
    CHECK_ERR(chdone(-1), EBADF);
    CHECK_ERR(chsend(-1, &v, sizeof(v), 0), EBADF);
    CHECK_ERR(chsend(1 << 20, &v, sizeof(v), 0), EBADF);
    CHECK_ERR(chrecv(1 << 20, &v, sizeof(v), 0), EBADF);
    CHECK_ERR(chdone(1 << 20), EBADF);

    int ch[2];
    make_chan(ch);
    close_chan(ch);
    for(int i = 0; i != 2; ++i) {
        CHECK_ERR(chsend(ch[i], &v, sizeof(v), -1), EBADF);
        CHECK_ERR(chrecv(ch[i], &v, sizeof(v), -1), EBADF);
        CHECK_ERR(chdone(ch[i]), EBADF);
        CHECK_ERR(hclose(ch[i]), EBADF);
    }

    int b = bundle();
    CHECK(b >= 0);
    CHECK_ERR(chsend(b, &v, sizeof(v), -1), ENOTSUP);
    CHECK_ERR(chrecv(b, &v, sizeof(v), -1), ENOTSUP);
    CHECK_ERR(chsend(b, &v, sizeof(v), 0), ENOTSUP);
    CHECK_ERR(chdone(b), ENOTSUP);
    CHECK(hclose(b) == 0);

    int h = hmake(&dummy_vfs);
    CHECK(h >= 0);
    CHECK_ERR(chsend(h, &v, sizeof(v), -1), ENOTSUP);
    CHECK_ERR(chrecv(h, &v, sizeof(v), -1), ENOTSUP);
    CHECK_ERR(chdone(h), ENOTSUP);
    CHECK(hclose(h) == 0);
    CHECK(v == 0);
}

/* ---- chdone -------------------------------------------------------------- */

/* chdone(ch[0]) closes ch[0] -> ch[1] only: chsend(ch[0]) and chrecv(ch[1])
   fail with EPIPE at once (deadline 0 or not), the direction ch[1] -> ch[0]
   keeps working, a second chdone(ch[0]) fails with EPIPE. */
static void test_chdone_direction(int first, int second) {
    int ch[2];
    make_chan(ch);
    int from = ch[first], to = ch[second];
    CHECK(chdone(from) == 0);
    int v = 1;
    CHECK_ERR(chsend(from, &v, sizeof(v), 0), EPIPE);
    CHECK_ERR(chsend(from, &v, sizeof(v), -1), EPIPE);
    CHECK_ERR(chrecv(to, &v, sizeof(v), 0), EPIPE);
    CHECK_ERR(chrecv(to, &v, sizeof(v), -1), EPIPE);
    CHECK_ERR(chsend(from, NULL, 0, now() + 1000), EPIPE);
    CHECK_ERR(chrecv(to, NULL, 0, now() + 1000), EPIPE);
    CHECK(v == 1);
    /* The opposite direction: no partner yet, then both orders work. */
    CHECK_ERR(chsend(to, &v, sizeof(v), 0), ETIMEDOUT);
    CHECK_ERR(chrecv(from, &v, sizeof(v), 0), ETIMEDOUT);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    int cr = go(do_recv(from, sizeof(int), -1, &r));
    CHECK(cr >= 0);
    v = 11;
    CHECK(chsend(to, &v, sizeof(v), -1) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 11);
    CHECK(hclose(cr) == 0);
    cr = go(do_send(to, 12, sizeof(int), -1, &s));
    CHECK(cr >= 0);
    CHECK(chrecv(from, &v, sizeof(v), -1) == 0);
    CHECK(v == 12);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(s.rc == 0);
    CHECK(hclose(cr) == 0);
    /* Second chdone on the same end fails; the other end's is separate. */
    CHECK_ERR(chdone(from), EPIPE);
    CHECK(chdone(to) == 0);
    CHECK_ERR(chdone(to), EPIPE);
    CHECK_ERR(chsend(to, &v, sizeof(v), 0), EPIPE);
    CHECK_ERR(chrecv(from, &v, sizeof(v), 0), EPIPE);
    close_chan(ch);
}

/* chdone wakes every receiver waiting at the peer end with EPIPE, in FIFO
   order, without switching; receivers on the other direction stay. */
static void test_chdone_wakes_receivers(void) {
    int ch[2];
    make_chan(ch);
    struct op r[3], other;
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i != 3; ++i) {
        op_init(&r[i]);
        CHECK(bundle_go(b, do_recv(ch[1], sizeof(int), -1, &r[i])) == 0);
    }
    op_init(&other);
    CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &other)) == 0);
    CHECK(chdone(ch[0]) == 0);
    CHECK(nfinished == 0);
    CHECK(yield() == 0);
    CHECK(nfinished == 3);
    for(int i = 0; i != 3; ++i) {
        CHECK(r[i].done && r[i].rc == -1 && r[i].err == EPIPE);
        CHECK(r[i].val[0] == -7);
        CHECK(finished[i] == &r[i]);
    }
    CHECK(!other.done);
    int v = 21;
    CHECK(chsend(ch[1], &v, sizeof(v), 0) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(other.rc == 0 && other.val[0] == 21);
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* chdone wakes every sender waiting on the same end with EPIPE, in FIFO
   order; their messages are not delivered. */
static void test_chdone_wakes_senders(void) {
    int ch[2];
    make_chan(ch);
    struct op s[3];
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i != 3; ++i) {
        op_init(&s[i]);
        CHECK(bundle_go(b, do_send(ch[1], 30 + i, sizeof(int), -1, &s[i]))
            == 0);
    }
    CHECK(chdone(ch[1]) == 0);
    CHECK(nfinished == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(nfinished == 3);
    for(int i = 0; i != 3; ++i) {
        CHECK(s[i].done && s[i].rc == -1 && s[i].err == EPIPE);
        CHECK(finished[i] == &s[i]);
    }
    int v = -1;
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), 0), EPIPE);
    CHECK(v == -1);
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* chdone works in a cancelled coroutine (and returns EPIPE the second time
   there too). */
static struct {
    int sleep_rc, sleep_err;
    int done_rc, done2_rc, done2_err;
} cd;

coroutine static void cancelled_chdone(int ch) {
    errno = 0;
    cd.sleep_rc = msleep(-1);
    cd.sleep_err = errno;
    cd.done_rc = chdone(ch);
    errno = 0;
    cd.done2_rc = chdone(ch);
    cd.done2_err = errno;
}

static void test_chdone_cancelled(void) {
    int ch[2];
    make_chan(ch);
    memset(&cd, 0, sizeof(cd));
    int cr = go(cancelled_chdone(ch[0]));
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(cd.sleep_rc == -1 && cd.sleep_err == ECANCELED);
    CHECK(cd.done_rc == 0);
    CHECK(cd.done2_rc == -1 && cd.done2_err == EPIPE);
    int v;
    CHECK_ERR(chrecv(ch[1], &v, sizeof(v), 0), EPIPE);
    close_chan(ch);
}

/* ---- Closing ends ------------------------------------------------------- */

/* Closing one end wakes nobody and the remaining end still works (it just
   finds no partner); closing the second end wakes every waiter with EPIPE.
   Every kind of waiter is tried: receivers and senders at either end (each
   direction holds either receivers or senders), with either end closed
   first. */
static void close_ends_round(int recv_at0, int recv_at1, int send_on0,
      int send_on1, int first) {
    int ch[2];
    make_chan(ch);
    struct op ops[8];
    int n = 0;
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    for(int i = 0; i != 2; ++i) {
        if(recv_at0) {
            op_init(&ops[n]);
            CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &ops[n]))
                == 0);
            n++;
        }
        if(recv_at1) {
            op_init(&ops[n]);
            CHECK(bundle_go(b, do_recv(ch[1], sizeof(int), -1, &ops[n]))
                == 0);
            n++;
        }
        if(send_on0) {
            op_init(&ops[n]);
            CHECK(bundle_go(b, do_send(ch[0], 40, sizeof(int), -1, &ops[n]))
                == 0);
            n++;
        }
        if(send_on1) {
            op_init(&ops[n]);
            CHECK(bundle_go(b, do_send(ch[1], 41, sizeof(int), -1, &ops[n]))
                == 0);
            n++;
        }
    }
    CHECK(n == 4 && nfinished == 0);
    int rest = ch[1 - first];
    CHECK(hclose(ch[first]) == 0);
    CHECK(yield() == 0);
    CHECK(nfinished == 0);
    CHECK_ERR(hclose(ch[first]), EBADF);
    /* The remaining end: only directions with no waiter of the matching
       kind can be tried without disturbing anybody. */
    int v = 5;
    int rest_sends_to_receivers = first == 0 ? recv_at0 : recv_at1;
    int rest_recvs_from_senders = first == 0 ? send_on0 : send_on1;
    if(!rest_sends_to_receivers) {
        CHECK_ERR(chsend(rest, &v, sizeof(v), 0), ETIMEDOUT);
        CHECK_ERR(chsend(rest, &v, sizeof(v), now() + 10), ETIMEDOUT);
    }
    if(!rest_recvs_from_senders)
        CHECK_ERR(chrecv(rest, &v, sizeof(v), 0), ETIMEDOUT);
    CHECK(nfinished == 0);
    CHECK(hclose(rest) == 0);
    CHECK(nfinished == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(nfinished == 4);
    for(int i = 0; i != 4; ++i)
        CHECK(ops[i].done && ops[i].rc == -1 && ops[i].err == EPIPE);
    CHECK_ERR(hclose(rest), EBADF);
    CHECK(hclose(b) == 0);
}

static void test_close_ends(void) {
    for(int first = 0; first != 2; ++first) {
        close_ends_round(1, 1, 0, 0, first); /* receivers at both ends */
        close_ends_round(0, 0, 1, 1, first); /* senders on both ends */
        close_ends_round(1, 0, 1, 0, first); /* both kinds at ch[0] */
        close_ends_round(0, 1, 0, 1, first); /* both kinds at ch[1] */
    }
}

/* Closing the end the waiters use wakes nobody either; closing the other
   end then wakes them with EPIPE. Works the same with chmake_mem. */
static void test_close_own_end_first(void) {
    struct chstorage st;
    int ch[2];
    CHECK(chmake_mem(&st, ch) == 0);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &r)) == 0);
    CHECK(bundle_go(b, do_send(ch[0], 2, sizeof(int), -1, &s)) == 0);
    CHECK(hclose(ch[0]) == 0);
    CHECK(yield() == 0);
    CHECK(nfinished == 0);
    CHECK(hclose(ch[1]) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(nfinished == 2);
    CHECK(r.rc == -1 && r.err == EPIPE);
    CHECK(s.rc == -1 && s.err == EPIPE);
    CHECK(hclose(b) == 0);
    /* The storage is free again. */
    CHECK(chmake_mem(&st, ch) == 0);
    close_chan(ch);
}

/* ---- Cancellation ------------------------------------------------------- */

/* A coroutine blocked in chrecv or chsend whose bundle is closed gets
   ECANCELED, and its registration is withdrawn. */
static void test_cancel_blocked(void) {
    int ch[2];
    make_chan(ch);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    int cr = go(do_recv(ch[0], sizeof(int), -1, &r));
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED && r.val[0] == -7);
    int v = 3;
    CHECK_ERR(chsend(ch[1], &v, sizeof(v), 0), ETIMEDOUT);
    cr = go(do_send(ch[0], 4, sizeof(int), -1, &s));
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(s.done && s.rc == -1 && s.err == ECANCELED);
    CHECK_ERR(chrecv(ch[1], &v, sizeof(v), 0), ETIMEDOUT);
    /* Also with a finite deadline. */
    op_init(&r);
    cr = go(do_recv(ch[1], sizeof(int), now() + 60000, &r));
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.rc == -1 && r.err == ECANCELED);
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    close_chan(ch);
}

/* A cancelled coroutine's chsend and chrecv fail with ECANCELED at entry,
   before any argument check, even when a partner is waiting; the partner
   is untouched. */
static struct {
    int ch;
    int sleep_rc, sleep_err;
    int rc[6], err[6];
} ce;

coroutine static void cancelled_chops(void) {
    errno = 0;
    ce.sleep_rc = msleep(-1);
    ce.sleep_err = errno;
    int v = 99;
    int i = 0;
    errno = 0; ce.rc[i] = chsend(ce.ch, &v, sizeof(v), -1); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = chsend(ce.ch, &v, sizeof(v), 0); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = chrecv(ce.ch, &v, sizeof(v), -1); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = chrecv(ce.ch, &v, sizeof(v), 0); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = chsend(-1, NULL, 4, -1); ce.err[i++] = errno;
    errno = 0; ce.rc[i] = chrecv(-1, NULL, 4, -1); ce.err[i++] = errno;
}

static void test_cancelled_entry(void) {
    int ch[2], dh[2];
    make_chan(ch);
    make_chan(dh);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    /* r waits for a message from ch[0]; s waits to send from dh[1]. */
    CHECK(bundle_go(b, do_recv(ch[1], sizeof(int), -1, &r)) == 0);
    CHECK(bundle_go(b, do_send(dh[1], 88, sizeof(int), -1, &s)) == 0);
    memset(&ce, 0, sizeof(ce));
    ce.ch = ch[0];
    int cr = go(cancelled_chops());
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(ce.sleep_rc == -1 && ce.sleep_err == ECANCELED);
    for(int i = 0; i != 6; ++i)
        CHECK(ce.rc[i] == -1 && ce.err[i] == ECANCELED);
    /* And the receive side with a waiting sender. */
    memset(&ce, 0, sizeof(ce));
    ce.ch = dh[0];
    cr = go(cancelled_chops());
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    for(int i = 0; i != 6; ++i)
        CHECK(ce.rc[i] == -1 && ce.err[i] == ECANCELED);
    CHECK(nfinished == 0);
    CHECK(!r.done && !s.done);
    int v = 5;
    CHECK(chsend(ch[0], &v, sizeof(v), 0) == 0);
    CHECK(chrecv(dh[0], &v, sizeof(v), 0) == 0);
    CHECK(v == 88);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 5);
    CHECK(s.rc == 0);
    CHECK(hclose(b) == 0);
    close_chan(ch);
    close_chan(dh);
}

/* ---- Same end ----------------------------------------------------------- */

/* A message sent on an end is never received on that same end: a receiver
   and a sender waiting on the same end do not meet, and each is served from
   the other end. */
static void test_same_end(void) {
    int ch[2];
    make_chan(ch);
    struct op r, s;
    op_init(&r);
    op_init(&s);
    nfinished = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, do_recv(ch[0], sizeof(int), -1, &r)) == 0);
    int v = 1;
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK(bundle_go(b, do_send(ch[0], 50, sizeof(int), -1, &s)) == 0);
    CHECK(yield() == 0);
    CHECK(nfinished == 0);
    CHECK_ERR(chrecv(ch[0], &v, sizeof(v), 0), ETIMEDOUT);
    CHECK(chrecv(ch[1], &v, sizeof(v), 0) == 0);
    CHECK(v == 50);
    v = 51;
    CHECK(chsend(ch[1], &v, sizeof(v), 0) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(r.rc == 0 && r.val[0] == 51);
    CHECK(s.rc == 0);
    CHECK(hclose(b) == 0);
    close_chan(ch);
}

/* ---- Volume ------------------------------------------------------------- */

/* 100,000 messages ping-ponged between the main coroutine and a coroutine. */
coroutine static void ponger(int ch, int n) {
    for(int i = 0; i != n; ++i) {
        int v;
        CHECK(chrecv(ch, &v, sizeof(v), -1) == 0);
        CHECK(v == i);
        v = i + 1;
        CHECK(chsend(ch, &v, sizeof(v), -1) == 0);
    }
}

static void test_ping_pong(void) {
    enum { N = 100000 };
    int ch[2];
    make_chan(ch);
    int cr = go(ponger(ch[0], N));
    CHECK(cr >= 0);
    for(int i = 0; i != N; ++i) {
        int v = i;
        CHECK(chsend(ch[1], &v, sizeof(v), -1) == 0);
        CHECK(chrecv(ch[1], &v, sizeof(v), -1) == 0);
        CHECK(v == i + 1);
    }
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(hclose(cr) == 0);
    close_chan(ch);
}

int main(void) {
    /* A watchdog: a test that would block forever fails instead. */
    alarm(60);
    test_chmake();
    test_chmake_mem_null();
    test_chmake_mem_unaligned();
    test_close_callback();
    test_chmake_cancelled();
    test_receiver_first();
    test_sender_first();
    test_message_bytes();
    test_fifo_senders();
    test_fifo_receivers();
    test_emsgsize();
    test_zero_length();
    test_einval();
    test_deadline_zero_no_peer();
    test_deadline_zero_with_peer();
    test_deadlines();
    test_bad_handles();
    test_chdone_direction(0, 1);
    test_chdone_direction(1, 0);
    test_chdone_wakes_receivers();
    test_chdone_wakes_senders();
    test_chdone_cancelled();
    test_close_ends();
    test_close_own_end_first();
    test_cancel_blocked();
    test_cancelled_entry();
    test_same_end();
    test_ping_pong();
    return 0;
}
