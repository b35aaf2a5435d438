/*
 * tests/handle.c: the handle system (spec §9, §10, §13 items 18-20, 22).
 * Covers hmake (EINVAL, ECANCELED in a close callback and in a cancelled
 * coroutine), handle numbers (0, 1, 2, ... in a fresh thread, released
 * numbers not reused at once), hquery (the one-entry cache, failures not
 * cached, the callback's errno passed through, EBADF), hclose (EBADF, close
 * called exactly once with the vfs pointer, no blocking inside close, nested
 * hclose), hown (new number, old one dead, no callbacks, empty cache,
 * closing the object on ECANCELED, EBADF) and handles being private to
 * their thread.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- A custom object ---------------------------------------------------- */

/* Type IDs: addresses of private variables. */
static char type_a, type_b, type_fail, type_eproto;

struct obj {
    struct hvfs vfs;
    int queries;             /* calls of query */
    const void *last_type;   /* type of the last query call */
    int closes;              /* calls of close */
    struct hvfs *closed_with;
    int a, b;                /* the "interfaces" query hands out */
    void (*on_close)(struct obj *o); /* extra work done in close */
    int self;                /* the object's handle, for on_close */
};

static void *obj_query(struct hvfs *vfs, const void *type) {
    struct obj *o = (struct obj *)vfs;
    o->queries++;
    o->last_type = type;
    if(type == &type_a) return &o->a;
    if(type == &type_b) return &o->b;
    if(type == NULL) return o;
    if(type == &type_eproto) {
        errno = EPROTO;
        return NULL;
    }
    errno = ENOTSUP;
    return NULL;
}

static void obj_close(struct hvfs *vfs) {
    struct obj *o = (struct obj *)vfs;
    o->closes++;
    o->closed_with = vfs;
    if(o->on_close)
        o->on_close(o);
}

static void obj_init(struct obj *o) {
    memset(o, 0, sizeof(*o));
    o->vfs.query = obj_query;
    o->vfs.close = obj_close;
    o->self = -1;
}

/* ---- hmake ------------------------------------------------------------- */

/* hmake fails with EINVAL for a NULL vfs, a NULL query and a NULL close. */
static void test_hmake_einval(void) {
    CHECK_ERR(hmake(NULL), EINVAL);
    struct hvfs v1 = {NULL, obj_close};
    CHECK_ERR(hmake(&v1), EINVAL);
    struct hvfs v2 = {obj_query, NULL};
    CHECK_ERR(hmake(&v2), EINVAL);
    struct hvfs v3 = {NULL, NULL};
    CHECK_ERR(hmake(&v3), EINVAL);
}

/* Inside a close callback hmake fails with ECANCELED, after its EINVAL
   check; blocking calls fail with ECANCELED; after hclose returns the
   caller can block and create handles again. */
static struct {
    int make_rc, make_err;
    int null_rc, null_err;
    int yield_rc, yield_err;
    int sleep_rc, sleep_err;
    int wait_rc, wait_err;
    struct obj inner;
} cbr;

static void make_in_close(struct obj *o) {
    (void)o;
    obj_init(&cbr.inner);
    errno = 0;
    cbr.make_rc = hmake(&cbr.inner.vfs);
    cbr.make_err = errno;
    errno = 0;
    cbr.null_rc = hmake(NULL);
    cbr.null_err = errno;
    errno = 0;
    cbr.yield_rc = yield();
    cbr.yield_err = errno;
    errno = 0;
    cbr.sleep_rc = msleep(now() + 1000);
    cbr.sleep_err = errno;
    errno = 0;
    cbr.wait_rc = bundle_wait(-1, -1);
    cbr.wait_err = errno;
}

static void test_hmake_in_close(void) {
    memset(&cbr, 0, sizeof(cbr));
    struct obj o;
    obj_init(&o);
    o.on_close = make_in_close;
    int h = hmake(&o.vfs);
    CHECK(h >= 0);
    int64_t start = now();
    CHECK(hclose(h) == 0);
    CHECK(now() - start < 500);
    CHECK(o.closes == 1);
    CHECK(cbr.make_rc == -1 && cbr.make_err == ECANCELED);
    CHECK(cbr.null_rc == -1 && cbr.null_err == EINVAL);
    CHECK(cbr.yield_rc == -1 && cbr.yield_err == ECANCELED);
    CHECK(cbr.sleep_rc == -1 && cbr.sleep_err == ECANCELED);
    CHECK(cbr.wait_rc == -1 && cbr.wait_err == ECANCELED);
    CHECK(cbr.inner.queries == 0 && cbr.inner.closes == 0);
    /* The mode is restored. */
    CHECK(yield() == 0);
    struct obj p;
    obj_init(&p);
    h = hmake(&p.vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(p.closes == 1);
}

/* In a cancelled coroutine hmake fails with ECANCELED (EINVAL still
   first). */
static struct {
    int sleep_rc, sleep_err;
    int make_rc, make_err;
    int null_rc, null_err;
    struct obj o;
} cnc;

coroutine static void cancelled_hmake(void) {
    errno = 0;
    cnc.sleep_rc = msleep(-1);
    cnc.sleep_err = errno;
    obj_init(&cnc.o);
    errno = 0;
    cnc.make_rc = hmake(&cnc.o.vfs);
    cnc.make_err = errno;
    errno = 0;
    cnc.null_rc = hmake(NULL);
    cnc.null_err = errno;
}

static void test_hmake_cancelled(void) {
    memset(&cnc, 0, sizeof(cnc));
    int cr = go(cancelled_hmake());
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(cnc.sleep_rc == -1 && cnc.sleep_err == ECANCELED);
    CHECK(cnc.make_rc == -1 && cnc.make_err == ECANCELED);
    CHECK(cnc.null_rc == -1 && cnc.null_err == EINVAL);
    CHECK(cnc.o.closes == 0 && cnc.o.queries == 0);
}

/* ---- Numbers ----------------------------------------------------------- */

/* In a fresh thread the first handles are 0, 1, 2, ...; a released number is
   not handed out again at once. Runs in its own thread so that the handles
   of the main thread do not interfere. */
static int numbers_ok;

static void *numbers_thread(void *arg) {
    (void)arg;
    enum { N = 8 };
    static struct obj o[N + 8];
    int h[N + 8];
    for(int i = 0; i != N; ++i) {
        obj_init(&o[i]);
        h[i] = hmake(&o[i].vfs);
        CHECK(h[i] == i);
    }
    /* Release 3, then create more: none of them is 3. */
    CHECK(hclose(h[3]) == 0);
    CHECK(o[3].closes == 1);
    for(int i = N; i != N + 8; ++i) {
        obj_init(&o[i]);
        h[i] = hmake(&o[i].vfs);
        CHECK(h[i] >= 0);
        CHECK(h[i] != 3);
        for(int j = 0; j != i; ++j)
            if(j != 3)
                CHECK(h[i] != h[j]);
    }
    /* The first new number after the release is the next fresh one. */
    CHECK(h[N] == N);
    for(int i = 0; i != N + 8; ++i)
        if(i != 3)
            CHECK(hclose(h[i]) == 0);
    for(int i = 0; i != N + 8; ++i)
        CHECK(o[i].closes == 1);
    numbers_ok = 1;
    return NULL;
}

static void test_numbers(void) {
    numbers_ok = 0;
#if !defined HAVE_CONFIG_H || defined DILL_THREADS
    pthread_t t;
    CHECK(pthread_create(&t, NULL, numbers_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
#else
    /* One process-wide context: this is the program's first libdill call. */
    numbers_thread(NULL);
#endif
    CHECK(numbers_ok);
}

/* A released number is not reused by the next creation in this thread
   either, whatever was allocated before. */
static void test_no_immediate_reuse(void) {
    struct obj o[3];
    for(int i = 0; i != 3; ++i)
        obj_init(&o[i]);
    int h0 = hmake(&o[0].vfs);
    CHECK(h0 >= 0);
    CHECK(hclose(h0) == 0);
    int h1 = hmake(&o[1].vfs);
    CHECK(h1 >= 0 && h1 != h0);
    CHECK(hclose(h1) == 0);
    int h2 = hmake(&o[2].vfs);
    CHECK(h2 >= 0 && h2 != h0 && h2 != h1);
    CHECK(hclose(h2) == 0);
}

/* ---- hquery ------------------------------------------------------------ */

/* hquery calls query only on a cache miss: one (type, pointer) entry per
   handle, replaced by each successful query; failures are not cached (and
   leave the cached entry alone); the callback's errno passes through;
   NULL is a type like any other. */
static void test_hquery_cache(void) {
    struct obj o;
    obj_init(&o);
    int h = hmake(&o.vfs);
    CHECK(h >= 0);
    CHECK(o.queries == 0);
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(o.queries == 1 && o.last_type == &type_a);
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(o.queries == 1);
    CHECK(hquery(h, &type_b) == &o.b);
    CHECK(o.queries == 2 && o.last_type == &type_b);
    CHECK(hquery(h, &type_b) == &o.b);
    CHECK(o.queries == 2);
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(o.queries == 3);

    /* Failures call query every time; errno is the callback's. */
    errno = 0;
    CHECK(hquery(h, &type_fail) == NULL);
    CHECK(errno == ENOTSUP);
    CHECK(o.queries == 4);
    errno = 0;
    CHECK(hquery(h, &type_fail) == NULL);
    CHECK(errno == ENOTSUP);
    CHECK(o.queries == 5);
    errno = 0;
    CHECK(hquery(h, &type_eproto) == NULL);
    CHECK(errno == EPROTO);
    CHECK(o.queries == 6);
    errno = 0;
    CHECK(hquery(h, &type_eproto) == NULL);
    CHECK(errno == EPROTO);
    CHECK(o.queries == 7);
    /* The entry cached before the failures is still there. */
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(o.queries == 7);

    /* NULL is just another type value. */
    CHECK(hquery(h, NULL) == &o);
    CHECK(o.queries == 8 && o.last_type == NULL);
    CHECK(hquery(h, NULL) == &o);
    CHECK(o.queries == 8);

    CHECK(o.closes == 0);
    CHECK(hclose(h) == 0);
    CHECK(o.closes == 1);
    CHECK(o.queries == 8);
}

/* Every handle has its own cache, and a new number starts with an empty
   one even if its object was queried under another number. */
static void test_hquery_per_handle(void) {
    struct obj o, p;
    obj_init(&o);
    obj_init(&p);
    int h1 = hmake(&o.vfs);
    int h2 = hmake(&p.vfs);
    CHECK(h1 >= 0 && h2 >= 0 && h1 != h2);
    CHECK(hquery(h1, &type_a) == &o.a);
    CHECK(hquery(h2, &type_a) == &p.a);
    CHECK(hquery(h1, &type_a) == &o.a);
    CHECK(hquery(h2, &type_a) == &p.a);
    CHECK(o.queries == 1 && p.queries == 1);
    CHECK(hclose(h1) == 0);
    CHECK(hclose(h2) == 0);
    /* The same object registered again: the new number queries afresh. */
    struct obj q;
    obj_init(&q);
    int h3 = hmake(&q.vfs);
    CHECK(h3 >= 0);
    CHECK(hquery(h3, &type_a) == &q.a);
    CHECK(q.queries == 1);
    CHECK(hclose(h3) == 0);
    int h4 = hmake(&q.vfs);
    CHECK(h4 >= 0);
    CHECK(hquery(h4, &type_a) == &q.a);
    CHECK(q.queries == 2);
    CHECK(hclose(h4) == 0);
    CHECK(q.closes == 2);
}

/* hquery fails with EBADF for numbers that are not live. */
static void test_hquery_ebadf(void) {
    errno = 0;
    CHECK(hquery(-1, &type_a) == NULL && errno == EBADF);
    errno = 0;
    CHECK(hquery(-1, NULL) == NULL && errno == EBADF);
    errno = 0;
    CHECK(hquery(1 << 20, &type_a) == NULL && errno == EBADF);
    struct obj o;
    obj_init(&o);
    int h = hmake(&o.vfs);
    CHECK(h >= 0);
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(hclose(h) == 0);
    errno = 0;
    CHECK(hquery(h, &type_a) == NULL && errno == EBADF);
    CHECK(o.queries == 1);
}

/* ---- hclose ------------------------------------------------------------ */

/* hclose returns 0 and calls close exactly once with the pointer given to
   hmake (a vfs that is not the first member of its object); dead and
   negative numbers give EBADF without calling anything. */
struct wrapped {
    int pad[3];
    struct obj o;
};

static void test_hclose(void) {
    CHECK_ERR(hclose(-1), EBADF);
    CHECK_ERR(hclose(-100), EBADF);
    CHECK_ERR(hclose(1 << 20), EBADF);
    struct wrapped w;
    obj_init(&w.o);
    int h = hmake(&w.o.vfs);
    CHECK(h >= 0);
    CHECK(w.o.closes == 0);
    CHECK(hclose(h) == 0);
    CHECK(w.o.closes == 1);
    CHECK(w.o.closed_with == &w.o.vfs);
    CHECK(w.o.queries == 0);
    CHECK_ERR(hclose(h), EBADF);
    CHECK(w.o.closes == 1);
}

/* While close runs the number is still live (hquery on it works); hclose of
   other handles from inside close works, nested two levels deep; the
   numbers are all released afterwards. */
static struct obj outer, middle, inner;
static int self_query_ok, nested_rc;

static void close_middle(struct obj *o) {
    (void)o;
    self_query_ok = hquery(outer.self, &type_b) == &outer.b;
    nested_rc = hclose(middle.self);
}

static int after_nested_rc, after_nested_err;

static void close_inner(struct obj *o) {
    (void)o;
    CHECK(hclose(inner.self) == 0);
    CHECK(inner.closes == 1);
    /* The nested hclose restored no-blocking mode, not blocking mode. */
    errno = 0;
    after_nested_rc = yield();
    after_nested_err = errno;
}

static void test_nested_hclose(void) {
    obj_init(&outer);
    obj_init(&middle);
    obj_init(&inner);
    outer.on_close = close_middle;
    middle.on_close = close_inner;
    outer.self = hmake(&outer.vfs);
    middle.self = hmake(&middle.vfs);
    inner.self = hmake(&inner.vfs);
    CHECK(outer.self >= 0 && middle.self >= 0 && inner.self >= 0);
    self_query_ok = 0;
    nested_rc = -5;
    after_nested_rc = 5;
    CHECK(hclose(outer.self) == 0);
    CHECK(after_nested_rc == -1 && after_nested_err == ECANCELED);
    CHECK(yield() == 0);
    CHECK(self_query_ok);
    CHECK(nested_rc == 0);
    CHECK(outer.closes == 1 && middle.closes == 1 && inner.closes == 1);
    CHECK(outer.queries == 1);
    CHECK_ERR(hclose(outer.self), EBADF);
    CHECK_ERR(hclose(middle.self), EBADF);
    CHECK_ERR(hclose(inner.self), EBADF);
}

/* hclose restores the caller's own mode: a launched coroutine can block
   again after closing a handle, a cancelled one stays cancelled. */
static struct {
    int h;
    int sleep_rc, sleep_err;
    int close_rc;
    int yield_rc, yield_err;
} hm;

coroutine static void close_then_yield(void) {
    hm.close_rc = hclose(hm.h);
    errno = 0;
    hm.yield_rc = yield();
    hm.yield_err = errno;
}

coroutine static void cancelled_close_then_yield(void) {
    errno = 0;
    hm.sleep_rc = msleep(-1);
    hm.sleep_err = errno;
    close_then_yield();
}

static void test_hclose_restores_mode(void) {
    struct obj o;
    obj_init(&o);
    memset(&hm, 0, sizeof(hm));
    hm.h = hmake(&o.vfs);
    CHECK(hm.h >= 0);
    int cr = go(close_then_yield());
    CHECK(cr >= 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(hm.close_rc == 0 && o.closes == 1);
    CHECK(hm.yield_rc == 0);
    CHECK(hclose(cr) == 0);

    obj_init(&o);
    memset(&hm, 0, sizeof(hm));
    hm.h = hmake(&o.vfs);
    CHECK(hm.h >= 0);
    cr = go(cancelled_close_then_yield());
    CHECK(cr >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(hm.sleep_rc == -1 && hm.sleep_err == ECANCELED);
    CHECK(hm.close_rc == 0 && o.closes == 1);
    CHECK(hm.yield_rc == -1 && hm.yield_err == ECANCELED);
}

/* ---- hown -------------------------------------------------------------- */

/* hown returns a new number; the old one is dead (EBADF for hquery, hclose
   and hown); neither callback runs; the new number's cache is empty, so
   query is called again; the object closes once through the new number. */
static void test_hown(void) {
    struct obj o;
    obj_init(&o);
    int h = hmake(&o.vfs);
    CHECK(h >= 0);
    CHECK(hquery(h, &type_a) == &o.a);
    CHECK(o.queries == 1);
    int h2 = hown(h);
    CHECK(h2 >= 0 && h2 != h);
    CHECK(o.queries == 1 && o.closes == 0);
    errno = 0;
    CHECK(hquery(h, &type_a) == NULL && errno == EBADF);
    CHECK_ERR(hclose(h), EBADF);
    CHECK_ERR(hown(h), EBADF);
    CHECK(o.queries == 1 && o.closes == 0);
    CHECK(hquery(h2, &type_a) == &o.a);
    CHECK(o.queries == 2);
    CHECK(hquery(h2, &type_a) == &o.a);
    CHECK(o.queries == 2);
    /* Owning twice in a row works as well. */
    int h3 = hown(h2);
    CHECK(h3 >= 0 && h3 != h2 && h3 != h);
    CHECK(o.closes == 0);
    CHECK(hclose(h3) == 0);
    CHECK(o.closes == 1 && o.closed_with == &o.vfs);
    CHECK_ERR(hclose(h2), EBADF);
    CHECK(o.closes == 1);
}

/* hown of a channel end keeps the channel working under the new number. */
coroutine static void recv_one(int ch, int *out) {
    CHECK(chrecv(ch, out, sizeof(*out), -1) == 0);
}

static void test_hown_channel(void) {
    int ch[2];
    CHECK(chmake(ch) == 0);
    int c0 = hown(ch[0]);
    CHECK(c0 >= 0 && c0 != ch[0] && c0 != ch[1]);
    int v = 1;
    CHECK_ERR(chsend(ch[0], &v, sizeof(v), 0), EBADF);
    int got = 0;
    int cr = go(recv_one(ch[1], &got));
    CHECK(cr >= 0);
    v = 42;
    CHECK(chsend(c0, &v, sizeof(v), 0) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(got == 42);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(c0) == 0);
    CHECK(hclose(ch[1]) == 0);
}

/* hown(-1) and hown of unknown numbers fail with EBADF. */
static void test_hown_ebadf(void) {
    CHECK_ERR(hown(-1), EBADF);
    CHECK_ERR(hown(-7), EBADF);
    CHECK_ERR(hown(1 << 20), EBADF);
}

/* hown in a cancelled coroutine closes the object and fails with
   ECANCELED; the old number is dead. */
static struct {
    int h;
    int sleep_rc, sleep_err;
    int own_rc, own_err;
} hc;

coroutine static void cancelled_hown(void) {
    errno = 0;
    hc.sleep_rc = msleep(-1);
    hc.sleep_err = errno;
    errno = 0;
    hc.own_rc = hown(hc.h);
    hc.own_err = errno;
}

static void test_hown_cancelled(void) {
    struct obj o;
    obj_init(&o);
    memset(&hc, 0, sizeof(hc));
    hc.h = hmake(&o.vfs);
    CHECK(hc.h >= 0);
    int cr = go(cancelled_hown());
    CHECK(cr >= 0);
    CHECK(o.closes == 0);
    CHECK(hclose(cr) == 0);
    CHECK(hc.sleep_rc == -1 && hc.sleep_err == ECANCELED);
    CHECK(hc.own_rc == -1 && hc.own_err == ECANCELED);
    CHECK(o.closes == 1 && o.closed_with == &o.vfs);
    CHECK_ERR(hclose(hc.h), EBADF);
    CHECK(o.closes == 1);
}

/* hown inside a close callback fails the same way: ECANCELED, and the
   owned object is closed. */
static struct obj victim;
static int victim_h, own_in_close_rc, own_in_close_err;

static void own_in_close(struct obj *o) {
    (void)o;
    errno = 0;
    own_in_close_rc = hown(victim_h);
    own_in_close_err = errno;
}

static void test_hown_in_close(void) {
    struct obj o;
    obj_init(&o);
    obj_init(&victim);
    o.on_close = own_in_close;
    victim_h = hmake(&victim.vfs);
    CHECK(victim_h >= 0);
    int h = hmake(&o.vfs);
    CHECK(h >= 0);
    CHECK(hclose(h) == 0);
    CHECK(own_in_close_rc == -1 && own_in_close_err == ECANCELED);
    CHECK(victim.closes == 1);
    CHECK_ERR(hclose(victim_h), EBADF);
}

/* ---- Threads ----------------------------------------------------------- */

/* Handles belong to the thread that made them: a channel made here is
   unknown (EBADF) in a fresh thread, which may even get the same numbers
   for its own objects; the channel still works here afterwards. */
#if !defined HAVE_CONFIG_H || defined DILL_THREADS
static int other_ch[2];
static int other_ok;

static void *other_thread(void *arg) {
    (void)arg;
    int v = 1;
    for(int i = 0; i != 2; ++i) {
        CHECK_ERR(chsend(other_ch[i], &v, sizeof(v), 0), EBADF);
        CHECK_ERR(chrecv(other_ch[i], &v, sizeof(v), 0), EBADF);
        CHECK_ERR(chdone(other_ch[i]), EBADF);
        errno = 0;
        CHECK(hquery(other_ch[i], NULL) == NULL && errno == EBADF);
        CHECK_ERR(hown(other_ch[i]), EBADF);
        CHECK_ERR(hclose(other_ch[i]), EBADF);
    }
    /* This thread's own channel: numbers from 0, independent of the main
       thread's. */
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK(ch[0] == 0 && ch[1] == 1);
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);
    other_ok = 1;
    return NULL;
}

static void test_threads(void) {
    CHECK(chmake(other_ch) == 0);
    other_ok = 0;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(other_ok);
    /* Untouched here: both ends work and close normally. */
    int got = 0;
    int cr = go(recv_one(other_ch[0], &got));
    CHECK(cr >= 0);
    int v = 9;
    CHECK(chsend(other_ch[1], &v, sizeof(v), 0) == 0);
    CHECK(bundle_wait(cr, -1) == 0);
    CHECK(got == 9);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(other_ch[0]) == 0);
    CHECK(hclose(other_ch[1]) == 0);
}
#else
static void test_threads(void) {
}
#endif

int main(void) {
    /* A watchdog: a test that would block forever fails instead. */
    alarm(60);
    test_numbers();
    test_hmake_einval();
    test_hmake_in_close();
    test_hmake_cancelled();
    test_no_immediate_reuse();
    test_hquery_cache();
    test_hquery_per_handle();
    test_hquery_ebadf();
    test_hclose();
    test_nested_hclose();
    test_hclose_restores_mode();
    test_hown();
    test_hown_channel();
    test_hown_ebadf();
    test_hown_cancelled();
    test_hown_in_close();
    test_threads();
    return 0;
}
