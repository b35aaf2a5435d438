/*
 * tests/suffix.c: SUFFIX (sockets.md §12, with §1-§5 and §20-§21):
 * delimiter-terminated messages over IPC pairs, TCP over loopback and an
 * in-memory stream (tests/msgtest.h). Covers the wire format (payload then
 * delimiter, nothing else) and receive against a hand-written leftmost
 * search for delimiters of 1 to 32 bytes, self-overlapping ones included
 * ("aab", "abab", "aaaa", "abcab"), over pseudo-random streams, with the
 * stream consumed exactly through each delimiter and never beyond; the
 * number of reads from the stream below (as many bytes per read as cannot
 * run past a delimiter); empty messages; scattered lists filled whole
 * (NULL bases, empty elements, put back exactly); oversized messages
 * (consumed through the delimiter, EMSGSIZE, then ECONNRESET; a first
 * element of length 0); drops with mrecvl(NULL, NULL) and mrecv(NULL,
 * len); suffix_attach and suffix_attach_mem (EINVAL for a NULL or empty or
 * 33-byte delimiter and mem NULL, EPROTO, EBADF, ECANCELED, the socket
 * closed on every failure, storage at every offset 0-7 with nothing
 * written outside it); sticky failures in each direction (EPIPE in a
 * payload and in a partial delimiter, ETIMEDOUT, ECANCELED, malformed
 * lists, a full send buffer; the other direction unaffected); a peer that
 * floods without a delimiter (ETIMEDOUT at the deadline); deadline 0 with
 * the message there; EBUSY in each direction and for detach;
 * suffix_detach (the stream handed back exactly after the last delimiter,
 * EBADF and ENOTSUP without closing, ECONNRESET with the stack closed
 * after a failure, the old number dead); hclose under a blocked receive;
 * interfaces (suffix over suffix is EPROTO; prefix, detach, suffix on one
 * stream); many lines both ways at once over TCP; no descriptor leaked.
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

/* Sends 'x' until sending fails. */
coroutine static void flood(int s, volatile struct result *r) {
    static uint8_t xs[65536];
    memset(xs, 'x', sizeof(xs));
    int rc;
    while((rc = bsend(s, xs, sizeof(xs), -1)) == 0) {}
    finish(r, rc);
}

static void check_closed_peer(int peer) {
    char c;
    CHECK_ERR(brecv(peer, &c, 1, SOON), EPIPE);
    CHECK(hclose(peer) == 0);
}

/* ---- Wire format and basics -------------------------------------------------- */

static void test_basic(void) {
    int s[2];
    ipc_connected(s);
    int p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    CHECK(msend(p, "hello", 5, SOON) == 0);
    CHECK(msend(p, "", 0, SOON) == 0);
    CHECK(msend(p, "a\rb", 3, SOON) == 0);
    char buf[32];
    CHECK(brecv(s[1], buf, 14, SOON) == 0);
    CHECK(memcmp(buf, "hello\r\n\r\na\rb\r\n", 14) == 0);
    CHECK(bsend(s[1], "one\r\n\r\n\r\r\n\n\r\n", 13, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 3 && memcmp(buf, "one", 3) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 1 && buf[0] == '\r');
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 1 && buf[0] == '\n');
    /* The whole message there: deadline 0 succeeds. */
    CHECK(bsend(s[1], "now\r\n", 5, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), 0) == 3 && memcmp(buf, "now", 3) == 0);
    /* Both ends layered. */
    int q = suffix_attach(s[1], "\r\n", 2);
    CHECK(q >= 0);
    CHECK(msend(q, "ping", 4, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 4 && memcmp(buf, "ping", 4) == 0);
    CHECK(msend(p, "pong", 4, SOON) == 0);
    CHECK(mrecv(q, buf, sizeof(buf), SOON) == 4 && memcmp(buf, "pong", 4) == 0);
    CHECK(hclose(p) == 0);
    CHECK_ERR(mrecv(q, buf, sizeof(buf), SOON), EPIPE);
    CHECK(hclose(q) == 0);
}

/* The first occurrence of delim in data[from..len), or len if none. */
static size_t find(const uint8_t *data, size_t from, size_t len,
      const uint8_t *delim, size_t dlen) {
    for(size_t i = from; i + dlen <= len; i++)
        if(memcmp(data + i, delim, dlen) == 0) return i;
    return len;
}

/* A stream over a small alphabet parsed by SUFFIX and by find(). */
static void check_parse(const char *delim, size_t dlen, const char *alphabet,
      unsigned seed) {
    static uint8_t data[20000];
    size_t alen = strlen(alphabet);
    uint32_t x = seed;
    for(size_t i = 0; i < sizeof(data); i++) {
        x = x * 1103515245 + 12345;
        data[i] = (uint8_t)alphabet[(x >> 16) % alen];
        /* Now and then a whole delimiter. */
        if((x >> 8) % 97 == 0 && i + dlen < sizeof(data)) {
            memcpy(data + i, delim, dlen);
            i += dlen - 1;
        }
    }
    int h;
    struct memstream *m = memstream_make(&h);
    int p = suffix_attach(h, delim, dlen);
    CHECK(p >= 0);
    memstream_feed(m, data, sizeof(data));
    size_t at = 0;
    int messages = 0;
    static uint8_t buf[sizeof(data)];
    for(;;) {
        size_t end = find(data, at, sizeof(data), (const uint8_t *)delim,
            dlen);
        if(end == sizeof(data)) {
            CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), EPIPE);
            break;
        }
        CHECK(mrecv(p, buf, sizeof(buf), 0) == (ssize_t)(end - at));
        CHECK(memcmp(buf, data + at, end - at) == 0);
        at = end + dlen;
        /* Never a byte past the delimiter. */
        CHECK(memstream_left(m) == sizeof(data) - at);
        messages++;
    }
    CHECK(messages > 10);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), ECONNRESET);
    CHECK(hclose(p) == 0);
    memstream_free(m);
}

static void test_parse(void) {
    static const char long_delim[] = "0123456789abcdef0123456789abcdeX";
    for(unsigned seed = 1; seed <= 3; seed++) {
        check_parse("\r\n", 2, "ab\r\n", seed);
        check_parse("x", 1, "abx", seed);
        check_parse("aab", 3, "ab", seed);
        check_parse("abab", 4, "ab", seed);
        check_parse("aaaa", 4, "ab", seed);
        check_parse("abcab", 5, "abc", seed);
        check_parse("\0\0", 2, "\1\1\1", seed);
        check_parse(long_delim, 32, "0123456789abcdefX", seed);
    }
    /* Overlaps that a naive reader gets wrong: the message ends at the
       first complete delimiter, with the partial matches before it. */
    int h;
    struct memstream *m = memstream_make(&h);
    int p = suffix_attach(h, "abab", 4);
    CHECK(p >= 0);
    memstream_feed(m, "aababababxababab", 16);
    char buf[32];
    CHECK(mrecv(p, buf, sizeof(buf), 0) == 1 && buf[0] == 'a');
    CHECK(memstream_left(m) == 11);
    CHECK(mrecv(p, buf, sizeof(buf), 0) == 0);
    CHECK(memstream_left(m) == 7);
    CHECK(mrecv(p, buf, sizeof(buf), 0) == 1 && buf[0] == 'x');
    CHECK(memstream_left(m) == 2);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), EPIPE);
    CHECK(hclose(p) == 0);
    memstream_free(m);
}

/* How many reads a message takes: as many bytes at a time as cannot run
   past the delimiter. */
static void test_reads(void) {
    static const struct {
        const char *delim;
        size_t dlen;
        const char *msg;
        int reads;
    } cases[] = {
        /* 100 bytes + 2 read two at a time. */
        {"\r\n", 2, NULL, 51},
        {"x", 1, NULL, 101},
        {"abcd", 4, NULL, 26},
        /* After "a" only 3 more can be read safely, and so on. */
        {"abcd", 4, "zzza", 3},
        {"abab", 4, "ba", 2},
        {"\r\n", 2, "\r", 2},
    };
    char payload[100];
    memset(payload, 'z', sizeof(payload));
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int h;
        struct memstream *m = memstream_make(&h);
        int p = suffix_attach(h, cases[i].delim, cases[i].dlen);
        CHECK(p >= 0);
        const char *msg = cases[i].msg ? cases[i].msg : payload;
        size_t len = cases[i].msg ? strlen(msg) : sizeof(payload);
        memstream_feed(m, msg, len);
        memstream_feed(m, cases[i].delim, cases[i].dlen);
        memstream_feed(m, "more", 4);
        char buf[128];
        CHECK(mrecv(p, buf, sizeof(buf), 0) == (ssize_t)len);
        CHECK(memcmp(buf, msg, len) == 0);
        CHECK(m->recv_calls == cases[i].reads);
        CHECK(memstream_left(m) == 4);
        int u = suffix_detach(p, 0);
        CHECK(u >= 0);
        CHECK(brecv(u, buf, 4, 0) == 0 && memcmp(buf, "more", 4) == 0);
        CHECK(hclose(u) == 0);
        memstream_free(m);
    }
}

/* ---- Lists ---------------------------------------------------------------------- */

static void test_lists(void) {
    int s[2];
    ipc_connected(s);
    int p = suffix_attach(s[0], "|", 1);
    CHECK(p >= 0);
    int q = suffix_attach(s[1], "|", 1);
    CHECK(q >= 0);
    /* Sent from pieces, the list put back. */
    struct iolist s2 = {"ghij", 4, NULL, 0};
    struct iolist s1 = {NULL, 0, &s2, 0};
    struct iolist s0 = {"abcdef", 6, &s1, 0};
    CHECK(msendl(p, &s0, &s2, SOON) == 0);
    CHECK(s0.iol_next == &s1 && s1.iol_next == &s2 && s2.iol_next == NULL);
    CHECK(s2.iol_rsvd == 0);
    /* Every element is filled, the last one too. */
    char a[2], c[20];
    struct iolist r3 = {c + 10, 3, NULL, 0};
    struct iolist r2 = {c, 3, &r3, 0};
    struct iolist r1 = {NULL, 2, &r2, 0};
    struct iolist rz = {a, 0, &r1, 0};
    struct iolist r0 = {a, 2, &rz, 0};
    memset(c, '.', sizeof(c));
    CHECK(mrecvl(q, &r0, &r3, SOON) == 10);
    CHECK(memcmp(a, "ab", 2) == 0);
    CHECK(memcmp(c, "efg", 3) == 0 && c[3] == '.');
    CHECK(memcmp(c + 10, "hij", 3) == 0 && c[13] == '.');
    CHECK(r0.iol_base == a && r0.iol_len == 2 && r0.iol_next == &rz);
    CHECK(rz.iol_len == 0 && rz.iol_next == &r1);
    CHECK(r1.iol_base == NULL && r1.iol_len == 2 && r1.iol_next == &r2);
    CHECK(r2.iol_base == c && r2.iol_len == 3 && r2.iol_next == &r3);
    CHECK(r3.iol_base == c + 10 && r3.iol_len == 3 && r3.iol_next == NULL);
    CHECK(r0.iol_rsvd == 0 && rz.iol_rsvd == 0 && r1.iol_rsvd == 0 &&
        r2.iol_rsvd == 0 && r3.iol_rsvd == 0);
    /* A shorter message into the same list. */
    CHECK(msend(p, "xyz", 3, SOON) == 0);
    CHECK(mrecvl(q, &r0, &r3, SOON) == 3);
    CHECK(memcmp(a, "xy", 2) == 0);
    /* Drops: NULL, NULL returns the size; a NULL buffer drops into room of
       its length. */
    CHECK(msend(p, "dropped", 7, SOON) == 0);
    CHECK(msend(p, "", 0, SOON) == 0);
    CHECK(msend(p, "four", 4, SOON) == 0);
    CHECK(mrecvl(q, NULL, NULL, SOON) == 7);
    CHECK(mrecvl(q, NULL, NULL, SOON) == 0);
    CHECK(mrecv(q, NULL, 4, SOON) == 4);
    CHECK(msend(p, "end", 3, SOON) == 0);
    CHECK(mrecv(q, c, sizeof(c), SOON) == 3 && memcmp(c, "end", 3) == 0);
    CHECK(hclose(p) == 0 && hclose(q) == 0);
}

/* Too long: read through the delimiter, EMSGSIZE, the direction failed. */
static void test_oversize(void) {
    int h;
    struct memstream *m = memstream_make(&h);
    int p = suffix_attach(h, "\r\n", 2);
    CHECK(p >= 0);
    memstream_feed(m, "0123456789\r\nnext\r\n", 18);
    char buf[5];
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), EMSGSIZE);
    /* The buffer holds what fitted. */
    CHECK(memcmp(buf, "01234", 5) == 0);
    CHECK(memstream_left(m) == 6);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), ECONNRESET);
    CHECK(memstream_left(m) == 6);
    CHECK(msend(p, "ok", 2, 0) == 0);
    CHECK(m->outlen == 4 && memcmp(m->out, "ok\r\n", 4) == 0);
    CHECK_ERR(suffix_detach(p, -1), ECONNRESET);
    CHECK(m->closed);
    CHECK_ERR(hclose(p), EBADF);
    memstream_free(m);
    /* A list with a first element of length 0, a NULL buffer too small,
       and a message one byte too long for the list. */
    static const size_t lens[] = {0, 3, 4};
    for(size_t i = 0; i < 3; i++) {
        m = memstream_make(&h);
        p = suffix_attach(h, "\n", 1);
        CHECK(p >= 0);
        memstream_feed(m, "abcde\nz", 7);
        struct iolist b = {buf, lens[i], NULL, 0};
        struct iolist a = {i == 1 ? NULL : buf, i == 2 ? 0 : 1, &b, 0};
        CHECK_ERR(mrecvl(p, &a, &b, 0), EMSGSIZE);
        CHECK(a.iol_next == &b && b.iol_next == NULL);
        CHECK(memstream_left(m) == 1);
        CHECK_ERR(mrecvl(p, &a, &b, 0), ECONNRESET);
        CHECK(hclose(p) == 0);
        memstream_free(m);
    }
    /* A message exactly the size of the list fits. */
    m = memstream_make(&h);
    p = suffix_attach(h, "\n", 1);
    CHECK(p >= 0);
    memstream_feed(m, "abcde\n", 6);
    CHECK(mrecv(p, buf, 5, 0) == 5 && memcmp(buf, "abcde", 5) == 0);
    CHECK(hclose(p) == 0);
    memstream_free(m);
}

/* ---- Attach ------------------------------------------------------------------------ */

coroutine static void attach_cancelled(int s, int mem,
      volatile struct result *r) {
    CHECK(msleep(-1) == -1 && errno == ECANCELED);
    struct suffix_storage storage;
    finish(r, mem ? suffix_attach_mem(s, "\n", 1, &storage) :
        suffix_attach(s, "\n", 1));
}

static void test_attach_errors(void) {
    int s[2];
    struct suffix_storage mem;
    char delim[33];
    memset(delim, '-', sizeof(delim));
    ipc_connected(s);
    CHECK_ERR(suffix_attach(s[0], NULL, 2), EINVAL);
    CHECK_ERR(hclose(s[0]), EBADF);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(suffix_attach(s[0], "\r\n", 0), EINVAL);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(suffix_attach(s[0], delim, 33), EINVAL);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(suffix_attach_mem(s[0], delim, 33, &mem), EINVAL);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(suffix_attach_mem(s[0], "\n", 1, NULL), EINVAL);
    check_closed_peer(s[1]);
    /* 32 bytes is the longest. */
    ipc_connected(s);
    int p = suffix_attach_mem(s[0], delim, 32, &mem);
    CHECK(p >= 0);
    CHECK(msend(p, "x", 1, SOON) == 0);
    char buf[33];
    CHECK(brecv(s[1], buf, 33, SOON) == 0);
    CHECK(buf[0] == 'x' && memcmp(buf + 1, delim, 32) == 0);
    CHECK(hclose(p) == 0);
    check_closed_peer(s[1]);
    /* Arguments come before the handle. */
    CHECK_ERR(suffix_attach(-1, NULL, 1), EINVAL);
    CHECK_ERR(suffix_attach(-1, "\n", 1), EBADF);
    CHECK_ERR(suffix_attach_mem(98765, "\n", 1, &mem), EBADF);
    /* Not bytestreams. */
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(suffix_attach(ch[0], "\n", 1), EPROTO);
    CHECK_ERR(hclose(ch[0]), EBADF);
    CHECK(hclose(ch[1]) == 0);
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int before = count_fds();
    int udp = udp_open(&addr, NULL);
    CHECK(udp >= 0);
    CHECK_ERR(suffix_attach(udp, "\n", 1), EPROTO);
    CHECK(count_fds() == before);
    ipc_connected(s);
    p = suffix_attach(s[0], "\n", 1);
    CHECK(p >= 0);
    CHECK_ERR(suffix_attach(p, "\n", 1), EPROTO);
    CHECK_ERR(hclose(p), EBADF);
    check_closed_peer(s[1]);
    for(int variant = 0; variant < 2; variant++) {
        ipc_connected(s);
        struct result r = {0};
        int cr = go(attach_cancelled(s[0], variant, &r));
        CHECK(cr >= 0);
        CHECK(yield() == 0);
        CHECK(hclose(cr) == 0);
        CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
        check_closed_peer(s[1]);
    }
}

static void test_mem(void) {
    for(size_t off = 0; off < 8; off++) {
        uint8_t raw[sizeof(struct suffix_storage) + 16];
        memset(raw, 0xa5, sizeof(raw));
        struct suffix_storage *mem = (struct suffix_storage *)(raw + off);
        int s[2];
        ipc_connected(s);
        /* The longest delimiter, so that every byte of state is used. */
        const char *delim = "<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<>";
        int p = suffix_attach_mem(s[0], delim, 32, mem);
        CHECK(p >= 0);
        CHECK(msend(p, "hi", 2, SOON) == 0);
        char buf[64];
        CHECK(brecv(s[1], buf, 34, SOON) == 0);
        CHECK(memcmp(buf, "hi", 2) == 0 && memcmp(buf + 2, delim, 32) == 0);
        CHECK(bsend(s[1], "<<<", 3, SOON) == 0);
        CHECK(bsend(s[1], delim, 32, SOON) == 0);
        CHECK(mrecv(p, buf, sizeof(buf), SOON) == 3);
        CHECK(memcmp(buf, "<<<", 3) == 0);
        for(size_t i = 0; i < off; i++) CHECK(raw[i] == 0xa5);
        for(size_t i = off + sizeof(*mem); i < sizeof(raw); i++)
            CHECK(raw[i] == 0xa5);
        if(off % 2) {
            int u = suffix_detach(p, -1);
            CHECK(u >= 0);
            CHECK(hclose(u) == 0);
        } else {
            CHECK(hclose(p) == 0);
        }
        check_closed_peer(s[1]);
    }
}

/* ---- Failures ----------------------------------------------------------------------- */

static void test_recv_failures(void) {
    int s[2];
    char buf[16];
    /* The end of the stream in a payload and in a partial delimiter. */
    static const char *cut[] = {"abc", "abc\r", "", "abc\r\ndef"};
    for(size_t i = 0; i < 4; i++) {
        ipc_connected(s);
        int p = suffix_attach(s[0], "\r\n", 2);
        CHECK(p >= 0);
        CHECK(bsend(s[1], cut[i], strlen(cut[i]), SOON) == 0);
        CHECK(hclose(s[1]) == 0);
        if(i == 3)
            CHECK(mrecv(p, buf, sizeof(buf), SOON) == 3);
        CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), EPIPE);
        CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
        CHECK_ERR(mrecvl(p, NULL, NULL, SOON), ECONNRESET);
        /* A receive that saw the end counts as a failure for detach. */
        CHECK_ERR(suffix_detach(p, -1), ECONNRESET);
        CHECK_ERR(hclose(p), EBADF);
    }
    /* ETIMEDOUT halfway through; sending is not affected. */
    ipc_connected(s);
    int p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    CHECK(bsend(s[1], "half", 4, SOON) == 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), now() + 20), ETIMEDOUT);
    CHECK(bsend(s[1], "\r\n", 2, SOON) == 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(msend(p, "ok", 2, SOON) == 0);
    CHECK(brecv(s[1], buf, 4, SOON) == 0 && memcmp(buf, "ok\r\n", 4) == 0);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    /* ECANCELED. */
    ipc_connected(s);
    p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    struct result r = {0};
    int cr = go(do_mrecv(p, buf, sizeof(buf), -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    /* Malformed lists. */
    ipc_connected(s);
    p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    struct iolist end = {buf, 1, NULL, 0};
    struct iolist not_last = {buf, 1, &end, 0};
    CHECK_ERR(mrecvl(p, &end, NULL, SOON), EINVAL);
    CHECK_ERR(mrecvl(p, &not_last, &not_last, SOON), EINVAL);
    CHECK_ERR(msendl(p, NULL, &end, SOON), EINVAL);
    CHECK(bsend(s[1], "z\r\n", 3, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 1 && buf[0] == 'z');
    struct iolist l2 = {buf, 1, NULL, 0};
    struct iolist l1 = {buf, 1, &l2, 0};
    l2.iol_next = &l1;
    CHECK_ERR(mrecvl(p, &l1, &end, SOON), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK_ERR(msendl(p, &l1, &end, SOON), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0 && end.iol_next == NULL);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(suffix_detach(p, -1), ECONNRESET);
    check_closed_peer(s[1]);
}

static void test_send_failures(void) {
    size_t len = 16 << 20;
    uint8_t *big = malloc(len);
    CHECK(big != NULL);
    memset(big, 'b', len);
    char buf[8];
    int s[2];
    ipc_connected(s);
    int p = suffix_attach(s[0], "\n", 1);
    CHECK(p >= 0);
    CHECK_ERR(msend(p, big, len, now() + 50), ETIMEDOUT);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK(bsend(s[1], "hi\n", 3, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 2);
    CHECK_ERR(suffix_detach(p, -1), ECONNRESET);
    CHECK(hclose(s[1]) == 0);
    /* ECANCELED while waiting; EBUSY meanwhile. */
    ipc_connected(s);
    p = suffix_attach(s[0], "\n", 1);
    CHECK(p >= 0);
    struct result r = {0};
    int cr = go(do_msend(p, big, len, -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(msend(p, "x", 1, SOON), EBUSY);
    CHECK_ERR(suffix_detach(p, -1), EBUSY);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    /* The peer gone. */
    ipc_connected(s);
    p = suffix_attach(s[0], "\n", 1);
    CHECK(p >= 0);
    CHECK(hclose(s[1]) == 0);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK(hclose(p) == 0);
    free(big);
}

/* A peer that never sends the delimiter, as fast as we read. */
static void test_flood(void) {
    int s[2];
    ipc_connected(s);
    int p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    struct result fr = {0};
    int cr = go(flood(s[1], &fr));
    CHECK(cr >= 0);
    int64_t start = now();
    CHECK_ERR(mrecvl(p, NULL, NULL, start + 300), ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 300 && took < 3000);
    char buf[4];
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK_ERR(suffix_detach(p, -1), ECONNRESET);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(fr.rc == -1 && fr.err == ECONNRESET);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(s[1]) == 0);
}

static void test_concurrency(void) {
    int s[2];
    ipc_connected(s);
    int p = suffix_attach(s[0], "\n", 1);
    CHECK(p >= 0);
    int q = suffix_attach(s[1], "\n", 1);
    CHECK(q >= 0);
    char buf[8], other[8];
    struct result r = {0};
    int cr = go(do_mrecv(p, buf, sizeof(buf), SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(mrecv(p, other, sizeof(other), SOON), EBUSY);
    CHECK_ERR(suffix_detach(p, -1), EBUSY);
    CHECK(msend(p, "out", 3, SOON) == 0);
    CHECK(mrecv(q, other, sizeof(other), SOON) == 3);
    CHECK(msend(q, "in", 2, SOON) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc == 2 && memcmp(buf, "in", 2) == 0);
    CHECK(hclose(cr) == 0);
    memset(&r, 0, sizeof(r));
    cr = go(do_mrecv(p, buf, sizeof(buf), SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(hclose(p) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc == -1 && r.err == EBADF);
    CHECK(hclose(cr) == 0);
    CHECK_ERR(mrecv(q, buf, sizeof(buf), SOON), EPIPE);
    CHECK(hclose(q) == 0);
}

/* ---- Detach ---------------------------------------------------------------------------- */

static void test_detach(void) {
    int s[2];
    char buf[32];
    ipc_connected(s);
    int p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    CHECK(bsend(s[1], "one\r\ntwo\r\nrest", 14, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 3);
    /* The deadline is not used. */
    int u = suffix_detach(p, 0);
    CHECK(u >= 0);
    CHECK(brecv(u, buf, 9, SOON) == 0 && memcmp(buf, "two\r\nrest", 9) == 0);
    CHECK_ERR(msend(p, "x", 1, SOON), EBADF);
    CHECK_ERR(suffix_detach(p, -1), EBADF);
    CHECK_ERR(suffix_detach(u, -1), ENOTSUP);
    CHECK_ERR(suffix_detach(-1, -1), EBADF);
    /* A PREFIX socket is not a SUFFIX socket. */
    int q = prefix_attach(s[1], 1, 0);
    CHECK(q >= 0);
    CHECK_ERR(suffix_detach(q, -1), ENOTSUP);
    CHECK(msend(q, "framed", 6, SOON) == 0);
    CHECK(brecv(u, buf, 7, SOON) == 0 && buf[0] == 6);
    /* PREFIX, then SUFFIX, on one stream. */
    int v = prefix_detach(q);
    CHECK(v >= 0);
    q = suffix_attach(v, "\n", 1);
    CHECK(q >= 0);
    p = suffix_attach(u, "\n", 1);
    CHECK(p >= 0);
    CHECK(msend(q, "line", 4, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 4 && memcmp(buf, "line", 4) == 0);
    u = suffix_detach(p, -1);
    CHECK(u >= 0);
    v = suffix_detach(q, -1);
    CHECK(v >= 0);
    CHECK(hclose(u) == 0);
    check_closed_peer(v);
}

/* ---- Many lines both ways over TCP ---------------------------------------------------------- */

#define ROUNDS 500

static size_t line_len(int i) {
    return (size_t)(i * 37 % 3000);
}

static void make_line(char *buf, int i) {
    size_t len = line_len(i);
    for(size_t k = 0; k < len; k++)
        /* Carriage returns and newlines, never the pair. */
        buf[k] = "abc\r\rd\n"[(k + (size_t)i) % 7];
    if(len && buf[len - 1] == '\r') buf[len - 1] = 'e';
}

coroutine static void sender(int p, volatile struct result *r) {
    char *buf = malloc(4000);
    CHECK(buf != NULL);
    for(int i = 0; i < ROUNDS; i++) {
        make_line(buf, i);
        CHECK(msend(p, buf, line_len(i), SOON) == 0);
    }
    free(buf);
    finish(r, 0);
}

static void receive_all(int p) {
    char *buf = malloc(4000);
    char *expect = malloc(4000);
    CHECK(buf && expect);
    for(int i = 0; i < ROUNDS; i++) {
        ssize_t n = mrecv(p, buf, 4000, SOON);
        CHECK(n == (ssize_t)line_len(i));
        make_line(expect, i);
        CHECK(memcmp(buf, expect, (size_t)n) == 0);
    }
    free(buf);
    free(expect);
}

static void test_tcp(void) {
    int s[2];
    tcp_connected(s);
    int p = suffix_attach(s[0], "\r\n", 2);
    CHECK(p >= 0);
    struct suffix_storage mem;
    int q = suffix_attach_mem(s[1], "\r\n", 2, &mem);
    CHECK(q >= 0);
    struct result r1 = {0}, r2 = {0};
    int c1 = go(sender(p, &r1));
    int c2 = go(sender(q, &r2));
    CHECK(c1 >= 0 && c2 >= 0);
    receive_all(q);
    receive_all(p);
    CHECK(bundle_wait(c1, SOON) == 0 && bundle_wait(c2, SOON) == 0);
    CHECK(r1.rc == 0 && r2.rc == 0);
    CHECK(hclose(c1) == 0 && hclose(c2) == 0);
    int u = suffix_detach(p, -1);
    int v = suffix_detach(q, -1);
    CHECK(u >= 0 && v >= 0);
    CHECK(tcp_done(u, SOON) == 0);
    char c;
    CHECK_ERR(brecv(v, &c, 1, SOON), EPIPE);
    CHECK(tcp_close(v, SOON) == 0);
    CHECK(tcp_close(u, SOON) == 0);
}

static void test_interfaces(void) {
    int s[2];
    ipc_connected(s);
    int p = suffix_attach(s[0], "\n", 1);
    CHECK(p >= 0);
    CHECK(hquery(p, msock_type) != NULL);
    errno = 0;
    CHECK(hquery(p, bsock_type) == NULL && errno == ENOTSUP);
    char c;
    CHECK_ERR(bsend(p, "x", 1, SOON), ENOTSUP);
    CHECK_ERR(brecv(p, &c, 1, SOON), ENOTSUP);
    CHECK_ERR(prefix_detach(p), ENOTSUP);
    CHECK(hclose(p) == 0);
    check_closed_peer(s[1]);
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
    RUN(test_parse);
    RUN(test_reads);
    RUN(test_lists);
    RUN(test_oversize);
    RUN(test_attach_errors);
    RUN(test_mem);
    RUN(test_recv_failures);
    RUN(test_send_failures);
    RUN(test_flood);
    RUN(test_concurrency);
    RUN(test_detach);
    RUN(test_tcp);
    RUN(test_interfaces);
    return 0;
}
