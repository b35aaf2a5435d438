/*
 * tests/term.c: TERM (sockets.md §13, with §1-§5 and §20-§21): the
 * terminal handshake over PREFIX and SUFFIX (on IPC pairs, TCP over
 * loopback and an in-memory stream), over UDP and over TERM itself. Covers
 * the wire format (the terminator is one ordinary message of 0 to 32
 * bytes: raw bytes checked below PREFIX and SUFFIX), EPIPE for the peer's
 * terminator and for a data message equal to it, receives and sends let
 * through after the terminator and after term_done (as the original
 * does); lists of every shape around the diverted first bytes (a buffer
 * smaller than the terminator, an element cut in the middle, NULL bases
 * and empty elements, messages shorter than, as long as and longer than
 * the terminator, the list put back exactly), EMSGSIZE, drops with
 * mrecvl(NULL, NULL); term_attach and term_attach_mem (EINVAL for 33 bytes,
 * a NULL buffer with a length and mem NULL, EPROTO for a bytestream,
 * EBADF, ECANCELED, the socket closed on every failure, storage at every
 * offset 0-7 with nothing written outside it); term_done (EPIPE the second
 * time, a failed send not counted as sent, EBUSY while a send runs, EBADF,
 * ENOTSUP); term_detach (both ends at once, data before the peer's
 * terminator discarded, the socket below handed back with what follows
 * readable, no wait when the terminator has come, the end of the socket
 * below ending the drain, ETIMEDOUT against a silent peer and against a
 * peer that floods messages forever, a failed send, each with the stack
 * closed; EBUSY, EBADF and ENOTSUP without closing); the HTTP shape (lines
 * then an empty line, the body readable after detach); malformed lists
 * (EINVAL, the socket below unaffected); ECANCELED and hclose under a
 * blocked receive; no descriptor leaked.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "msgtest.h"

coroutine static void do_mrecv(int s, void *buf, size_t len, int64_t deadline,
      volatile struct result *r) {
    finish(r, mrecv(s, buf, len, deadline));
}

coroutine static void do_msend(int s, const void *buf, size_t len,
      int64_t deadline, volatile struct result *r) {
    finish(r, msend(s, buf, len, deadline));
}

coroutine static void do_detach(int s, int64_t deadline,
      volatile struct result *r) {
    finish(r, term_detach(s, deadline));
}

/* Sends data messages until sending fails. They are large (the 1-byte
   prefix allows 255) so that filling the kernel's buffers, which this
   coroutine does without letting the other run, takes few calls: with
   4-byte messages a loaded machine took seconds before the receiver's
   turn came. */
coroutine static void flood(int s, volatile struct result *r) {
    char data[200];
    memset(data, 'd', sizeof(data));
    int rc;
    while((rc = msend(s, data, sizeof(data), -1)) == 0) {}
    finish(r, rc);
}

static void check_closed_peer(int peer) {
    char c;
    CHECK_ERR(brecv(peer, &c, 1, SOON), EPIPE);
    CHECK(hclose(peer) == 0);
}

/* TERM over PREFIX (1-byte headers) on both ends of an IPC pair; raw[i]
   is the PREFIX socket under t[i]. */
static void term_pair(int t[2], const void *term, size_t len) {
    int s[2];
    ipc_connected(s);
    for(int i = 0; i < 2; i++) {
        int p = prefix_attach(s[i], 1, 0);
        CHECK(p >= 0);
        t[i] = term_attach(p, term, len);
        CHECK(t[i] >= 0);
    }
}

/* ---- The handshake --------------------------------------------------------------- */

static void test_basic(void) {
    int t[2];
    term_pair(t, "STOP", 4);
    char buf[16];
    CHECK(msend(t[0], "hello", 5, SOON) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK(term_done(t[0], SOON) == 0);
    CHECK_ERR(term_done(t[0], SOON), EPIPE);
    CHECK_ERR(mrecv(t[1], buf, sizeof(buf), SOON), EPIPE);
    /* The other direction still works. */
    CHECK(msend(t[1], "back", 4, SOON) == 0);
    CHECK(mrecv(t[0], buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "back", 4) == 0);
    /* As in the original, a send after term_done goes out, and the peer's
       next receive reads it. */
    CHECK(msend(t[0], "late", 4, SOON) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "late", 4) == 0);
    /* Both terminators are in: detach waits for nothing. */
    CHECK(term_done(t[1], SOON) == 0);
    CHECK_ERR(mrecv(t[0], buf, sizeof(buf), SOON), EPIPE);
    int p0 = term_detach(t[0], 0);
    int p1 = term_detach(t[1], 0);
    CHECK(p0 >= 0 && p1 >= 0);
    CHECK_ERR(msend(t[0], "x", 1, SOON), EBADF);
    CHECK_ERR(term_detach(t[0], SOON), EBADF);
    /* The PREFIX sockets carry on. */
    CHECK(msend(p0, "after", 5, SOON) == 0);
    CHECK(mrecv(p1, buf, sizeof(buf), SOON) == 5);
    CHECK(memcmp(buf, "after", 5) == 0);
    CHECK(hclose(p0) == 0);
    CHECK_ERR(mrecv(p1, buf, sizeof(buf), SOON), EPIPE);
    CHECK(hclose(p1) == 0);
}

/* The terminator on the wire: one message of exactly its bytes. */
static void test_wire(void) {
    static const char long_term[] = "0123456789abcdef0123456789abcdef";
    static const size_t lens[] = {0, 1, 5, 32};
    for(size_t i = 0; i < 4; i++) {
        int s[2];
        ipc_connected(s);
        int p = prefix_attach(s[0], 1, 0);
        CHECK(p >= 0);
        int t = term_attach(p, lens[i] ? long_term : NULL, lens[i]);
        CHECK(t >= 0);
        CHECK(msend(t, "ab", 2, SOON) == 0);
        CHECK(term_done(t, SOON) == 0);
        uint8_t wire[40];
        CHECK(brecv(s[1], wire, 3 + 1 + lens[i], SOON) == 0);
        CHECK(memcmp(wire, "\2ab", 3) == 0);
        CHECK(wire[3] == lens[i]);
        CHECK(memcmp(wire + 4, long_term, lens[i]) == 0);
        /* The peer's terminator, raw. */
        wire[0] = (uint8_t)lens[i];
        memcpy(wire + 1, long_term, lens[i]);
        CHECK(bsend(s[1], wire, 1 + lens[i], SOON) == 0);
        char buf[40];
        CHECK_ERR(mrecv(t, buf, sizeof(buf), SOON), EPIPE);
        int u = term_detach(t, 0);
        CHECK(u >= 0);
        /* Nothing more went out at detach. */
        CHECK(msend(u, "z", 1, SOON) == 0);
        CHECK(brecv(s[1], wire, 2, SOON) == 0 && memcmp(wire, "\1z", 2) == 0);
        CHECK(hclose(u) == 0);
        check_closed_peer(s[1]);
    }
    /* Over SUFFIX: the terminator is one line. */
    int s[2];
    ipc_connected(s);
    int x = suffix_attach(s[0], "\n", 1);
    CHECK(x >= 0);
    int t = term_attach(x, "END", 3);
    CHECK(t >= 0);
    CHECK(msend(t, "line", 4, SOON) == 0);
    CHECK(term_done(t, SOON) == 0);
    char buf[16];
    CHECK(brecv(s[1], buf, 9, SOON) == 0);
    CHECK(memcmp(buf, "line\nEND\n", 9) == 0);
    CHECK(hclose(t) == 0);
    check_closed_peer(s[1]);
}

/* The terminator is recognised by content and size only. */
static void test_recognition(void) {
    int t[2];
    term_pair(t, "STOP", 4);
    char buf[16];
    /* Near misses are data. */
    CHECK(msend(t[0], "STO", 3, SOON) == 0);
    CHECK(msend(t[0], "STOPS", 5, SOON) == 0);
    CHECK(msend(t[0], "stop", 4, SOON) == 0);
    CHECK(msend(t[0], "", 0, SOON) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 3);
    CHECK(memcmp(buf, "STO", 3) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 5);
    CHECK(memcmp(buf, "STOPS", 5) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "stop", 4) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 0);
    /* A data message equal to the terminator is the terminator. */
    CHECK(msend(t[0], "STOP", 4, SOON) == 0);
    CHECK_ERR(mrecv(t[1], buf, sizeof(buf), SOON), EPIPE);
    /* Receiving goes on after it, as in the original. */
    CHECK(msend(t[0], "more", 4, SOON) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 4);
    /* Dropping: the size of data, EPIPE for the terminator. */
    CHECK(msend(t[0], "dropped", 7, SOON) == 0);
    CHECK(msend(t[0], "STOP", 4, SOON) == 0);
    CHECK(mrecvl(t[1], NULL, NULL, SOON) == 7);
    CHECK_ERR(mrecvl(t[1], NULL, NULL, SOON), EPIPE);
    CHECK(hclose(t[0]) == 0 && hclose(t[1]) == 0);

    /* The empty terminator. */
    term_pair(t, NULL, 0);
    CHECK(msend(t[0], "x", 1, SOON) == 0);
    CHECK(msend(t[0], "", 0, SOON) == 0);
    CHECK(msend(t[0], "y", 1, SOON) == 0);
    CHECK(term_done(t[0], SOON) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 1 && buf[0] == 'x');
    CHECK_ERR(mrecv(t[1], buf, sizeof(buf), SOON), EPIPE);
    CHECK(mrecvl(t[1], NULL, NULL, SOON) == 1);
    CHECK_ERR(mrecvl(t[1], NULL, NULL, SOON), EPIPE);
    CHECK(hclose(t[0]) == 0 && hclose(t[1]) == 0);
}

/* ---- Lists around the diverted bytes ------------------------------------------------ */

static void test_lists(void) {
    int t[2];
    term_pair(t, "STOP", 4);
    /* A buffer smaller than the terminator still sees it. */
    char small[2];
    CHECK(msend(t[0], "STOP", 4, SOON) == 0);
    CHECK_ERR(mrecv(t[1], small, sizeof(small), SOON), EPIPE);
    CHECK(msend(t[0], "ab", 2, SOON) == 0);
    CHECK(mrecv(t[1], small, sizeof(small), SOON) == 2);
    CHECK(memcmp(small, "ab", 2) == 0);
    /* Data no longer than the terminator that does not fit: EMSGSIZE, and
       the stream stays in step. */
    CHECK(msend(t[0], "abc", 3, SOON) == 0);
    CHECK_ERR(mrecv(t[1], small, sizeof(small), SOON), EMSGSIZE);
    CHECK(msend(t[0], "ok", 2, SOON) == 0);
    CHECK(mrecv(t[1], small, sizeof(small), SOON) == 2);
    CHECK(memcmp(small, "ok", 2) == 0);
    CHECK(hclose(t[0]) == 0 && hclose(t[1]) == 0);

    /* An element cut at the terminator's length, NULL bases and empty
       elements in the diverted part, messages of every length around it. */
    term_pair(t, "STOP", 4);
    static const char *msgs[] = {"", "a", "abc", "abcd", "abcde",
        "abcdefghijkl"};
    for(size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        size_t len = strlen(msgs[i]);
        char a[3], b[20];
        memset(a, '.', sizeof(a));
        memset(b, '.', sizeof(b));
        struct iolist r3 = {b + 10, 5, NULL, 0};
        struct iolist r2 = {b, 6, &r3, 0};
        struct iolist r1 = {NULL, 1, &r2, 0};
        struct iolist rz = {a, 0, &r1, 0};
        struct iolist r0 = {a, 2, &rz, 0};
        CHECK(msend(t[0], msgs[i], len, SOON) == 0);
        CHECK(mrecvl(t[1], &r0, &r3, SOON) == (ssize_t)len);
        /* a: bytes 0-1; byte 2 dropped; b: bytes 3-8; b+10: bytes 9-13. */
        for(size_t k = 0; k < 2; k++)
            CHECK(a[k] == (k < len ? msgs[i][k] : '.'));
        for(size_t k = 0; k < 6; k++)
            CHECK(b[k] == (3 + k < len ? msgs[i][3 + k] : '.'));
        for(size_t k = 0; k < 5; k++)
            CHECK(b[10 + k] == (9 + k < len ? msgs[i][9 + k] : '.'));
        CHECK(a[2] == '.');
        CHECK(r0.iol_base == a && r0.iol_len == 2 && r0.iol_next == &rz);
        CHECK(rz.iol_base == a && rz.iol_len == 0 && rz.iol_next == &r1);
        CHECK(r1.iol_base == NULL && r1.iol_len == 1 && r1.iol_next == &r2);
        CHECK(r2.iol_base == b && r2.iol_len == 6 && r2.iol_next == &r3);
        CHECK(r3.iol_base == b + 10 && r3.iol_len == 5 && r3.iol_next == NULL);
        CHECK(r0.iol_rsvd == 0 && rz.iol_rsvd == 0 && r1.iol_rsvd == 0 &&
            r2.iol_rsvd == 0 && r3.iol_rsvd == 0);
        /* The terminator into the same list; b is untouched by it. */
        CHECK(msend(t[0], "STOP", 4, SOON) == 0);
        memset(b, '#', sizeof(b));
        CHECK_ERR(mrecvl(t[1], &r0, &r3, SOON), EPIPE);
        CHECK(b[0] == '#');
        CHECK(r2.iol_base == b && r2.iol_len == 6);
    }
    /* Too long for the list: the layer below says EMSGSIZE. */
    char c[6];
    struct iolist l1 = {c + 3, 3, NULL, 0};
    struct iolist l0 = {c, 3, &l1, 0};
    CHECK(msend(t[0], "1234567", 7, SOON) == 0);
    CHECK_ERR(mrecvl(t[1], &l0, &l1, SOON), EMSGSIZE);
    CHECK(l0.iol_base == c && l0.iol_len == 3 && l1.iol_base == c + 3 &&
        l1.iol_len == 3);
    CHECK(hclose(t[0]) == 0 && hclose(t[1]) == 0);
}

/* Malformed lists: refused before the socket below sees them, which
   therefore stays usable (TERM keeps no failure state). */
static void test_bad_lists(void) {
    int t[2];
    term_pair(t, "END", 3);
    char buf[8];
    struct iolist end = {buf, 1, NULL, 0};
    struct iolist l2 = {buf, 1, NULL, 0};
    struct iolist l1 = {buf, 1, &l2, 0};
    l2.iol_next = &l1;
    CHECK_ERR(msendl(t[0], &l1, &end, SOON), EINVAL);
    CHECK_ERR(mrecvl(t[1], &l1, &end, SOON), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0);
    struct iolist marked = {buf, 1, NULL, 1};
    CHECK_ERR(msendl(t[0], &marked, &marked, SOON), EINVAL);
    CHECK_ERR(mrecvl(t[1], &marked, &marked, SOON), EINVAL);
    CHECK_ERR(mrecvl(t[1], &end, NULL, SOON), EINVAL);
    CHECK(msend(t[0], "fine", 4, SOON) == 0);
    CHECK(mrecv(t[1], buf, sizeof(buf), SOON) == 4);
    CHECK(hclose(t[0]) == 0 && hclose(t[1]) == 0);
}

/* ---- Attach ------------------------------------------------------------------------------- */

coroutine static void attach_cancelled(int s, int mem,
      volatile struct result *r) {
    CHECK(msleep(-1) == -1 && errno == ECANCELED);
    struct term_storage storage;
    finish(r, mem ? term_attach_mem(s, "x", 1, &storage) :
        term_attach(s, "x", 1));
}

/* A PREFIX socket over a new IPC pair, with the raw peer in *peer. */
static int framed(int *peer) {
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 1, 0);
    CHECK(p >= 0);
    *peer = s[1];
    return p;
}

static void test_attach_errors(void) {
    char term[33];
    memset(term, 't', sizeof(term));
    struct term_storage mem;
    int peer;
    int p = framed(&peer);
    CHECK_ERR(term_attach(p, term, 33), EINVAL);
    CHECK_ERR(hclose(p), EBADF);
    check_closed_peer(peer);
    p = framed(&peer);
    CHECK_ERR(term_attach_mem(p, term, 33, &mem), EINVAL);
    check_closed_peer(peer);
    p = framed(&peer);
    CHECK_ERR(term_attach(p, NULL, 1), EINVAL);
    check_closed_peer(peer);
    p = framed(&peer);
    CHECK_ERR(term_attach_mem(p, "x", 1, NULL), EINVAL);
    check_closed_peer(peer);
    p = framed(&peer);
    CHECK_ERR(term_attach_mem(p, NULL, 0, NULL), EINVAL);
    check_closed_peer(peer);
    /* 32 bytes fit. */
    p = framed(&peer);
    int t = term_attach_mem(p, term, 32, &mem);
    CHECK(t >= 0);
    CHECK(term_done(t, SOON) == 0);
    uint8_t wire[33];
    CHECK(brecv(peer, wire, 33, SOON) == 0);
    CHECK(wire[0] == 32 && memcmp(wire + 1, term, 32) == 0);
    CHECK(hclose(t) == 0);
    check_closed_peer(peer);
    /* Arguments come first. */
    CHECK_ERR(term_attach(-1, term, 33), EINVAL);
    CHECK_ERR(term_attach(-1, "x", 1), EBADF);
    CHECK_ERR(term_attach_mem(424242, "x", 1, &mem), EBADF);
    /* Not message sockets. */
    int s[2];
    ipc_connected(s);
    CHECK_ERR(term_attach(s[0], "x", 1), EPROTO);
    CHECK_ERR(hclose(s[0]), EBADF);
    check_closed_peer(s[1]);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(term_attach(ch[0], NULL, 0), EPROTO);
    CHECK(hclose(ch[1]) == 0);
    for(int variant = 0; variant < 2; variant++) {
        p = framed(&peer);
        struct result r = {0};
        int cr = go(attach_cancelled(p, variant, &r));
        CHECK(cr >= 0);
        CHECK(yield() == 0);
        CHECK(hclose(cr) == 0);
        CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
        check_closed_peer(peer);
    }
}

static void test_mem(void) {
    static const char term[] = "abcdefghijklmnopqrstuvwxyz012345";
    for(size_t off = 0; off < 8; off++) {
        uint8_t raw[sizeof(struct term_storage) + 16];
        memset(raw, 0xa5, sizeof(raw));
        struct term_storage *mem = (struct term_storage *)(raw + off);
        int peer;
        int p = framed(&peer);
        int t = term_attach_mem(p, term, 32, mem);
        CHECK(t >= 0);
        int q = prefix_attach(peer, 1, 0);
        CHECK(q >= 0);
        CHECK(msend(q, "data", 4, SOON) == 0);
        CHECK(msend(q, term, 32, SOON) == 0);
        char buf[40];
        CHECK(mrecv(t, buf, sizeof(buf), SOON) == 4);
        CHECK_ERR(mrecv(t, buf, sizeof(buf), SOON), EPIPE);
        CHECK(term_done(t, SOON) == 0);
        CHECK(mrecv(q, buf, sizeof(buf), SOON) == 32);
        for(size_t i = 0; i < off; i++) CHECK(raw[i] == 0xa5);
        for(size_t i = off + sizeof(*mem); i < sizeof(raw); i++)
            CHECK(raw[i] == 0xa5);
        if(off % 2) {
            int u = term_detach(t, 0);
            CHECK(u >= 0);
            CHECK(hclose(u) == 0);
        } else {
            CHECK(hclose(t) == 0);
        }
        CHECK_ERR(mrecv(q, buf, sizeof(buf), SOON), EPIPE);
        CHECK(hclose(q) == 0);
    }
}

/* ---- term_done ----------------------------------------------------------------------------- */

static void test_done(void) {
    /* A failed send is not counted: the next term_done tries again (and
       meets PREFIX's own failure state). */
    int h;
    struct memstream *m = memstream_make(&h);
    int p = prefix_attach(h, 1, 0);
    CHECK(p >= 0);
    int t = term_attach(p, "BYE", 3);
    CHECK(t >= 0);
    m->send_errno = ETIMEDOUT;
    CHECK_ERR(term_done(t, 0), ETIMEDOUT);
    m->send_errno = 0;
    CHECK_ERR(term_done(t, 0), ECONNRESET);
    CHECK_ERR(term_detach(t, 0), ECONNRESET);
    CHECK(m->closed);
    CHECK_ERR(hclose(t), EBADF);
    memstream_free(m);

    /* EBUSY while a send waits; then the terminator goes out. */
    size_t len = 200;
    int s[2];
    ipc_connected(s);
    p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    t = term_attach(p, "BYE", 3);
    CHECK(t >= 0);
    uint8_t *big = malloc(len << 17);
    CHECK(big != NULL);
    memset(big, 'b', len << 17);
    struct result r = {0};
    int cr = go(do_msend(t, big, len << 17, SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(term_done(t, SOON), EBUSY);
    CHECK_ERR(msend(t, "x", 1, SOON), EBUSY);
    CHECK_ERR(term_detach(t, SOON), EBUSY);
    CHECK(brecv(s[1], NULL, 4 + (len << 17), SOON) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc == 0);
    CHECK(hclose(cr) == 0);
    CHECK(term_done(t, SOON) == 0);
    uint8_t wire[7];
    CHECK(brecv(s[1], wire, 7, SOON) == 0);
    CHECK(memcmp(wire, "\0\0\0\3BYE", 7) == 0);
    free(big);
    /* Not TERM sockets. */
    CHECK_ERR(term_done(-1, SOON), EBADF);
    CHECK_ERR(term_done(p + 1000, SOON), EBADF);
    CHECK_ERR(term_done(s[1], SOON), ENOTSUP);
    CHECK_ERR(term_detach(s[1], SOON), ENOTSUP);
    CHECK_ERR(term_detach(-1, SOON), EBADF);
    CHECK(hclose(t) == 0);
    CHECK(hclose(s[1]) == 0);
}

/* ---- term_detach ---------------------------------------------------------------------------- */

coroutine static void chatty_detach(int t, volatile struct result *r) {
    /* Data the peer will discard, then detach. */
    CHECK(msend(t, "one", 3, SOON) == 0);
    CHECK(msend(t, "two", 3, SOON) == 0);
    finish(r, term_detach(t, SOON));
}

static void test_detach(void) {
    /* Both ends at once, each with data in flight the other discards. */
    int t[2];
    term_pair(t, "FIN", 3);
    struct result r = {0};
    int cr = go(chatty_detach(t[1], &r));
    CHECK(cr >= 0);
    CHECK(msend(t[0], "three", 5, SOON) == 0);
    int p0 = term_detach(t[0], SOON);
    CHECK(p0 >= 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc >= 0);
    int p1 = (int)r.rc;
    CHECK(hclose(cr) == 0);
    char buf[16];
    CHECK(msend(p1, "next", 4, SOON) == 0);
    CHECK(mrecv(p0, buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "next", 4) == 0);
    CHECK(hclose(p0) == 0 && hclose(p1) == 0);

    /* What the peer sent after its terminator stays for the socket
       below. */
    term_pair(t, "FIN", 3);
    CHECK(msend(t[1], "drop me", 7, SOON) == 0);
    CHECK(term_done(t[1], SOON) == 0);
    CHECK(msend(t[1], "kept", 4, SOON) == 0);
    p0 = term_detach(t[0], SOON);
    CHECK(p0 >= 0);
    CHECK(mrecv(p0, buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "kept", 4) == 0);
    CHECK_ERR(mrecv(t[1], buf, sizeof(buf), SOON), EPIPE);
    /* Both terminators in: no wait. */
    p1 = term_detach(t[1], 0);
    CHECK(p1 >= 0);
    CHECK(hclose(p0) == 0 && hclose(p1) == 0);

    /* The socket below ending also ends the drain (after our terminator
       went out). */
    int peer;
    int p = framed(&peer);
    int tt = term_attach(p, "FIN", 3);
    CHECK(tt >= 0);
    CHECK(bsend(peer, "\2hi", 3, SOON) == 0);
    memset(&r, 0, sizeof(r));
    cr = go(do_detach(tt, SOON, &r));
    CHECK(cr >= 0);
    uint8_t fin[4];
    CHECK(brecv(peer, fin, 4, SOON) == 0 && memcmp(fin, "\3FIN", 4) == 0);
    CHECK(!r.done);
    CHECK(hclose(peer) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(hclose(cr) == 0);
    int u = (int)r.rc;
    CHECK(u >= 0);
    /* PREFIX saw the end: its own detach refuses. */
    CHECK_ERR(prefix_detach(u), ECONNRESET);

    /* A silent peer: ETIMEDOUT at the deadline, the stack closed. */
    p = framed(&peer);
    tt = term_attach(p, "FIN", 3);
    CHECK(tt >= 0);
    int64_t start = now();
    CHECK_ERR(term_detach(tt, start + 100), ETIMEDOUT);
    CHECK(now() - start >= 100);
    CHECK_ERR(hclose(tt), EBADF);
    /* Our terminator went out before the wait. */
    uint8_t wire[4];
    CHECK(brecv(peer, wire, 4, SOON) == 0 && memcmp(wire, "\3FIN", 4) == 0);
    check_closed_peer(peer);

    /* A failed send of the terminator: the stack closed. */
    int h;
    struct memstream *m = memstream_make(&h);
    p = prefix_attach(h, 1, 0);
    CHECK(p >= 0);
    tt = term_attach(p, "FIN", 3);
    CHECK(tt >= 0);
    m->send_errno = ECONNRESET;
    CHECK_ERR(term_detach(tt, SOON), ECONNRESET);
    CHECK(m->closed);
    memstream_free(m);

    /* Data before the peer's terminator is dropped whatever its size, an
       empty message included, and the drain stops right after it. */
    m = memstream_make(&h);
    p = prefix_attach(h, 1, 0);
    CHECK(p >= 0);
    tt = term_attach(p, "FIN", 3);
    CHECK(tt >= 0);
    memstream_feed(m, "\5hello\0\3FINrest", 15);
    u = term_detach(tt, SOON);
    CHECK(u >= 0);
    CHECK(memstream_left(m) == 4);
    CHECK(m->outlen == 4 && memcmp(m->out, "\3FIN", 4) == 0);
    int v = prefix_detach(u);
    CHECK(v >= 0);
    CHECK(brecv(v, buf, 4, 0) == 0 && memcmp(buf, "rest", 4) == 0);
    CHECK(hclose(v) == 0);
    memstream_free(m);
}

/* A peer that sends messages forever: ETIMEDOUT at the deadline although
   no receive ever waits, and the stack closed. */
static void test_detach_flood(void) {
    int s[2];
    tcp_connected(s);
    int p = prefix_attach(s[0], 1, 0);
    CHECK(p >= 0);
    int t = term_attach(p, "FIN", 3);
    CHECK(t >= 0);
    int q = prefix_attach(s[1], 1, 0);
    CHECK(q >= 0);
    struct result fr = {0};
    int cr = go(flood(q, &fr));
    CHECK(cr >= 0);
    int64_t start = now();
    CHECK_ERR(term_detach(t, start + 300), ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 300 && took < 3000);
    CHECK_ERR(hclose(t), EBADF);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(fr.rc == -1 && fr.err == ECONNRESET);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(q) == 0);
}

/* ---- Other stacks ------------------------------------------------------------------------------ */

/* What HTTP does: lines, an empty line ends the head, the body follows. */
static void test_http_shape(void) {
    int s[2];
    ipc_connected(s);
    int x = suffix_attach(s[0], "\r\n", 2);
    CHECK(x >= 0);
    int t = term_attach(x, NULL, 0);
    CHECK(t >= 0);
    const char *req = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    CHECK(bsend(s[1], req, strlen(req), SOON) == 0);
    char buf[32];
    CHECK(mrecv(t, buf, sizeof(buf), SOON) == 14);
    CHECK(memcmp(buf, "GET / HTTP/1.1", 14) == 0);
    CHECK(mrecv(t, buf, sizeof(buf), SOON) == 7);
    CHECK_ERR(mrecv(t, buf, sizeof(buf), SOON), EPIPE);
    CHECK(msend(t, "HTTP/1.1 200 OK", 15, SOON) == 0);
    /* Detach sends the empty line and, the peer's already in, waits for
       nothing. */
    int u = term_detach(t, 0);
    CHECK(u >= 0);
    int raw = suffix_detach(u, 0);
    CHECK(raw >= 0);
    CHECK(brecv(raw, buf, 4, SOON) == 0 && memcmp(buf, "BODY", 4) == 0);
    CHECK(brecv(s[1], buf, 19, SOON) == 0);
    CHECK(memcmp(buf, "HTTP/1.1 200 OK\r\n\r\n", 19) == 0);
    CHECK(hclose(raw) == 0);
    check_closed_peer(s[1]);
}

/* Over UDP: the empty terminator is an empty datagram. */
static void test_udp(void) {
    struct ipaddr a, b;
    CHECK(ipaddr_local(&a, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    CHECK(ipaddr_local(&b, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int ua = udp_open(&a, NULL);
    CHECK(ua >= 0);
    int ub = udp_open(&b, &a);
    CHECK(ub >= 0);
    CHECK(hclose(ua) == 0);
    ua = udp_open(&a, &b);
    CHECK(ua >= 0);
    struct term_storage mem;
    int ta = term_attach_mem(ua, NULL, 0, &mem);
    CHECK(ta >= 0);
    int tb = term_attach(ub, NULL, 0);
    CHECK(tb >= 0);
    char buf[16];
    CHECK(msend(ta, "dgram", 5, SOON) == 0);
    CHECK(mrecv(tb, buf, sizeof(buf), SOON) == 5);
    CHECK(term_done(ta, SOON) == 0);
    CHECK_ERR(mrecv(tb, buf, sizeof(buf), SOON), EPIPE);
    CHECK(msend(ta, "x", 1, SOON) == 0);
    CHECK(mrecvl(tb, NULL, NULL, SOON) == 1);
    CHECK(term_done(tb, SOON) == 0);
    CHECK(msend(tb, "late", 4, SOON) == 0);
    int u = term_detach(ta, SOON);
    CHECK(u >= 0);
    CHECK(mrecv(u, buf, sizeof(buf), SOON) == 4);
    CHECK(memcmp(buf, "late", 4) == 0);
    CHECK(hclose(u) == 0);
    CHECK(hclose(tb) == 0);
}

/* TERM over TERM: two terminators, one per level. */
static void test_term_over_term(void) {
    int t[2];
    term_pair(t, "INNER", 5);
    int o0 = term_attach(t[0], "OUTER", 5);
    int o1 = term_attach(t[1], "OUTER", 5);
    CHECK(o0 >= 0 && o1 >= 0);
    char buf[16];
    CHECK(msend(o0, "msg", 3, SOON) == 0);
    CHECK(term_done(o0, SOON) == 0);
    CHECK(mrecv(o1, buf, sizeof(buf), SOON) == 3);
    CHECK_ERR(mrecv(o1, buf, sizeof(buf), SOON), EPIPE);
    CHECK(term_done(o1, SOON) == 0);
    int i1 = term_detach(o1, 0);
    CHECK(i1 >= 0);
    int i0 = term_detach(o0, SOON);
    CHECK(i0 >= 0);
    CHECK(term_done(i0, SOON) == 0);
    CHECK_ERR(mrecv(i1, buf, sizeof(buf), SOON), EPIPE);
    CHECK(hclose(i0) == 0 && hclose(i1) == 0);
}

/* ---- Concurrency, cancellation, hclose ----------------------------------------------------------- */

static void test_concurrency(void) {
    int t[2];
    term_pair(t, "FIN", 3);
    char buf[8], other[8];
    struct result r = {0};
    int cr = go(do_mrecv(t[0], buf, sizeof(buf), SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(mrecv(t[0], other, sizeof(other), SOON), EBUSY);
    CHECK_ERR(mrecvl(t[0], NULL, NULL, SOON), EBUSY);
    CHECK_ERR(term_detach(t[0], SOON), EBUSY);
    /* Sending and term_done work meanwhile. */
    CHECK(msend(t[0], "out", 3, SOON) == 0);
    CHECK(term_done(t[0], SOON) == 0);
    CHECK(mrecv(t[1], other, sizeof(other), SOON) == 3);
    CHECK_ERR(mrecv(t[1], other, sizeof(other), SOON), EPIPE);
    CHECK(msend(t[1], "in", 2, SOON) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc == 2 && memcmp(buf, "in", 2) == 0);
    CHECK(hclose(cr) == 0);
    /* A detach in progress is a receive in progress. */
    memset(&r, 0, sizeof(r));
    cr = go(do_detach(t[0], SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(mrecv(t[0], other, sizeof(other), SOON), EBUSY);
    CHECK(term_done(t[1], SOON) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc >= 0);
    CHECK(hclose(cr) == 0);
    CHECK(hclose((int)r.rc) == 0);
    CHECK(hclose(t[1]) == 0);

    /* ECANCELED passes through from below. */
    term_pair(t, "FIN", 3);
    memset(&r, 0, sizeof(r));
    cr = go(do_mrecv(t[0], buf, sizeof(buf), -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    /* PREFIX below keeps that failure. */
    CHECK_ERR(mrecv(t[0], buf, sizeof(buf), SOON), ECONNRESET);
    CHECK_ERR(term_detach(t[0], SOON), ECONNRESET);
    CHECK_ERR(hclose(t[0]), EBADF);
    CHECK(hclose(t[1]) == 0);

    /* hclose under a blocked receive wakes it with EBADF. */
    term_pair(t, "FIN", 3);
    memset(&r, 0, sizeof(r));
    cr = go(do_mrecv(t[0], buf, sizeof(buf), SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(t[0]) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc == -1 && r.err == EBADF);
    CHECK(hclose(cr) == 0);
    CHECK_ERR(mrecv(t[1], buf, sizeof(buf), SOON), EPIPE);
    CHECK(hclose(t[1]) == 0);
}

static void test_interfaces(void) {
    int t[2];
    term_pair(t, NULL, 0);
    CHECK(hquery(t[0], msock_type) != NULL);
    errno = 0;
    CHECK(hquery(t[0], bsock_type) == NULL && errno == ENOTSUP);
    CHECK_ERR(prefix_detach(t[0]), ENOTSUP);
    CHECK_ERR(bsend(t[0], "x", 1, SOON), ENOTSUP);
    CHECK(hclose(t[0]) == 0 && hclose(t[1]) == 0);
}

#define RUN(test) \
    do { \
        int fds_before__ = count_fds(); \
        test(); \
        if(count_fds() != fds_before__) { \
            fprintf(stderr, "%s leaked %d descriptor(s)\n", #test, \
                count_fds() - fds_before__); \
            exit(1); \
        } \
    } while(0)

int main(void) {
    int s[2];
    ipc_connected(s);
    char c;
    CHECK_ERR(brecv(s[0], &c, 1, now() + 1), ETIMEDOUT);
    CHECK(hclose(s[0]) == 0 && hclose(s[1]) == 0);

    RUN(test_basic);
    RUN(test_wire);
    RUN(test_recognition);
    RUN(test_lists);
    RUN(test_bad_lists);
    RUN(test_attach_errors);
    RUN(test_mem);
    RUN(test_done);
    RUN(test_detach);
    RUN(test_detach_flood);
    RUN(test_http_shape);
    RUN(test_udp);
    RUN(test_term_over_term);
    RUN(test_concurrency);
    RUN(test_interfaces);
    return 0;
}
