/*
 * tests/msock.c: the message front end (sockets.md §4, §5): msend, mrecv,
 * msendl and mrecvl over handles made here with hmake, whose
 * dill_msock_vfs callbacks record what they receive. Covers EBADF (never a
 * handle, a closed one, the old number after hown), ENOTSUP (channel ends,
 * a bundle, a coroutine handle, an object that is only a bytestream or
 * nothing at all), every front-end EINVAL rule (first or last NULL alone,
 * msendl with both NULL, last->iol_next not NULL), mrecvl(NULL, NULL)
 * reaching the protocol, the order of the checks (handle errors before
 * EINVAL), that the callbacks are never called when the front end refuses,
 * that they get exactly the vfs, list pointers and deadline of the call
 * and their result (message sizes up to SSIZE_MAX) and errno come back
 * unchanged, that msend/mrecv hand over a one-element list (NULL and 0
 * included), that the rest of the list checking is left to the protocol,
 * and a loopback message queue used by two coroutines with scattered
 * lists, EMSGSIZE and dropped messages.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- A recording object --------------------------------------------------- */

/* What one callback saw. The one-element list of msend/mrecv lives in the
   front end's frame, so its contents are copied while the call runs. */
struct seen {
    int calls;
    struct msock_vfs *vfs;
    struct iolist *first;
    struct iolist *last;
    int64_t deadline;
    struct iolist first_copy;
};

struct rec {
    struct hvfs hvfs;
    struct bsock_vfs bvfs;
    struct msock_vfs mvfs;
    int is_bsock; /* answers dill_bsock_type */
    int is_msock; /* answers dill_msock_type */
    int queries;
    int closes;
    struct seen send;
    struct seen recv;
    ssize_t result; /* what the callbacks return */
    int result_errno;
};

static void *rec_query(struct hvfs *hvfs, const void *type) {
    struct rec *r = (struct rec *)((char *)hvfs - offsetof(struct rec, hvfs));
    r->queries++;
    if(type == bsock_type && r->is_bsock) return &r->bvfs;
    if(type == msock_type && r->is_msock) return &r->mvfs;
    errno = ENOTSUP;
    return NULL;
}

static void rec_close(struct hvfs *hvfs) {
    struct rec *r = (struct rec *)((char *)hvfs - offsetof(struct rec, hvfs));
    r->closes++;
}

static ssize_t record(struct rec *r, struct seen *s, struct msock_vfs *vfs,
      struct iolist *first, struct iolist *last, int64_t deadline) {
    s->calls++;
    s->vfs = vfs;
    s->first = first;
    s->last = last;
    s->deadline = deadline;
    if(first) s->first_copy = *first;
    if(r->result < 0) errno = r->result_errno;
    return r->result;
}

static int rec_msendl(struct msock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct rec *r = (struct rec *)((char *)vfs - offsetof(struct rec, mvfs));
    return (int)record(r, &r->send, vfs, first, last, deadline);
}

static ssize_t rec_mrecvl(struct msock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct rec *r = (struct rec *)((char *)vfs - offsetof(struct rec, mvfs));
    return record(r, &r->recv, vfs, first, last, deadline);
}

/* A bytestream side that must never be reached from this test. */
static int rec_bsendl(struct bsock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)vfs; (void)first; (void)last; (void)deadline;
    CHECK(!"bsendl reached from a message call");
    return -1;
}

static int rec_brecvl(struct bsock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)vfs; (void)first; (void)last; (void)deadline;
    CHECK(!"brecvl reached from a message call");
    return -1;
}

static int rec_make(struct rec *r, int is_bsock, int is_msock) {
    memset(r, 0, sizeof(*r));
    r->hvfs.query = rec_query;
    r->hvfs.close = rec_close;
    r->bvfs.bsendl = rec_bsendl;
    r->bvfs.brecvl = rec_brecvl;
    r->mvfs.msendl = rec_msendl;
    r->mvfs.mrecvl = rec_mrecvl;
    r->is_bsock = is_bsock;
    r->is_msock = is_msock;
    int h = hmake(&r->hvfs);
    CHECK(h >= 0);
    return h;
}

/* ---- EBADF ---------------------------------------------------------------- */

/* The four calls on a number that was never a handle, on a closed one and
   on the number hown gave up; EBADF comes before any EINVAL. */
static void check_all_ebadf(int h) {
    char buf[4] = {0};
    struct iolist iol = {buf, sizeof(buf), NULL, 0};
    CHECK_ERR(msend(h, buf, sizeof(buf), -1), EBADF);
    CHECK_ERR(mrecv(h, buf, sizeof(buf), -1), EBADF);
    CHECK_ERR(msendl(h, &iol, &iol, -1), EBADF);
    CHECK_ERR(mrecvl(h, &iol, &iol, -1), EBADF);
    CHECK_ERR(msendl(h, NULL, NULL, -1), EBADF);
    CHECK_ERR(mrecvl(h, NULL, NULL, -1), EBADF);
    CHECK_ERR(msendl(h, &iol, NULL, 0), EBADF);
    CHECK_ERR(mrecvl(h, NULL, &iol, 0), EBADF);
    CHECK(iol.iol_base == buf && iol.iol_len == sizeof(buf) &&
        iol.iol_next == NULL && iol.iol_rsvd == 0);
}

static void test_ebadf(void) {
    check_all_ebadf(-1);
    check_all_ebadf(-12345);
    check_all_ebadf(1000000);
    check_all_ebadf(INT32_MAX);

    struct rec r;
    int h = rec_make(&r, 0, 1);
    CHECK(hclose(h) == 0);
    CHECK(r.closes == 1);
    check_all_ebadf(h);
    CHECK(r.send.calls == 0 && r.recv.calls == 0);

    /* hown: the old number is dead, the new one reaches the same object. */
    h = rec_make(&r, 0, 1);
    char c = 'x';
    CHECK(msend(h, &c, 1, -1) == 0);
    int h2 = hown(h);
    CHECK(h2 >= 0 && h2 != h);
    check_all_ebadf(h);
    CHECK(r.send.calls == 1);
    CHECK(msend(h2, &c, 1, -1) == 0);
    CHECK(r.send.calls == 2 && r.send.vfs == &r.mvfs);
    CHECK(mrecv(h2, &c, 1, -1) == 0);
    CHECK(r.recv.calls == 1 && r.recv.vfs == &r.mvfs);
    CHECK(r.closes == 0);
    CHECK(hclose(h2) == 0);
    CHECK(r.closes == 1);
}

/* ---- ENOTSUP -------------------------------------------------------------- */

static void check_all_enotsup(int h) {
    char buf[4] = {0};
    struct iolist iol = {buf, sizeof(buf), NULL, 0};
    CHECK_ERR(msend(h, buf, sizeof(buf), -1), ENOTSUP);
    CHECK_ERR(mrecv(h, buf, sizeof(buf), -1), ENOTSUP);
    CHECK_ERR(msendl(h, &iol, &iol, -1), ENOTSUP);
    CHECK_ERR(mrecvl(h, &iol, &iol, -1), ENOTSUP);
    CHECK_ERR(mrecvl(h, NULL, NULL, -1), ENOTSUP);
    /* The interface check comes before the list checks. */
    CHECK_ERR(msendl(h, NULL, NULL, -1), ENOTSUP);
    CHECK_ERR(msendl(h, NULL, &iol, 0), ENOTSUP);
    CHECK_ERR(mrecvl(h, &iol, NULL, 0), ENOTSUP);
}

static coroutine void sleeper(void) {
    msleep(-1);
}

static void test_enotsup(void) {
    int ch[2];
    CHECK(chmake(ch) == 0);
    check_all_enotsup(ch[0]);
    check_all_enotsup(ch[1]);
    int v = 7;
    CHECK(chsend(ch[0], &v, sizeof(v), 0) == -1 && errno == ETIMEDOUT);
    CHECK(hclose(ch[0]) == 0);
    CHECK(hclose(ch[1]) == 0);

    int b = bundle();
    CHECK(b >= 0);
    check_all_enotsup(b);
    CHECK(bundle_go(b, sleeper()) == 0);
    check_all_enotsup(b);
    CHECK(hclose(b) == 0);

    int cr = go(sleeper());
    CHECK(cr >= 0);
    check_all_enotsup(cr);
    CHECK(hclose(cr) == 0);

    /* An object that is a bytestream only, and one that is nothing. */
    struct rec r;
    int h = rec_make(&r, 1, 0);
    check_all_enotsup(h);
    CHECK(r.queries > 0);
    CHECK(r.send.calls == 0 && r.recv.calls == 0);
    CHECK(hclose(h) == 0);
    h = rec_make(&r, 0, 0);
    check_all_enotsup(h);
    CHECK(r.send.calls == 0 && r.recv.calls == 0);
    CHECK(hclose(h) == 0);
    CHECK(r.closes == 1);
}

/* ---- EINVAL --------------------------------------------------------------- */

/* Elements a -> b -> c -> NULL, plus a detached element d. */
struct chain {
    char bytes[12];
    struct iolist a, b, c, d;
};

static void chain_init(struct chain *k) {
    memset(k, 0, sizeof(*k));
    k->a = (struct iolist){k->bytes, 4, &k->b, 0};
    k->b = (struct iolist){k->bytes + 4, 4, &k->c, 0};
    k->c = (struct iolist){k->bytes + 8, 4, NULL, 0};
    k->d = (struct iolist){k->bytes, 2, NULL, 0};
}

static void chain_unchanged(struct chain *k) {
    CHECK(k->a.iol_base == k->bytes && k->a.iol_len == 4 &&
        k->a.iol_next == &k->b && k->a.iol_rsvd == 0);
    CHECK(k->b.iol_base == k->bytes + 4 && k->b.iol_len == 4 &&
        k->b.iol_next == &k->c && k->b.iol_rsvd == 0);
    CHECK(k->c.iol_base == k->bytes + 8 && k->c.iol_len == 4 &&
        k->c.iol_next == NULL && k->c.iol_rsvd == 0);
    CHECK(k->d.iol_base == k->bytes && k->d.iol_len == 2 &&
        k->d.iol_next == NULL && k->d.iol_rsvd == 0);
}

/* Calls msendl or mrecvl, as one signature. */
static ssize_t call(int send, int h, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    if(send) return msendl(h, first, last, deadline);
    return mrecvl(h, first, last, deadline);
}

/* The list rules both calls share. */
static void check_einval(int send, int h, struct rec *r, struct seen *s) {
    struct chain k;
    chain_init(&k);
    int calls = s->calls;
    /* first NULL, last a valid end. */
    CHECK_ERR(call(send, h, NULL, &k.c, -1), EINVAL);
    CHECK_ERR(call(send, h, NULL, &k.d, 0), EINVAL);
    /* last NULL, first a valid start. */
    CHECK_ERR(call(send, h, &k.a, NULL, -1), EINVAL);
    CHECK_ERR(call(send, h, &k.d, NULL, 0), EINVAL);
    /* last->iol_next not NULL, whether last is first, in the middle, or
       an element that points back into the list. */
    CHECK_ERR(call(send, h, &k.a, &k.a, -1), EINVAL);
    CHECK_ERR(call(send, h, &k.a, &k.b, -1), EINVAL);
    CHECK_ERR(call(send, h, &k.b, &k.b, -1), EINVAL);
    CHECK_ERR(call(send, h, NULL, &k.b, -1), EINVAL);
    k.c.iol_next = &k.a; /* a loop a -> b -> c -> a */
    CHECK_ERR(call(send, h, &k.a, &k.c, -1), EINVAL);
    CHECK(k.c.iol_next == &k.a);
    k.c.iol_next = NULL;
    chain_unchanged(&k);
    CHECK(s->calls == calls);
    /* The rules hold whatever the handle's callbacks would say. */
    r->result = -1;
    r->result_errno = ECONNRESET;
    CHECK_ERR(call(send, h, NULL, &k.c, -1), EINVAL);
    CHECK_ERR(call(send, h, &k.a, &k.b, -1), EINVAL);
    r->result = 0;
    CHECK(s->calls == calls);
    /* And the same list, well formed, goes through. */
    CHECK(call(send, h, &k.a, &k.c, -1) == 0);
    CHECK(s->calls == calls + 1);
    chain_unchanged(&k);
}

static void test_einval(void) {
    struct rec r;
    int h = rec_make(&r, 0, 1);
    check_einval(1, h, &r, &r.send);
    check_einval(0, h, &r, &r.recv);
    CHECK(r.send.calls == 1 && r.recv.calls == 1);
    /* Both NULL: meaningless for a send, "drop one message" for a
       receive, which the protocol gets as it is. */
    CHECK_ERR(msendl(h, NULL, NULL, -1), EINVAL);
    CHECK_ERR(msendl(h, NULL, NULL, 0), EINVAL);
    CHECK(r.send.calls == 1);
    r.result = 42;
    CHECK(mrecvl(h, NULL, NULL, 1234) == 42);
    CHECK(r.recv.calls == 2);
    CHECK(r.recv.vfs == &r.mvfs);
    CHECK(r.recv.first == NULL && r.recv.last == NULL);
    CHECK(r.recv.deadline == 1234);
    r.result = -1;
    r.result_errno = ETIMEDOUT;
    CHECK_ERR(mrecvl(h, NULL, NULL, 0), ETIMEDOUT);
    CHECK(r.recv.calls == 3 && r.recv.deadline == 0);
    CHECK(hclose(h) == 0);
}

/* ---- What the callbacks receive ------------------------------------------- */

static const int64_t deadlines[] = {-1, -2, INT64_MIN, 0, 1, 1000,
    INT64_MAX};
#define NDEADLINES ((int)(sizeof(deadlines) / sizeof(deadlines[0])))

/* msendl/mrecvl pass the list pointers and the deadline as they are. */
static void check_list_args(int send, int h, struct rec *r,
      struct seen *s) {
    struct chain k;
    chain_init(&k);
    for(int i = 0; i != NDEADLINES; i++) {
        int calls = s->calls;
        CHECK(call(send, h, &k.a, &k.c, deadlines[i]) == 0);
        CHECK(s->calls == calls + 1);
        CHECK(s->vfs == &r->mvfs);
        CHECK(s->first == &k.a && s->last == &k.c);
        CHECK(s->deadline == deadlines[i]);
    }
    CHECK(call(send, h, &k.d, &k.d, -1) == 0);
    CHECK(s->first == &k.d && s->last == &k.d);
    CHECK(call(send, h, &k.b, &k.c, now() + 500) == 0);
    CHECK(s->first == &k.b && s->last == &k.c);
    chain_unchanged(&k);
    /* The callback's failure comes back as it is. */
    static const int errs[] = {ECONNRESET, EPIPE, ETIMEDOUT, ECANCELED,
        EBUSY, ENOMEM, EPROTO, EMSGSIZE, EINVAL};
    for(size_t i = 0; i != sizeof(errs) / sizeof(errs[0]); i++) {
        r->result = -1;
        r->result_errno = errs[i];
        CHECK_ERR(call(send, h, &k.a, &k.c, 0), errs[i]);
    }
    r->result = 0;
    /* What the front end leaves to the protocol (§5): the loop, iol_rsvd
       and reachability checks. The list reaches the callback untouched. */
    k.b.iol_rsvd = 5;
    CHECK(call(send, h, &k.a, &k.c, -1) == 0);
    CHECK(s->first == &k.a && s->last == &k.c && k.b.iol_rsvd == 5);
    k.b.iol_rsvd = 0;
    CHECK(call(send, h, &k.a, &k.d, -1) == 0);
    CHECK(s->first == &k.a && s->last == &k.d);
    chain_unchanged(&k);
}

/* msend/mrecv hand over one element {buf, len, NULL, 0} with first ==
   last, and no list rule applies to them. */
static void check_single(int send, int h, struct rec *r, struct seen *s) {
    char buf[16];
    for(int i = 0; i != NDEADLINES; i++) {
        int calls = s->calls;
        size_t len = (size_t)i + 3;
        ssize_t rc = send ? msend(h, buf, len, deadlines[i]) :
            mrecv(h, buf, len, deadlines[i]);
        CHECK(rc == 0);
        CHECK(s->calls == calls + 1);
        CHECK(s->vfs == &r->mvfs);
        CHECK(s->first != NULL && s->first == s->last);
        CHECK(s->first_copy.iol_base == buf);
        CHECK(s->first_copy.iol_len == len);
        CHECK(s->first_copy.iol_next == NULL);
        CHECK(s->first_copy.iol_rsvd == 0);
        CHECK(s->deadline == deadlines[i]);
    }
    ssize_t rc = send ? msend(h, NULL, 0, -1) : mrecv(h, NULL, 0, -1);
    CHECK(rc == 0);
    CHECK(s->first != NULL && s->first == s->last);
    CHECK(s->first_copy.iol_base == NULL && s->first_copy.iol_len == 0);
    rc = send ? msend(h, buf, 0, 0) : mrecv(h, buf, 0, 0);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_base == buf && s->first_copy.iol_len == 0);
    rc = send ? msend(h, NULL, 10, 0) : mrecv(h, NULL, 10, 0);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_base == NULL && s->first_copy.iol_len == 10);
    rc = send ? msend(h, buf, SIZE_MAX, 0) : mrecv(h, buf, SIZE_MAX, 0);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_len == SIZE_MAX);
    r->result = -1;
    r->result_errno = EPIPE;
    errno = 0;
    rc = send ? msend(h, buf, 1, -1) : mrecv(h, buf, 1, -1);
    CHECK(rc == -1 && errno == EPIPE);
    r->result = 0;
}

static void test_args(void) {
    struct rec r;
    int h = rec_make(&r, 1, 1);
    check_list_args(1, h, &r, &r.send);
    int sends = r.send.calls;
    CHECK(r.recv.calls == 0);
    check_list_args(0, h, &r, &r.recv);
    CHECK(r.send.calls == sends);
    check_single(1, h, &r, &r.send);
    int recvs = r.recv.calls;
    sends = r.send.calls;
    check_single(0, h, &r, &r.recv);
    CHECK(r.send.calls == sends);
    CHECK(r.recv.calls > recvs);
    /* Message sizes come back whole, up to the largest ssize_t. */
    static const ssize_t sizes[] = {1, 255, 65536, INT_MAX, SSIZE_MAX};
    char buf[8];
    struct iolist iol = {buf, sizeof(buf), NULL, 0};
    for(size_t i = 0; i != sizeof(sizes) / sizeof(sizes[0]); i++) {
        r.result = sizes[i];
        CHECK(mrecv(h, buf, sizeof(buf), -1) == sizes[i]);
        CHECK(mrecvl(h, &iol, &iol, -1) == sizes[i]);
        CHECK(mrecvl(h, NULL, NULL, -1) == sizes[i]);
    }
    r.result = 0;
    CHECK(r.closes == 0);
    CHECK(hclose(h) == 0);
    CHECK(r.closes == 1);
}

/* ---- A loopback message queue --------------------------------------------- */

/* A message socket that hands back what is sent to it, holding at most
   QLEN messages of up to MAXMSG bytes, so that both sides have to wait for
   each other (with yield(): the peer is a coroutine of this thread). A
   message larger than the receive list fails with EMSGSIZE and is
   dropped; a receive with both ends NULL drops one message and returns its
   size. */
#define QLEN 3
#define MAXMSG 300

struct queue {
    struct hvfs hvfs;
    struct msock_vfs mvfs;
    unsigned char msg[QLEN][MAXMSG];
    size_t len[QLEN];
    size_t head;
    size_t count;
    int closes;
};

static void *queue_query(struct hvfs *hvfs, const void *type) {
    struct queue *q = (struct queue *)((char *)hvfs -
        offsetof(struct queue, hvfs));
    if(type == msock_type) return &q->mvfs;
    errno = ENOTSUP;
    return NULL;
}

static void queue_close(struct hvfs *hvfs) {
    struct queue *q = (struct queue *)((char *)hvfs -
        offsetof(struct queue, hvfs));
    q->closes++;
}

static int queue_wait(int64_t deadline) {
    if(deadline == 0 || (deadline > 0 && now() >= deadline)) {
        errno = ETIMEDOUT;
        return -1;
    }
    return yield();
}

static int queue_msendl(struct msock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct queue *q = (struct queue *)((char *)vfs -
        offsetof(struct queue, mvfs));
    size_t total = 0;
    for(struct iolist *it = first; it; it = it->iol_next) {
        total += it->iol_len;
        if(it == last) break;
    }
    if(total > MAXMSG) {
        errno = EMSGSIZE;
        return -1;
    }
    while(q->count == QLEN)
        if(queue_wait(deadline) < 0) return -1;
    size_t slot = (q->head + q->count) % QLEN;
    size_t pos = 0;
    for(struct iolist *it = first; it; it = it->iol_next) {
        if(it->iol_len) memcpy(q->msg[slot] + pos, it->iol_base, it->iol_len);
        pos += it->iol_len;
        if(it == last) break;
    }
    q->len[slot] = total;
    q->count++;
    return 0;
}

static ssize_t queue_mrecvl(struct msock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct queue *q = (struct queue *)((char *)vfs -
        offsetof(struct queue, mvfs));
    while(q->count == 0)
        if(queue_wait(deadline) < 0) return -1;
    const unsigned char *msg = q->msg[q->head];
    size_t len = q->len[q->head];
    q->head = (q->head + 1) % QLEN;
    q->count--;
    if(!first) return (ssize_t)len;
    size_t room = 0;
    for(struct iolist *it = first; it; it = it->iol_next) {
        room += it->iol_len;
        if(it == last) break;
    }
    if(len > room) {
        errno = EMSGSIZE;
        return -1;
    }
    size_t pos = 0;
    for(struct iolist *it = first; it && pos < len; it = it->iol_next) {
        size_t n = len - pos < it->iol_len ? len - pos : it->iol_len;
        if(it->iol_base) memcpy(it->iol_base, msg + pos, n);
        pos += n;
        if(it == last) break;
    }
    return (ssize_t)len;
}

#define MESSAGES 5000

static unsigned char pattern(int m, size_t i) {
    return (unsigned char)(m * 31 + (int)i * 7);
}

static size_t msg_size(int m) {
    return (size_t)(m * 37) % (MAXMSG + 1);
}

/* Sends MESSAGES messages of 0..MAXMSG bytes, alternating msend and
   three-element msendl lists with an empty middle element. */
static coroutine void writer(int h, int *done) {
    unsigned char data[MAXMSG];
    for(int m = 0; m != MESSAGES; m++) {
        size_t len = msg_size(m);
        for(size_t i = 0; i != len; i++) data[i] = pattern(m, i);
        if(m % 2 == 0) {
            CHECK(msend(h, data, len, -1) == 0);
        } else {
            size_t half = len / 2;
            struct iolist c = {data + half, len - half, NULL, 0};
            struct iolist b = {NULL, 0, &c, 0};
            struct iolist a = {data, half, &b, 0};
            CHECK(msendl(h, &a, &c, -1) == 0);
            CHECK(a.iol_next == &b && b.iol_next == &c);
        }
    }
    *done = 1;
}

/* Receives them with mrecv, with lists that skip bytes, with NULL/NULL
   (drop), and with a buffer one byte short every 11th message. */
static coroutine void reader(int h, int *done) {
    unsigned char buf[MAXMSG + 1];
    for(int m = 0; m != MESSAGES; m++) {
        size_t len = msg_size(m);
        memset(buf, 0xAA, sizeof(buf));
        if(m % 11 == 5 && len > 0) {
            CHECK_ERR(mrecv(h, buf, len - 1, -1), EMSGSIZE);
            continue;
        }
        if(m % 4 == 0) {
            CHECK(mrecv(h, buf, sizeof(buf), -1) == (ssize_t)len);
            for(size_t i = 0; i != len; i++) CHECK(buf[i] == pattern(m, i));
            CHECK(buf[len] == 0xAA);
        } else if(m % 4 == 1) {
            CHECK(mrecvl(h, NULL, NULL, -1) == (ssize_t)len);
        } else {
            size_t skip = len / 3;
            struct iolist c = {buf + skip, sizeof(buf) - skip, NULL, 0};
            struct iolist b = {NULL, skip, &c, 0};
            struct iolist a = {buf, 0, &b, 0};
            CHECK(mrecvl(h, &a, &c, -1) == (ssize_t)len);
            for(size_t i = skip; i < len; i++)
                CHECK(buf[i] == pattern(m, i));
            CHECK(buf[0] == 0xAA || skip == 0);
        }
    }
    *done = 1;
}

static void test_queue(void) {
    struct queue q;
    memset(&q, 0, sizeof(q));
    q.hvfs.query = queue_query;
    q.hvfs.close = queue_close;
    q.mvfs.msendl = queue_msendl;
    q.mvfs.mrecvl = queue_mrecvl;
    int h = hmake(&q.hvfs);
    CHECK(h >= 0);
    char c;
    CHECK_ERR(mrecv(h, &c, 1, 0), ETIMEDOUT);
    CHECK_ERR(mrecv(h, &c, 1, now() - 1), ETIMEDOUT);
    /* This object is no bytestream. */
    CHECK_ERR(bsend(h, &c, 1, 0), ENOTSUP);
    int wdone = 0, rdone = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, reader(h, &rdone)) == 0);
    CHECK(bundle_go(b, writer(h, &wdone)) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(wdone == 1 && rdone == 1);
    CHECK(q.count == 0);
    CHECK(hclose(b) == 0);
    CHECK(q.closes == 0);
    CHECK(hclose(h) == 0);
    CHECK(q.closes == 1);
    CHECK_ERR(mrecv(h, &c, 1, 0), EBADF);
}

/* ---- Main ----------------------------------------------------------------- */

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    while(readdir(d)) n++;
    closedir(d);
    return n;
}

int main(void) {
    /* The scheduler's own descriptors exist before the first count. */
    CHECK(yield() == 0);
    int fds = count_fds();
    test_ebadf();
    test_enotsup();
    test_einval();
    test_args();
    test_queue();
    CHECK(count_fds() == fds);
    return 0;
}
