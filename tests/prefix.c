/*
 * tests/prefix.c: PREFIX (sockets.md §11, with §1-§5 and §20-§21): message
 * sockets framed by a length header over IPC pairs, TCP over loopback and
 * an in-memory stream (tests/msgtest.h). Covers the exact wire format for
 * header lengths 1, 2, 3, 4, 8 and longer ones (9, 12, 70, 200, whose
 * leading bytes are zero) in both byte orders, with a raw bytestream on the
 * other end; flag bits other than bit 0 ignored; zero-length messages;
 * EMSGSIZE before a byte is written when a length does not fit the header
 * (not sticky); prefix_attach and prefix_attach_mem (EINVAL for hdrlen 0,
 * an absurd hdrlen and mem NULL, EPROTO for sockets that are not
 * bytestreams, EBADF, ECANCELED in a cancelled coroutine, the socket
 * closed on every failure, storage at every offset 0-7 with nothing
 * written outside it); receive: into scattered lists with NULL bases and
 * empty elements (the list put back exactly), drops with mrecvl(NULL,
 * NULL) returning the size, EMSGSIZE with the payload left unread, hostile
 * peers (a header cut short, a payload cut short, a huge length, a length
 * beyond 64 bits or SSIZE_MAX, garbage, an endless message being dropped
 * that ends with ETIMEDOUT at the deadline); sticky failures in each
 * direction (EPIPE, ETIMEDOUT, ECANCELED, EMSGSIZE, a malformed list then
 * ECONNRESET; the other direction unaffected; front-end EINVAL changes
 * nothing); EBUSY in each direction and for detach; prefix_detach (the
 * stream handed back exactly after the last message, EBADF and ENOTSUP
 * without closing anything, ECONNRESET with the stack closed after a
 * failure, the old number dead); hclose under a blocked call; interfaces
 * (a message socket, not a bytestream; prefix over prefix is EPROTO;
 * prefix, detach, prefix again with another header on one stream); many
 * messages of mixed sizes both ways at once over TCP; no descriptor leaked.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "msgtest.h"

/* The header of a message of len bytes, written out independently of the
   library: the low-order 8 bytes carry the length, the rest are zero. */
static void header(uint8_t *out, size_t hdrlen, int little_endian,
      uint64_t len) {
    memset(out, 0, hdrlen);
    for(size_t i = 0; i < hdrlen && i < 8; i++) {
        uint8_t b = (uint8_t)(len >> (8 * i));
        if(little_endian) out[i] = b;
        else out[hdrlen - 1 - i] = b;
    }
}

static uint8_t pattern(size_t i, unsigned seed) {
    return (uint8_t)(i * 7 + seed * 13 + (i >> 8));
}

static void fill(uint8_t *buf, size_t len, unsigned seed) {
    for(size_t i = 0; i < len; i++) buf[i] = pattern(i, seed);
}

static int is_pattern(const uint8_t *buf, size_t len, unsigned seed) {
    for(size_t i = 0; i < len; i++)
        if(buf[i] != pattern(i, seed)) return 0;
    return 1;
}

coroutine static void do_mrecv(int s, void *buf, size_t len, int64_t deadline,
      volatile struct result *r) {
    finish(r, mrecv(s, buf, len, deadline));
}

coroutine static void do_msend(int s, const void *buf, size_t len,
      int64_t deadline, volatile struct result *r) {
    finish(r, msend(s, buf, len, deadline));
}

coroutine static void do_brecv(int s, void *buf, size_t len, int64_t deadline,
      volatile struct result *r) {
    finish(r, brecv(s, buf, len, deadline));
}

/* Sends zeros until sending fails. */
coroutine static void flood(int s, volatile struct result *r) {
    static uint8_t zeros[65536];
    int rc;
    while((rc = bsend(s, zeros, sizeof(zeros), -1)) == 0) {}
    finish(r, rc);
}

/* ---- Wire format ------------------------------------------------------------ */

/* One message each way between a PREFIX end and a raw end. */
static void check_wire(size_t hdrlen, int flags, size_t len) {
    int little = flags & PREFIX_LITTLE_ENDIAN;
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], hdrlen, flags);
    CHECK(p >= 0);
    uint8_t *msg = malloc(len + 1);
    uint8_t *wire = malloc(hdrlen + len + 1);
    uint8_t *expect = malloc(hdrlen + len + 1);
    CHECK(msg && wire && expect);
    fill(msg, len, (unsigned)hdrlen);
    CHECK(msend(p, msg, len, SOON) == 0);
    header(expect, hdrlen, little, len);
    memcpy(expect + hdrlen, msg, len);
    CHECK(brecv(s[1], wire, hdrlen + len, SOON) == 0);
    CHECK(memcmp(wire, expect, hdrlen + len) == 0);
    /* The other way: the raw end writes what we expect PREFIX to read. */
    expect[hdrlen] ^= len ? 0x5a : 0;
    CHECK(bsend(s[1], expect, hdrlen + len, SOON) == 0);
    memset(msg, 0, len + 1);
    CHECK(mrecv(p, msg, len + 1, SOON) == (ssize_t)len);
    CHECK(memcmp(msg, expect + hdrlen, len) == 0);
    /* Nothing but the message went either way. */
    int u = prefix_detach(p);
    CHECK(u >= 0);
    CHECK(bsend(u, "end", 3, SOON) == 0);
    char end[3];
    CHECK(brecv(s[1], end, 3, SOON) == 0 && memcmp(end, "end", 3) == 0);
    CHECK(hclose(u) == 0 && hclose(s[1]) == 0);
    free(msg);
    free(wire);
    free(expect);
}

static void test_wire(void) {
    static const size_t hdrlens[] = {1, 2, 3, 4, 8, 9, 12, 70, 200};
    for(size_t i = 0; i < sizeof(hdrlens) / sizeof(hdrlens[0]); i++) {
        size_t h = hdrlens[i];
        for(int flags = 0; flags <= 1; flags++) {
            check_wire(h, flags, 0);
            check_wire(h, flags, 1);
            check_wire(h, flags, 255);
            if(h >= 2) check_wire(h, flags, 258);
            if(h >= 3) check_wire(h, flags, 70000);
        }
    }
    /* Only bit 0 of flags counts. */
    check_wire(2, 0x100 | PREFIX_LITTLE_ENDIAN, 300);
    check_wire(2, 0x6, 300);
    check_wire(2, -2, 300);
    /* The header bytes exactly, for two lengths that tell the orders
       apart. */
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 4, PREFIX_BIG_ENDIAN);
    CHECK(p >= 0);
    uint8_t buf[0x0102 + 4];
    memset(buf, 'x', sizeof(buf));
    CHECK(msend(p, buf, 0x0102, SOON) == 0);
    CHECK(brecv(s[1], buf, sizeof(buf), SOON) == 0);
    CHECK(buf[0] == 0 && buf[1] == 0 && buf[2] == 1 && buf[3] == 2);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    ipc_connected(s);
    p = prefix_attach(s[0], 3, PREFIX_LITTLE_ENDIAN);
    CHECK(p >= 0);
    CHECK(msend(p, buf, 0x0102, SOON) == 0);
    CHECK(brecv(s[1], buf, sizeof(buf) - 1, SOON) == 0);
    CHECK(buf[0] == 2 && buf[1] == 1 && buf[2] == 0);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
}

/* How long headers travel: in 64-byte pieces, the last one together with
   the payload, so up to 64 bytes a message is one call below. */
static void test_long_headers(void) {
    static const size_t hdrlens[] = {8, 64, 65, 200};
    static const int sends[] = {1, 1, 2, 4};
    static const int recvs[] = {2, 2, 3, 5};
    for(int i = 0; i < 4; i++) {
        int h;
        struct memstream *m = memstream_make(&h);
        int p = prefix_attach(h, hdrlens[i], 0);
        CHECK(p >= 0);
        CHECK(msend(p, "abc", 3, SOON) == 0);
        CHECK(m->send_calls == sends[i]);
        CHECK(m->outlen == hdrlens[i] + 3);
        memstream_feed(m, m->out, m->outlen);
        char buf[8];
        CHECK(mrecv(p, buf, sizeof(buf), SOON) == 3);
        CHECK(memcmp(buf, "abc", 3) == 0);
        CHECK(m->recv_calls == recvs[i]);
        CHECK(memstream_left(m) == 0);
        CHECK(hclose(p) == 0);
        memstream_free(m);
    }
}

/* ---- Sizes that do not fit ---------------------------------------------------- */

static void test_send_emsgsize(void) {
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 1, 0);
    CHECK(p >= 0);
    uint8_t buf[65537];
    memset(buf, 'a', sizeof(buf));
    CHECK_ERR(msend(p, buf, 256, SOON), EMSGSIZE);
    /* Not sticky: nothing was written, the stream is in step. */
    CHECK(msend(p, buf, 255, SOON) == 0);
    CHECK_ERR(msend(p, buf, 1000, SOON), EMSGSIZE);
    CHECK(msend(p, buf, 0, SOON) == 0);
    uint8_t got[256 + 1];
    CHECK(brecv(s[1], got, 256 + 1, SOON) == 0);
    CHECK(got[0] == 255 && got[256] == 0);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);

    ipc_connected(s);
    p = prefix_attach(s[0], 2, PREFIX_LITTLE_ENDIAN);
    CHECK(p >= 0);
    CHECK_ERR(msend(p, buf, 65536, SOON), EMSGSIZE);
    /* A scattered list counts in total; NULL bases are never touched
       because nothing is sent. */
    struct iolist b = {NULL, 65000, NULL, 0};
    struct iolist a = {buf, 1000, &b, 0};
    CHECK_ERR(msendl(p, &a, &b, SOON), EMSGSIZE);
    CHECK(a.iol_next == &b && b.iol_next == NULL && a.iol_rsvd == 0);
    CHECK(msend(p, buf, 65535, SOON) == 0);
    CHECK(brecv(s[1], got, 2, SOON) == 0 && got[0] == 0xff && got[1] == 0xff);
    CHECK(brecv(s[1], NULL, 65535, SOON) == 0);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);

    /* 3 and 4 bytes: lengths that cannot exist as buffers are refused from
       the total alone. */
    int h;
    struct memstream *m = memstream_make(&h);
    p = prefix_attach(h, 3, 0);
    CHECK(p >= 0);
    struct iolist big = {NULL, (size_t)1 << 24, NULL, 0};
    CHECK_ERR(msendl(p, &big, &big, SOON), EMSGSIZE);
    CHECK(m->send_calls == 0 && m->outlen == 0);
    CHECK(hclose(p) == 0);
    memstream_free(m);
#if SIZE_MAX > 0xffffffff
    m = memstream_make(&h);
    p = prefix_attach(h, 4, 0);
    CHECK(p >= 0);
    big.iol_len = (size_t)1 << 32;
    CHECK_ERR(msendl(p, &big, &big, SOON), EMSGSIZE);
    CHECK(m->send_calls == 0);
    CHECK(msend(p, "ok", 2, SOON) == 0);
    CHECK(m->outlen == 6 && memcmp(m->out, "\0\0\0\2ok", 6) == 0);
    CHECK(hclose(p) == 0);
    memstream_free(m);
#endif
}

/* ---- Attach -------------------------------------------------------------------- */

/* The peer of a closed IPC end sees the end of the stream. */
static void check_closed_peer(int peer) {
    char c;
    CHECK_ERR(brecv(peer, &c, 1, SOON), EPIPE);
    CHECK(hclose(peer) == 0);
}

coroutine static void attach_cancelled(int s, int mem,
      volatile struct result *r) {
    CHECK(msleep(-1) == -1 && errno == ECANCELED);
    struct prefix_storage storage;
    finish(r, mem ? prefix_attach_mem(s, 4, 0, &storage) :
        prefix_attach(s, 4, 0));
}

static void test_attach_errors(void) {
    int s[2];
    struct prefix_storage mem;
    /* Argument errors close the socket all the same. */
    ipc_connected(s);
    CHECK_ERR(prefix_attach(s[0], 0, 0), EINVAL);
    CHECK_ERR(hclose(s[0]), EBADF);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(prefix_attach_mem(s[0], 0, 0, &mem), EINVAL);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(prefix_attach_mem(s[0], 4, 0, NULL), EINVAL);
    check_closed_peer(s[1]);
#if SIZE_MAX > 0xffffffff
    ipc_connected(s);
    CHECK_ERR(prefix_attach(s[0], SIZE_MAX, 0), EINVAL);
    check_closed_peer(s[1]);
    ipc_connected(s);
    CHECK_ERR(prefix_attach(s[0], (size_t)1 << 56, 0), EINVAL);
    check_closed_peer(s[1]);
#endif
    /* Arguments are looked at before the handle. */
    CHECK_ERR(prefix_attach(-1, 0, 0), EINVAL);
    CHECK_ERR(prefix_attach_mem(-1, 4, 0, NULL), EINVAL);
    CHECK_ERR(prefix_attach(-1, 4, 0), EBADF);
    CHECK_ERR(prefix_attach(123456, 4, 0), EBADF);
    CHECK_ERR(prefix_attach_mem(-1, 4, 0, &mem), EBADF);

    /* Not bytestreams: EPROTO, and they are closed. */
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(prefix_attach(ch[0], 4, 0), EPROTO);
    CHECK_ERR(hclose(ch[0]), EBADF);
    CHECK(hclose(ch[1]) == 0);
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int before = count_fds();
    int udp = udp_open(&addr, NULL);
    CHECK(udp >= 0);
    CHECK_ERR(prefix_attach_mem(udp, 4, 0, &mem), EPROTO);
    CHECK(count_fds() == before);
    /* udp_open wrote its port into addr; the listener takes any port, or
       it might find that number taken over TCP. */
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int l = tcp_listen(&addr, 1);
    CHECK(l >= 0);
    CHECK_ERR(prefix_attach(l, 4, 0), EPROTO);
    CHECK(count_fds() == before);
    /* A PREFIX socket is a message socket, not a bytestream. */
    ipc_connected(s);
    int p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    CHECK_ERR(prefix_attach(p, 4, 0), EPROTO);
    CHECK_ERR(hclose(p), EBADF);
    check_closed_peer(s[1]);

    /* Handle creation in a cancelled coroutine. */
    for(int variant = 0; variant < 2; variant++) {
        ipc_connected(s);
        struct result r = {0};
        int cr = go(attach_cancelled(s[0], variant, &r));
        CHECK(cr >= 0);
        CHECK(yield() == 0);
        CHECK(hclose(cr) == 0);
        CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
        CHECK_ERR(hclose(s[0]), EBADF);
        check_closed_peer(s[1]);
    }
}

/* Storage at every offset from 0 to 7: nothing outside it is written. */
static void test_mem(void) {
    for(size_t off = 0; off < 8; off++) {
        uint8_t raw[sizeof(struct prefix_storage) + 16];
        memset(raw, 0xa5, sizeof(raw));
        struct prefix_storage *mem = (struct prefix_storage *)(raw + off);
        int s[2];
        ipc_connected(s);
        int p = prefix_attach_mem(s[0], 2, PREFIX_LITTLE_ENDIAN, mem);
        CHECK(p >= 0);
        CHECK(msend(p, "hello", 5, SOON) == 0);
        uint8_t wire[7];
        CHECK(brecv(s[1], wire, 7, SOON) == 0);
        CHECK(memcmp(wire, "\5\0hello", 7) == 0);
        CHECK(bsend(s[1], "\3\0abc", 5, SOON) == 0);
        char buf[8];
        CHECK(mrecv(p, buf, sizeof(buf), SOON) == 3);
        CHECK(memcmp(buf, "abc", 3) == 0);
        for(size_t i = 0; i < off; i++) CHECK(raw[i] == 0xa5);
        for(size_t i = off + sizeof(*mem); i < sizeof(raw); i++)
            CHECK(raw[i] == 0xa5);
        if(off % 2) {
            int u = prefix_detach(p);
            CHECK(u >= 0);
            CHECK(hclose(u) == 0);
        } else {
            CHECK(hclose(p) == 0);
        }
        check_closed_peer(s[1]);
    }
}

/* ---- Receiving ---------------------------------------------------------------------- */

static void test_scatter(void) {
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    int q = prefix_attach(s[1], 4, 0);
    CHECK(q >= 0);
    /* Sent from pieces, empty ones among them. */
    struct iolist s3 = {"ghij", 4, NULL, 0};
    struct iolist s2 = {NULL, 0, &s3, 0};
    struct iolist s1 = {"def", 3, &s2, 0};
    struct iolist s0 = {"abc", 3, &s1, 0};
    CHECK(msendl(p, &s0, &s3, SOON) == 0);
    CHECK(s0.iol_next == &s1 && s1.iol_next == &s2 && s2.iol_next == &s3 &&
        s3.iol_next == NULL);
    /* Received into pieces: two bytes dropped by a NULL base, the list cut
       where the message ends and put back. */
    char a[2], c[20];
    struct iolist r3 = {c + 10, 10, NULL, 0};
    struct iolist r2 = {c, 5, &r3, 0};
    struct iolist r1 = {NULL, 2, &r2, 0};
    struct iolist r0z = {a, 0, &r1, 0};
    struct iolist r0 = {a, 2, &r0z, 0};
    memset(c, '.', sizeof(c));
    CHECK(mrecvl(q, &r0, &r3, SOON) == 10);
    CHECK(memcmp(a, "ab", 2) == 0);
    CHECK(memcmp(c, "efghi", 5) == 0 && c[5] == '.');
    CHECK(c[10] == 'j' && c[11] == '.');
    CHECK(r0.iol_base == a && r0.iol_len == 2 && r0.iol_next == &r0z);
    CHECK(r0z.iol_len == 0 && r0z.iol_next == &r1);
    CHECK(r1.iol_base == NULL && r1.iol_len == 2 && r1.iol_next == &r2);
    CHECK(r2.iol_base == c && r2.iol_len == 5 && r2.iol_next == &r3);
    CHECK(r3.iol_base == c + 10 && r3.iol_len == 10 && r3.iol_next == NULL);
    CHECK(r0.iol_rsvd == 0 && r1.iol_rsvd == 0 && r2.iol_rsvd == 0 &&
        r3.iol_rsvd == 0 && r0z.iol_rsvd == 0);
    /* A message ending exactly at an element's end, then an empty one. */
    CHECK(msend(p, "abcdefg", 7, SOON) == 0);
    CHECK(mrecvl(q, &r0, &r3, SOON) == 7);
    CHECK(memcmp(a, "ab", 2) == 0 && memcmp(c, "efg", 3) == 0);
    CHECK(r2.iol_len == 5 && r2.iol_next == &r3);
    CHECK(msend(p, NULL, 0, SOON) == 0);
    CHECK(mrecvl(q, &r0, &r3, SOON) == 0);
    CHECK(hclose(p) == 0 && hclose(q) == 0);
}

static void test_drop(void) {
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    int q = prefix_attach(s[1], 2, 0);
    CHECK(q >= 0);
    uint8_t big[50000];
    fill(big, sizeof(big), 3);
    CHECK(msend(p, big, sizeof(big), SOON) == 0);
    CHECK(msend(p, "", 0, SOON) == 0);
    CHECK(msend(p, "next", 4, SOON) == 0);
    CHECK(mrecvl(q, NULL, NULL, SOON) == 50000);
    CHECK(mrecvl(q, NULL, NULL, SOON) == 0);
    char buf[8];
    CHECK(mrecv(q, buf, sizeof(buf), SOON) == 4 && memcmp(buf, "next", 4) == 0);
    /* A NULL buffer drops into a buffer of that size. */
    CHECK(msend(p, big, 100, SOON) == 0);
    CHECK(mrecv(q, NULL, 100, SOON) == 100);
    CHECK(hclose(p) == 0 && hclose(q) == 0);
}

/* A message larger than the buffer: EMSGSIZE, the payload left unread,
   the receive side failed. */
static void test_recv_emsgsize(void) {
    int h;
    struct memstream *m = memstream_make(&h);
    int p = prefix_attach(h, 4, 0);
    CHECK(p >= 0);
    memstream_feed(m, "\0\0\0\12abcdefghij\0\0\0\1k", 19);
    char buf[9];
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), EMSGSIZE);
    CHECK(memstream_left(m) == 15);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK_ERR(mrecvl(p, NULL, NULL, SOON), ECONNRESET);
    CHECK(memstream_left(m) == 15);
    /* Sending still works. */
    CHECK(msend(p, "x", 1, SOON) == 0);
    CHECK(m->outlen == 5);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    CHECK(m->closed);
    CHECK_ERR(hclose(p), EBADF);
    memstream_free(m);

    /* Over a real socket, and with a list whose total is short. */
    int s[2];
    ipc_connected(s);
    p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    CHECK(bsend(s[1], "\0\5hello", 7, SOON) == 0);
    struct iolist b = {buf, 2, NULL, 0};
    struct iolist a = {buf + 2, 2, &b, 0};
    CHECK_ERR(mrecvl(p, &a, &b, SOON), EMSGSIZE);
    CHECK(a.iol_len == 2 && a.iol_next == &b && b.iol_len == 2);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    /* The payload was left unread, so the close is a reset. */
    CHECK_ERR(brecv(s[1], buf, 1, SOON), ECONNRESET);
    CHECK(hclose(s[1]) == 0);
}

/* Peers that lie or stop. */
static void test_hostile(void) {
    int h;
    char buf[100];
    struct memstream *m;
    int p;
    /* A huge length: refused on the header alone, no payload awaited. */
    m = memstream_make(&h);
    p = prefix_attach(h, 4, 0);
    CHECK(p >= 0);
    memstream_feed(m, "\xff\xff\xff\xff", 4);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), EMSGSIZE);
    CHECK(memstream_left(m) == 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), ECONNRESET);
    CHECK(hclose(p) == 0);
    CHECK(m->closed);
    memstream_free(m);
    /* Lengths beyond SSIZE_MAX or 64 bits: EMSGSIZE even for a drop. */
    static const struct {
        size_t hdrlen;
        int flags;
        const char *hdr;
    } huge[] = {
        {8, 0, "\x80\0\0\0\0\0\0\0"},
        {8, 1, "\0\0\0\0\0\0\0\xff"},
        {9, 0, "\1\0\0\0\0\0\0\0\0"},
        {9, 1, "\0\0\0\0\0\0\0\0\1"},
        {12, 0, "\0\0\0\x10\0\0\0\0\0\0\0\1"},
    };
    for(size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        m = memstream_make(&h);
        p = prefix_attach(h, huge[i].hdrlen, huge[i].flags);
        CHECK(p >= 0);
        memstream_feed(m, huge[i].hdr, huge[i].hdrlen);
        memstream_feed(m, "payload", 7);
        CHECK_ERR(mrecvl(p, NULL, NULL, 0), EMSGSIZE);
        CHECK(memstream_left(m) == 7);
        CHECK_ERR(mrecvl(p, NULL, NULL, 0), ECONNRESET);
        CHECK_ERR(prefix_detach(p), ECONNRESET);
        CHECK(m->closed);
        memstream_free(m);
    }
    /* The leading zeros of a long header are fine. */
    m = memstream_make(&h);
    p = prefix_attach(h, 12, 1);
    CHECK(p >= 0);
    memstream_feed(m, "\2\0\0\0\0\0\0\0\0\0\0\0hi", 14);
    CHECK(mrecv(p, buf, sizeof(buf), 0) == 2 && memcmp(buf, "hi", 2) == 0);
    int u = prefix_detach(p);
    CHECK(u >= 0 && hclose(u) == 0);
    memstream_free(m);

    /* Cut short: in the header, in the payload, between messages. All are
       EPIPE, then ECONNRESET, and detach fails. */
    static const struct { const char *bytes; size_t len; } cut[] = {
        {"\0", 1}, {"\0\0\0", 3}, {"\0\0\0\5ab", 6}, {"", 0},
    };
    for(size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        int s[2];
        ipc_connected(s);
        p = prefix_attach(s[0], 4, 0);
        CHECK(p >= 0);
        CHECK(bsend(s[1], cut[i].bytes, cut[i].len, SOON) == 0);
        CHECK(hclose(s[1]) == 0);
        CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), EPIPE);
        CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
        CHECK_ERR(prefix_detach(p), ECONNRESET);
        CHECK_ERR(hclose(p), EBADF);
    }

    /* Garbage: each call gives exactly what a reading of the bytes by hand
       says, down to the error that ends it, and then only ECONNRESET. */
    uint8_t junk[4096];
    uint32_t x = 12345;
    for(size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245 + 12345;
        junk[i] = (uint8_t)(x >> 16);
    }
    static uint8_t big[70000];
    for(size_t hl = 1; hl <= 3; hl++) {
        for(int little = 0; little <= 1; little++) {
            m = memstream_make(&h);
            p = prefix_attach(h, hl, little);
            CHECK(p >= 0);
            memstream_feed(m, junk, sizeof(junk));
            size_t at = 0;
            int messages = 0;
            for(;;) {
                size_t len = 0;
                for(size_t i = 0; i < hl && at + i < sizeof(junk); i++)
                    len |= (size_t)junk[at + i] <<
                        (8 * (little ? i : hl - 1 - i));
                if(at + hl > sizeof(junk)) {
                    CHECK_ERR(mrecv(p, big, sizeof(big), 0), EPIPE);
                    break;
                }
                if(len > sizeof(big)) {
                    CHECK_ERR(mrecv(p, big, sizeof(big), 0), EMSGSIZE);
                    CHECK(memstream_left(m) == sizeof(junk) - at - hl);
                    break;
                }
                if(at + hl + len > sizeof(junk)) {
                    CHECK_ERR(mrecv(p, big, sizeof(big), 0), EPIPE);
                    break;
                }
                CHECK(mrecv(p, big, sizeof(big), 0) == (ssize_t)len);
                CHECK(memcmp(big, junk + at + hl, len) == 0);
                at += hl + len;
                messages++;
            }
            /* The 1-byte header gets through several messages. */
            if(hl == 1) CHECK(messages > 3);
            CHECK_ERR(mrecv(p, big, sizeof(big), 0), ECONNRESET);
            CHECK(hclose(p) == 0);
            memstream_free(m);
        }
    }

    /* An endless message being dropped: ETIMEDOUT at the deadline though
       every read is served at once. 1 TiB, or SSIZE_MAX on a 32-bit
       machine (2 GiB - 1: a longer one fails with EMSGSIZE at once). */
    int s[2];
    ipc_connected(s);
    p = prefix_attach(s[0], 8, 0);
    CHECK(p >= 0);
    uint64_t endless = (uint64_t)1 << 40;
    if((uint64_t)SSIZE_MAX < endless) endless = SSIZE_MAX;
    unsigned char hdr[8];
    for(int i = 0; i < 8; i++) hdr[i] = (unsigned char)(endless >> (56 - 8 * i));
    CHECK(bsend(s[1], hdr, 8, SOON) == 0);
    struct result fr = {0};
    int cr = go(flood(s[1], &fr));
    CHECK(cr >= 0);
    int64_t start = now();
    CHECK_ERR(mrecvl(p, NULL, NULL, start + 300), ETIMEDOUT);
    int64_t took = now() - start;
    CHECK(took >= 300 && took < 3000);
    CHECK_ERR(mrecvl(p, NULL, NULL, SOON), ECONNRESET);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(fr.rc == -1 && fr.err == ECONNRESET);
    CHECK(hclose(cr) == 0);
    CHECK(hclose(s[1]) == 0);
}

/* ---- Sticky failures ------------------------------------------------------------------- */

static void test_recv_failures(void) {
    int s[2];
    char buf[16];
    /* ETIMEDOUT; sending is not affected. */
    ipc_connected(s);
    int p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), now() + 20), ETIMEDOUT);
    CHECK(bsend(s[1], "\0\1x", 3, SOON) == 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(msend(p, "ok", 2, SOON) == 0);
    CHECK(brecv(s[1], buf, 4, SOON) == 0 && memcmp(buf, "\0\2ok", 4) == 0);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    /* Closed with our message to it unread: the peer sees a reset. */
    CHECK_ERR(brecv(s[1], buf, 1, SOON), ECONNRESET);
    CHECK(hclose(s[1]) == 0);
    /* Deadline 0 with the message there succeeds; with half of it not. */
    ipc_connected(s);
    p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    CHECK(bsend(s[1], "\0\1x\0\2y", 6, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), 0) == 1 && buf[0] == 'x');
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), ETIMEDOUT);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), ECONNRESET);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    /* ECANCELED while waiting. */
    ipc_connected(s);
    p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    struct result r = {0};
    int cr = go(do_mrecv(p, buf, sizeof(buf), -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), 0), ECONNRESET);
    CHECK(msend(p, "", 0, SOON) == 0);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    /* Malformed lists found by the layer: EINVAL, the list restored, the
       direction failed. The front end's own checks change nothing. */
    ipc_connected(s);
    p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    struct iolist end = {buf, 1, NULL, 0};
    struct iolist not_last = {buf, 1, &end, 0};
    CHECK_ERR(mrecvl(p, &end, NULL, SOON), EINVAL);
    CHECK_ERR(mrecvl(p, NULL, &end, SOON), EINVAL);
    CHECK_ERR(mrecvl(p, &not_last, &not_last, SOON), EINVAL);
    CHECK_ERR(msendl(p, NULL, NULL, SOON), EINVAL);
    CHECK_ERR(msendl(p, &not_last, &not_last, SOON), EINVAL);
    CHECK(bsend(s[1], "\0\1z", 3, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 1 && buf[0] == 'z');
    struct iolist l2 = {buf, 1, NULL, 0};
    struct iolist l1 = {buf, 1, &l2, 0};
    l2.iol_next = &l1;
    CHECK_ERR(mrecvl(p, &l1, &end, SOON), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0);
    CHECK_ERR(mrecv(p, buf, sizeof(buf), SOON), ECONNRESET);
    /* The other direction: a list whose last is unreachable, then one
       with iol_rsvd set. */
    struct iolist other = {buf, 1, NULL, 0};
    CHECK_ERR(msendl(p, &other, &end, SOON), EINVAL);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    ipc_connected(s);
    p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    struct iolist marked = {buf, 1, NULL, 1};
    CHECK_ERR(msendl(p, &marked, &marked, SOON), EINVAL);
    CHECK(marked.iol_rsvd == 1);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(mrecvl(p, &marked, &marked, SOON), EINVAL);
    CHECK_ERR(mrecv(p, buf, 1, SOON), ECONNRESET);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    check_closed_peer(s[1]);
}

static void test_send_failures(void) {
    size_t len = 16 << 20;
    uint8_t *big = malloc(len);
    CHECK(big != NULL);
    memset(big, 'b', len);
    char buf[8];
    /* ETIMEDOUT while nobody reads; receiving is not affected. */
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    CHECK_ERR(msend(p, big, len, now() + 50), ETIMEDOUT);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK(bsend(s[1], "\0\0\0\2hi", 6, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 2 && memcmp(buf, "hi", 2) == 0);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    CHECK(hclose(s[1]) == 0);
    /* ECANCELED while waiting, and EBUSY for a second sender meanwhile. */
    ipc_connected(s);
    p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    struct result r = {0};
    int cr = go(do_msend(p, big, len, -1, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(msend(p, "x", 1, SOON), EBUSY);
    CHECK_ERR(prefix_detach(p), EBUSY);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK(hclose(p) == 0);
    CHECK(hclose(s[1]) == 0);
    /* The peer gone: the kernel's EPIPE is ECONNRESET. */
    ipc_connected(s);
    p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    CHECK(hclose(s[1]) == 0);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(msend(p, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(prefix_detach(p), ECONNRESET);
    free(big);
}

/* One sender and one receiver at once; EBUSY for a second receiver and for
   detach; hclose under a blocked receive. */
static void test_concurrency(void) {
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 2, 0);
    CHECK(p >= 0);
    int q = prefix_attach(s[1], 2, 0);
    CHECK(q >= 0);
    char buf[8], other[8];
    struct result r = {0};
    int cr = go(do_mrecv(p, buf, sizeof(buf), SOON, &r));
    CHECK(cr >= 0);
    CHECK(yield() == 0);
    CHECK(!r.done);
    CHECK_ERR(mrecv(p, other, sizeof(other), SOON), EBUSY);
    CHECK_ERR(mrecvl(p, NULL, NULL, SOON), EBUSY);
    CHECK_ERR(prefix_detach(p), EBUSY);
    /* Sending works meanwhile. */
    CHECK(msend(p, "out", 3, SOON) == 0);
    CHECK(mrecv(q, other, sizeof(other), SOON) == 3);
    CHECK(msend(q, "in", 2, SOON) == 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(r.rc == 2 && memcmp(buf, "in", 2) == 0);
    CHECK(hclose(cr) == 0);
    /* Nothing was marked by the refused calls. */
    int u = prefix_detach(p);
    CHECK(u >= 0);
    p = prefix_attach(u, 2, 0);
    CHECK(p >= 0);
    /* Closing the handle under a blocked receive wakes it with EBADF. */
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

/* ---- Detach ---------------------------------------------------------------------- */

static void test_detach(void) {
    int s[2];
    char buf[16];
    ipc_connected(s);
    int p = prefix_attach(s[0], 3, 0);
    CHECK(p >= 0);
    /* The message and then raw bytes, all at once. */
    CHECK(bsend(s[1], "\0\0\5hellotail", 12, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 5);
    int u = prefix_detach(p);
    CHECK(u >= 0 && u != p);
    CHECK(brecv(u, buf, 4, SOON) == 0 && memcmp(buf, "tail", 4) == 0);
    CHECK(bsend(u, "raw", 3, SOON) == 0);
    CHECK(brecv(s[1], buf, 3, SOON) == 0 && memcmp(buf, "raw", 3) == 0);
    /* The old number is dead. */
    CHECK_ERR(msend(p, "x", 1, SOON), EBADF);
    CHECK_ERR(mrecv(p, buf, 1, SOON), EBADF);
    CHECK_ERR(prefix_detach(p), EBADF);
    CHECK_ERR(hclose(p), EBADF);
    /* Not PREFIX sockets: nothing is closed. */
    CHECK_ERR(prefix_detach(u), ENOTSUP);
    CHECK_ERR(prefix_detach(-1), EBADF);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(prefix_detach(ch[0]), ENOTSUP);
    CHECK(hclose(ch[0]) == 0 && hclose(ch[1]) == 0);
    CHECK(bsend(u, "!", 1, SOON) == 0);
    CHECK(brecv(s[1], buf, 1, SOON) == 0 && buf[0] == '!');
    /* Again, with another header, on the same stream. */
    p = prefix_attach(u, 1, PREFIX_LITTLE_ENDIAN);
    CHECK(p >= 0);
    int q = prefix_attach(s[1], 1, 0);
    CHECK(q >= 0);
    CHECK(msend(q, "second", 6, SOON) == 0);
    CHECK(mrecv(p, buf, sizeof(buf), SOON) == 6);
    CHECK(memcmp(buf, "second", 6) == 0);
    /* Detach right after attach. */
    u = prefix_detach(p);
    CHECK(u >= 0);
    int v = prefix_detach(q);
    CHECK(v >= 0);
    CHECK(hclose(u) == 0);
    check_closed_peer(v);
}

/* ---- Many messages both ways over TCP ------------------------------------------------ */

#define ROUNDS 300

static size_t size_of(int i) {
    static const size_t sizes[] = {0, 1, 2, 100, 1983, 1984, 1985, 4096,
        65535, 65536, 200000};
    return sizes[(size_t)i * 7 % (sizeof(sizes) / sizeof(sizes[0]))] +
        (size_t)(i % 3);
}

coroutine static void sender(int p, volatile struct result *r) {
    uint8_t *buf = malloc(300000);
    CHECK(buf != NULL);
    for(int i = 0; i < ROUNDS; i++) {
        size_t len = size_of(i);
        fill(buf, len, (unsigned)i);
        /* Every other message goes out in three pieces. */
        if(i % 2) {
            struct iolist c = {buf + len / 2 + 1, len - len / 2 - 1, NULL, 0};
            struct iolist b = {buf + len / 2, 1, &c, 0};
            struct iolist a = {buf, len / 2, &b, 0};
            if(len == 0) {
                b.iol_len = 0;
                c.iol_len = 0;
                c.iol_base = buf;
            }
            CHECK(msendl(p, &a, &c, SOON) == 0);
        } else {
            CHECK(msend(p, buf, len, SOON) == 0);
        }
    }
    free(buf);
    finish(r, 0);
}

static void receive_all(int p) {
    uint8_t *buf = malloc(300000);
    CHECK(buf != NULL);
    for(int i = 0; i < ROUNDS; i++) {
        ssize_t n = mrecv(p, buf, 300000, SOON);
        CHECK(n == (ssize_t)size_of(i));
        CHECK(is_pattern(buf, (size_t)n, (unsigned)i));
    }
    free(buf);
}

static void test_tcp(void) {
    int s[2];
    tcp_connected(s);
    int p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    struct prefix_storage mem;
    int q = prefix_attach_mem(s[1], 4, 0, &mem);
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
    /* Both ends back to TCP, and closed in order. */
    int u = prefix_detach(p);
    int v = prefix_detach(q);
    CHECK(u >= 0 && v >= 0);
    CHECK(tcp_done(u, SOON) == 0);
    char c;
    CHECK_ERR(brecv(v, &c, 1, SOON), EPIPE);
    CHECK(tcp_close(v, SOON) == 0);
    CHECK(tcp_close(u, SOON) == 0);
}

/* ---- Interfaces ---------------------------------------------------------------------- */

static void test_interfaces(void) {
    int s[2];
    ipc_connected(s);
    int p = prefix_attach(s[0], 4, 0);
    CHECK(p >= 0);
    CHECK(hquery(p, msock_type) != NULL);
    errno = 0;
    CHECK(hquery(p, bsock_type) == NULL && errno == ENOTSUP);
    char c;
    CHECK_ERR(bsend(p, "x", 1, SOON), ENOTSUP);
    CHECK_ERR(brecv(p, &c, 1, SOON), ENOTSUP);
    CHECK_ERR(ipc_done(p, SOON), ENOTSUP);
    /* hclose closes the stack. */
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
    /* Bring the scheduler and its poller to life before counting. */
    int s[2];
    ipc_connected(s);
    char c;
    CHECK_ERR(brecv(s[0], &c, 1, now() + 1), ETIMEDOUT);
    CHECK(hclose(s[0]) == 0 && hclose(s[1]) == 0);

    RUN(test_wire);
    RUN(test_long_headers);
    RUN(test_send_emsgsize);
    RUN(test_attach_errors);
    RUN(test_mem);
    RUN(test_scatter);
    RUN(test_drop);
    RUN(test_recv_emsgsize);
    RUN(test_hostile);
    RUN(test_recv_failures);
    RUN(test_send_failures);
    RUN(test_concurrency);
    RUN(test_detach);
    RUN(test_tcp);
    RUN(test_interfaces);
    return 0;
}
