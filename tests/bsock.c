/*
 * tests/bsock.c: the bytestream front end (sockets.md §3, §5): bsend,
 * brecv, bsendl and brecvl over handles made here with hmake, whose
 * dill_bsock_vfs callbacks record what they receive. Covers EBADF (never a
 * handle, a closed one, the old number after hown), ENOTSUP (channel ends,
 * a bundle, a coroutine handle, an object that is only a message socket or
 * nothing at all), every front-end EINVAL rule (first or last NULL, both
 * NULL, last->iol_next not NULL; brecvl(NULL, NULL) included), the order of
 * the checks (handle errors before EINVAL), that the callbacks are never
 * called when the front end refuses, that they get exactly the vfs, list
 * pointers and deadline of the call and their result and errno come back
 * unchanged, that bsend/brecv hand over a one-element list (NULL and 0
 * included), that the front end leaves the rest of the list checking to
 * the protocol, and a loopback pipe object moving data between two
 * coroutines through multi-element lists with skipped bytes.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <dirent.h>
#include <stdint.h>
#include <string.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

/* ---- A recording object --------------------------------------------------- */

/* What one callback saw. The one-element list of bsend/brecv lives in the
   front end's frame, so its contents are copied while the call runs. */
struct seen {
    int calls;
    struct bsock_vfs *vfs;
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
    int result;   /* what the callbacks return */
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

static int record(struct rec *r, struct seen *s, struct bsock_vfs *vfs,
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

static int rec_bsendl(struct bsock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct rec *r = (struct rec *)((char *)vfs - offsetof(struct rec, bvfs));
    return record(r, &r->send, vfs, first, last, deadline);
}

static int rec_brecvl(struct bsock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct rec *r = (struct rec *)((char *)vfs - offsetof(struct rec, bvfs));
    return record(r, &r->recv, vfs, first, last, deadline);
}

/* A message socket side that must never be reached from this test. */
static int rec_msendl(struct msock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)vfs; (void)first; (void)last; (void)deadline;
    CHECK(!"msendl reached from a bytestream call");
    return -1;
}

static ssize_t rec_mrecvl(struct msock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)vfs; (void)first; (void)last; (void)deadline;
    CHECK(!"mrecvl reached from a bytestream call");
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
    CHECK_ERR(bsend(h, buf, sizeof(buf), -1), EBADF);
    CHECK_ERR(brecv(h, buf, sizeof(buf), -1), EBADF);
    CHECK_ERR(bsendl(h, &iol, &iol, -1), EBADF);
    CHECK_ERR(brecvl(h, &iol, &iol, -1), EBADF);
    CHECK_ERR(bsendl(h, NULL, NULL, -1), EBADF);
    CHECK_ERR(brecvl(h, NULL, NULL, -1), EBADF);
    CHECK_ERR(bsendl(h, &iol, NULL, 0), EBADF);
    CHECK_ERR(brecvl(h, NULL, &iol, 0), EBADF);
    CHECK(iol.iol_base == buf && iol.iol_len == sizeof(buf) &&
        iol.iol_next == NULL && iol.iol_rsvd == 0);
}

static void test_ebadf(void) {
    check_all_ebadf(-1);
    check_all_ebadf(-12345);
    check_all_ebadf(1000000);
    check_all_ebadf(INT32_MAX);

    struct rec r;
    int h = rec_make(&r, 1, 0);
    CHECK(hclose(h) == 0);
    CHECK(r.closes == 1);
    check_all_ebadf(h);
    CHECK(r.send.calls == 0 && r.recv.calls == 0);

    /* hown: the old number is dead, the new one reaches the same object. */
    h = rec_make(&r, 1, 0);
    char c = 'x';
    CHECK(bsend(h, &c, 1, -1) == 0);
    int h2 = hown(h);
    CHECK(h2 >= 0 && h2 != h);
    check_all_ebadf(h);
    CHECK(r.send.calls == 1);
    CHECK(bsend(h2, &c, 1, -1) == 0);
    CHECK(r.send.calls == 2 && r.send.vfs == &r.bvfs);
    CHECK(brecv(h2, &c, 1, -1) == 0);
    CHECK(r.recv.calls == 1 && r.recv.vfs == &r.bvfs);
    CHECK(r.closes == 0);
    CHECK(hclose(h2) == 0);
    CHECK(r.closes == 1);
}

/* ---- ENOTSUP -------------------------------------------------------------- */

static void check_all_enotsup(int h) {
    char buf[4] = {0};
    struct iolist iol = {buf, sizeof(buf), NULL, 0};
    CHECK_ERR(bsend(h, buf, sizeof(buf), -1), ENOTSUP);
    CHECK_ERR(brecv(h, buf, sizeof(buf), -1), ENOTSUP);
    CHECK_ERR(bsendl(h, &iol, &iol, -1), ENOTSUP);
    CHECK_ERR(brecvl(h, &iol, &iol, -1), ENOTSUP);
    /* The interface check comes before the list checks. */
    CHECK_ERR(bsendl(h, NULL, NULL, -1), ENOTSUP);
    CHECK_ERR(brecvl(h, NULL, NULL, -1), ENOTSUP);
    CHECK_ERR(bsendl(h, NULL, &iol, 0), ENOTSUP);
    CHECK_ERR(brecvl(h, &iol, NULL, 0), ENOTSUP);
}

static coroutine void sleeper(void) {
    msleep(-1);
}

static void test_enotsup(void) {
    int ch[2];
    CHECK(chmake(ch) == 0);
    check_all_enotsup(ch[0]);
    check_all_enotsup(ch[1]);
    /* The channel still works: the failed calls left it alone. */
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

    /* An object that is a message socket only, and one that is nothing. */
    struct rec r;
    int h = rec_make(&r, 0, 1);
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

typedef int (*list_fn)(int s, struct iolist *first, struct iolist *last,
    int64_t deadline);

/* Every list rule of the front end, for bsendl or brecvl. */
static void check_einval(list_fn fn, int h, struct rec *r, struct seen *s) {
    struct chain k;
    chain_init(&k);
    int calls = s->calls;
    /* first NULL, last a valid end. */
    CHECK_ERR(fn(h, NULL, &k.c, -1), EINVAL);
    CHECK_ERR(fn(h, NULL, &k.d, 0), EINVAL);
    /* last NULL, first a valid start. */
    CHECK_ERR(fn(h, &k.a, NULL, -1), EINVAL);
    CHECK_ERR(fn(h, &k.d, NULL, 0), EINVAL);
    /* Both NULL: no meaning in the public call (the original crashes). */
    CHECK_ERR(fn(h, NULL, NULL, -1), EINVAL);
    CHECK_ERR(fn(h, NULL, NULL, 0), EINVAL);
    /* last->iol_next not NULL, whether last is first, in the middle, or
       an element that points back into the list. */
    CHECK_ERR(fn(h, &k.a, &k.a, -1), EINVAL);
    CHECK_ERR(fn(h, &k.a, &k.b, -1), EINVAL);
    CHECK_ERR(fn(h, &k.b, &k.b, -1), EINVAL);
    k.c.iol_next = &k.a; /* a loop a -> b -> c -> a */
    CHECK_ERR(fn(h, &k.a, &k.c, -1), EINVAL);
    CHECK(k.c.iol_next == &k.a);
    k.c.iol_next = NULL;
    chain_unchanged(&k);
    CHECK(s->calls == calls);
    /* The rules hold whatever the handle's callbacks would say. */
    r->result = -1;
    r->result_errno = ECONNRESET;
    CHECK_ERR(fn(h, NULL, &k.c, -1), EINVAL);
    CHECK_ERR(fn(h, &k.a, &k.b, -1), EINVAL);
    r->result = 0;
    CHECK(s->calls == calls);
    /* And the same list, well formed, goes through. */
    CHECK(fn(h, &k.a, &k.c, -1) == 0);
    CHECK(s->calls == calls + 1);
    chain_unchanged(&k);
}

static void test_einval(void) {
    struct rec r;
    int h = rec_make(&r, 1, 0);
    check_einval(bsendl, h, &r, &r.send);
    check_einval(brecvl, h, &r, &r.recv);
    CHECK(r.send.calls == 1 && r.recv.calls == 1);
    CHECK(hclose(h) == 0);
}

/* ---- What the callbacks receive ------------------------------------------- */

static const int64_t deadlines[] = {-1, -2, INT64_MIN, 0, 1, 1000,
    INT64_MAX};
#define NDEADLINES ((int)(sizeof(deadlines) / sizeof(deadlines[0])))

/* bsendl/brecvl pass the list pointers and the deadline as they are. */
static void check_list_args(list_fn fn, int h, struct rec *r,
      struct seen *s) {
    struct chain k;
    chain_init(&k);
    for(int i = 0; i != NDEADLINES; i++) {
        int calls = s->calls;
        CHECK(fn(h, &k.a, &k.c, deadlines[i]) == 0);
        CHECK(s->calls == calls + 1);
        CHECK(s->vfs == &r->bvfs);
        CHECK(s->first == &k.a && s->last == &k.c);
        CHECK(s->deadline == deadlines[i]);
    }
    /* A one-element list, and a list starting in the middle. */
    CHECK(fn(h, &k.d, &k.d, -1) == 0);
    CHECK(s->first == &k.d && s->last == &k.d);
    CHECK(fn(h, &k.b, &k.c, now() + 500) == 0);
    CHECK(s->first == &k.b && s->last == &k.c);
    chain_unchanged(&k);
    /* The callback's failure comes back as it is. */
    static const int errs[] = {ECONNRESET, EPIPE, ETIMEDOUT, ECANCELED,
        EBUSY, ENOMEM, EPROTO, EINVAL};
    for(size_t i = 0; i != sizeof(errs) / sizeof(errs[0]); i++) {
        r->result = -1;
        r->result_errno = errs[i];
        CHECK_ERR(fn(h, &k.a, &k.c, 0), errs[i]);
    }
    r->result = 0;
    /* What the front end leaves to the protocol (§5): the loop, iol_rsvd
       and reachability checks. The list reaches the callback untouched. */
    k.b.iol_rsvd = 5;
    CHECK(fn(h, &k.a, &k.c, -1) == 0);
    CHECK(s->first == &k.a && s->last == &k.c && k.b.iol_rsvd == 5);
    k.b.iol_rsvd = 0;
    CHECK(fn(h, &k.a, &k.d, -1) == 0);
    CHECK(s->first == &k.a && s->last == &k.d);
    chain_unchanged(&k);
}

/* bsend/brecv hand over one element {buf, len, NULL, 0} with first ==
   last, and no list rule applies to them. */
static void check_single(int send, int h, struct rec *r, struct seen *s) {
    char buf[16];
    for(int i = 0; i != NDEADLINES; i++) {
        int calls = s->calls;
        size_t len = (size_t)i + 3;
        int rc = send ? bsend(h, buf, len, deadlines[i]) :
            brecv(h, buf, len, deadlines[i]);
        CHECK(rc == 0);
        CHECK(s->calls == calls + 1);
        CHECK(s->vfs == &r->bvfs);
        CHECK(s->first != NULL && s->first == s->last);
        CHECK(s->first_copy.iol_base == buf);
        CHECK(s->first_copy.iol_len == len);
        CHECK(s->first_copy.iol_next == NULL);
        CHECK(s->first_copy.iol_rsvd == 0);
        CHECK(s->deadline == deadlines[i]);
    }
    /* NULL buffers and zero lengths are the protocol's business: receive
       and drop, or nothing to do. */
    int rc = send ? bsend(h, NULL, 0, -1) : brecv(h, NULL, 0, -1);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_base == NULL && s->first_copy.iol_len == 0);
    rc = send ? bsend(h, buf, 0, 0) : brecv(h, buf, 0, 0);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_base == buf && s->first_copy.iol_len == 0);
    rc = send ? bsend(h, NULL, 10, 0) : brecv(h, NULL, 10, 0);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_base == NULL && s->first_copy.iol_len == 10);
    rc = send ? bsend(h, buf, SIZE_MAX, 0) : brecv(h, buf, SIZE_MAX, 0);
    CHECK(rc == 0);
    CHECK(s->first_copy.iol_len == SIZE_MAX);
    r->result = -1;
    r->result_errno = EPIPE;
    errno = 0;
    rc = send ? bsend(h, buf, 1, -1) : brecv(h, buf, 1, -1);
    CHECK(rc == -1 && errno == EPIPE);
    r->result = 0;
}

static void test_args(void) {
    struct rec r;
    int h = rec_make(&r, 1, 1);
    check_list_args(bsendl, h, &r, &r.send);
    int sends = r.send.calls;
    CHECK(r.recv.calls == 0);
    check_list_args(brecvl, h, &r, &r.recv);
    CHECK(r.send.calls == sends);
    check_single(1, h, &r, &r.send);
    int recvs = r.recv.calls;
    sends = r.send.calls;
    check_single(0, h, &r, &r.recv);
    CHECK(r.send.calls == sends);
    CHECK(r.recv.calls > recvs);
    CHECK(r.closes == 0);
    CHECK(hclose(h) == 0);
    CHECK(r.closes == 1);
}

/* ---- A loopback pipe ------------------------------------------------------ */

/* A bytestream that hands back what is sent to it, through a small ring so
   that both sides have to wait for each other. The waiting is yield(): the
   peer is another coroutine of this thread. */
#define RING 61

struct pipe {
    struct hvfs hvfs;
    struct bsock_vfs bvfs;
    unsigned char ring[RING];
    size_t head;  /* next byte to read */
    size_t count; /* bytes held */
    int closes;
};

static void *pipe_query(struct hvfs *hvfs, const void *type) {
    struct pipe *p = (struct pipe *)((char *)hvfs -
        offsetof(struct pipe, hvfs));
    if(type == bsock_type) return &p->bvfs;
    errno = ENOTSUP;
    return NULL;
}

static void pipe_close(struct hvfs *hvfs) {
    struct pipe *p = (struct pipe *)((char *)hvfs -
        offsetof(struct pipe, hvfs));
    p->closes++;
}

/* Wait for the other side to make progress: ETIMEDOUT at the deadline. */
static int pipe_wait(int64_t deadline) {
    if(deadline == 0 || (deadline > 0 && now() >= deadline)) {
        errno = ETIMEDOUT;
        return -1;
    }
    return yield();
}

static int pipe_bsendl(struct bsock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct pipe *p = (struct pipe *)((char *)vfs -
        offsetof(struct pipe, bvfs));
    for(struct iolist *it = first; it; it = it->iol_next) {
        const unsigned char *src = it->iol_base;
        for(size_t i = 0; i != it->iol_len; i++) {
            while(p->count == RING)
                if(pipe_wait(deadline) < 0) return -1;
            p->ring[(p->head + p->count) % RING] = src[i];
            p->count++;
        }
        if(it == last) break;
    }
    return 0;
}

static int pipe_brecvl(struct bsock_vfs *vfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct pipe *p = (struct pipe *)((char *)vfs -
        offsetof(struct pipe, bvfs));
    for(struct iolist *it = first; it; it = it->iol_next) {
        unsigned char *dst = it->iol_base;
        for(size_t i = 0; i != it->iol_len; i++) {
            while(p->count == 0)
                if(pipe_wait(deadline) < 0) return -1;
            if(dst) dst[i] = p->ring[p->head];
            p->head = (p->head + 1) % RING;
            p->count--;
        }
        if(it == last) break;
    }
    return 0;
}

#define TOTAL 100000

static unsigned char pattern(size_t i) {
    return (unsigned char)(i * 7 + i / 251);
}

/* Sends 0..TOTAL-1 of the pattern in pieces of 1..97 bytes, alternating
   bsend and three-element bsendl lists with an empty element. */
static coroutine void writer(int h, int *done) {
    static unsigned char data[TOTAL];
    for(size_t i = 0; i != TOTAL; i++) data[i] = pattern(i);
    size_t pos = 0;
    int n = 0;
    while(pos < TOTAL) {
        size_t len = (size_t)(n % 97) + 1;
        if(len > TOTAL - pos) len = TOTAL - pos;
        if(n % 2 == 0) {
            CHECK(bsend(h, data + pos, len, -1) == 0);
        } else {
            size_t half = len / 2;
            struct iolist c = {data + pos + half, len - half, NULL, 0};
            struct iolist b = {data, 0, &c, 0};
            struct iolist a = {data + pos, half, &b, 0};
            CHECK(bsendl(h, &a, &c, -1) == 0);
            CHECK(a.iol_next == &b && b.iol_next == &c);
        }
        pos += len;
        n++;
    }
    *done = 1;
}

/* Receives the same stream in other pieces, dropping some bytes through
   NULL bases and checking every byte it keeps. */
static coroutine void reader(int h, int *done) {
    unsigned char buf[200];
    size_t pos = 0;
    int n = 0;
    while(pos < TOTAL) {
        size_t len = (size_t)(n % 131) + 1;
        if(len > TOTAL - pos) len = TOTAL - pos;
        memset(buf, 0xAA, sizeof(buf));
        if(n % 3 == 0) {
            CHECK(brecv(h, buf, len, -1) == 0);
            for(size_t i = 0; i != len; i++)
                CHECK(buf[i] == pattern(pos + i));
        } else if(n % 3 == 1) {
            CHECK(brecv(h, NULL, len, -1) == 0);
        } else {
            size_t skip = len / 3;
            struct iolist c = {buf + skip, len - skip, NULL, 0};
            struct iolist b = {NULL, skip, &c, 0};
            struct iolist a = {buf, 0, &b, 0};
            CHECK(brecvl(h, &a, &c, -1) == 0);
            for(size_t i = skip; i != len; i++)
                CHECK(buf[i] == pattern(pos + i));
            CHECK(buf[len] == 0xAA);
        }
        pos += len;
        n++;
    }
    *done = 1;
}

static void test_pipe(void) {
    struct pipe p;
    memset(&p, 0, sizeof(p));
    p.hvfs.query = pipe_query;
    p.hvfs.close = pipe_close;
    p.bvfs.bsendl = pipe_bsendl;
    p.bvfs.brecvl = pipe_brecvl;
    int h = hmake(&p.hvfs);
    CHECK(h >= 0);
    /* Nothing to read yet: a deadline of 0 or in the past fails at once. */
    char c;
    CHECK_ERR(brecv(h, &c, 1, 0), ETIMEDOUT);
    CHECK_ERR(brecv(h, &c, 1, now() - 1), ETIMEDOUT);
    int wdone = 0, rdone = 0;
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, reader(h, &rdone)) == 0);
    CHECK(bundle_go(b, writer(h, &wdone)) == 0);
    CHECK(bundle_wait(b, -1) == 0);
    CHECK(wdone == 1 && rdone == 1);
    CHECK(p.count == 0);
    CHECK(hclose(b) == 0);
    CHECK(p.closes == 0);
    CHECK(hclose(h) == 0);
    CHECK(p.closes == 1);
    CHECK_ERR(brecv(h, &c, 1, 0), EBADF);
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
    test_pipe();
    CHECK(count_fds() == fds);
    return 0;
}
