/*
 * tests/dns.c: the DNS message code (dns.c), without any network. Covers
 * query building (exact bytes, TCP length prefix, buffer sizes, invalid
 * names and types), response parsing on hand-built packets (A, AAAA,
 * several addresses, CNAME chains with compression pointers in and out of
 * order, other owners and types ignored, each RCODE, TC, every kind of
 * mismatch, case-insensitive names), malformed packets (pointer loops,
 * forward pointers, truncated labels and pointers, reserved label types,
 * names over 255 bytes, pointer hop limit, bad RDLENGTH, truncated header
 * and every prefix of a real answer, CNAME loops and over-long chains),
 * name comparison, the search list and ndots, and a fixed-seed fuzz loop.
 * Every message handed to the parser sits in a heap block of exactly its
 * length, so ASan or valgrind report any read past its end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "check.h"

/* ---- Helpers ------------------------------------------------------------ */

/* Packet bytes in array initialisers. */
#define W16(x) (uint8_t)((x) >> 8), (uint8_t)((x) & 0xff)
#define TTL 0x00, 0x00, 0x0e, 0x10
#define NAME_WWW 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', \
    3, 'c', 'o', 'm', 0
/* Response header for id 0x1234 with one question. */
#define HEAD(flags, an, ns, ar) W16(0x1234), W16(flags), 0, 1, W16(an), \
    W16(ns), W16(ar)
#define QUESTION(type) NAME_WWW, W16(type), 0, 1
/* Flags: QR, RD, RA, and an RCODE. */
#define RESP(rcode) (0x8180 | (rcode))
/* A record owned by the question name, pointer to offset 12. */
#define A_WWW(a, b, c, d) 0xc0, 0x0c, W16(1), W16(1), TTL, W16(4), a, b, c, d

static struct dill_dns_question q_a;     /* www.example.com A, id 0x1234 */
static struct dill_dns_question q_aaaa;  /* the same name, AAAA */

/* Parse msg from a heap copy of exactly len bytes. */
static enum dill_dns_result parse(const struct dill_dns_question *q,
      const uint8_t *msg, size_t len, struct dill_dns_addr *addrs,
      int naddrs, int *count) {
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy);
    if(len) memcpy(copy, msg, len);
    enum dill_dns_result rc = dill_dns_parse(q, copy, len, addrs, naddrs,
        count);
    free(copy);
    return rc;
}

/* Parse for q_a expecting rc and n addresses. */
static void expect(const uint8_t *msg, size_t len, enum dill_dns_result rc,
      int n) {
    struct dill_dns_addr addrs[8];
    int count = -1;
    CHECK(parse(&q_a, msg, len, addrs, 8, &count) == rc);
    CHECK(count == n);
}

/* dill_dns_name_read on a heap copy of exactly len bytes. */
static int name_read(const uint8_t *msg, size_t len, size_t pos,
      uint8_t *out, size_t *next) {
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(copy);
    if(len) memcpy(copy, msg, len);
    int rc = dill_dns_name_read(copy, len, pos, out, next);
    free(copy);
    return rc;
}

/* A message built piece by piece, for packets too long to write out. */
struct pkt {
    uint8_t b[4096];
    size_t len;
};

static void put8(struct pkt *p, uint8_t v) {
    CHECK(p->len < sizeof(p->b));
    p->b[p->len++] = v;
}

static void put16(struct pkt *p, uint16_t v) {
    put8(p, (uint8_t)(v >> 8));
    put8(p, (uint8_t)(v & 0xff));
}

static void put_label(struct pkt *p, int len, char c) {
    put8(p, (uint8_t)len);
    for(int i = 0; i < len; i++) put8(p, (uint8_t)c);
}

static void put_ptr(struct pkt *p, size_t off) {
    put16(p, (uint16_t)(0xc000 | off));
}

/* TYPE, CLASS IN, TTL, RDLENGTH after an owner name. */
static void put_rr_fixed(struct pkt *p, uint16_t type, uint16_t rdlen) {
    put16(p, type);
    put16(p, DILL_DNS_CLASS_IN);
    put16(p, 0);
    put16(p, 60);
    put16(p, rdlen);
}

static void put_head(struct pkt *p, uint16_t an) {
    static const uint8_t head[] = {HEAD(RESP(0), 0, 0, 0), QUESTION(1)};
    memcpy(p->b, head, sizeof(head));
    p->b[6] = (uint8_t)(an >> 8);
    p->b[7] = (uint8_t)(an & 0xff);
    p->len = sizeof(head);
}

/* ---- Queries ------------------------------------------------------------ */

static void test_query(void) {
    static const uint8_t want[] = {
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x03, 'w', 'w', 'w', 0x07, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
        0x03, 'c', 'o', 'm', 0x00, 0x00, 0x01, 0x00, 0x01};
    uint8_t buf[DILL_DNS_MAXQUERY + 2];
    struct dill_dns_question q;
    CHECK(dill_dns_question(&q, 0x1234, "www.example.com",
        DILL_DNS_TYPE_A) == 0);
    CHECK(dill_dns_query(buf, sizeof(buf), &q) == 33);
    CHECK(memcmp(buf, want, 33) == 0);
    /* The buffer must hold the whole query, not one byte less. */
    CHECK_ERR(dill_dns_query(buf, 32, &q), EMSGSIZE);
    CHECK(dill_dns_query(buf, 33, &q) == 33);
    /* TCP: the same bytes after a two-byte length. */
    CHECK(dill_dns_query_tcp(buf, sizeof(buf), &q) == 35);
    CHECK(buf[0] == 0 && buf[1] == 33);
    CHECK(memcmp(buf + 2, want, 33) == 0);
    CHECK_ERR(dill_dns_query_tcp(buf, 34, &q), EMSGSIZE);
    CHECK_ERR(dill_dns_query_tcp(buf, 1, &q), EMSGSIZE);
    CHECK(dill_dns_query_tcp(buf, 35, &q) == 35);
    /* A trailing dot names the same thing. */
    CHECK(dill_dns_question(&q, 0x1234, "www.example.com.",
        DILL_DNS_TYPE_A) == 0);
    CHECK(dill_dns_query(buf, sizeof(buf), &q) == 33);
    CHECK(memcmp(buf, want, 33) == 0);
    /* AAAA differs only in QTYPE; the id is taken as given. */
    CHECK(dill_dns_question(&q, 0xfffe, "www.example.com",
        DILL_DNS_TYPE_AAAA) == 0);
    CHECK(dill_dns_query(buf, sizeof(buf), &q) == 33);
    CHECK(buf[0] == 0xff && buf[1] == 0xfe);
    CHECK(memcmp(buf + 2, want + 2, 28) == 0);
    CHECK(buf[29] == 0 && buf[30] == 28 && buf[31] == 0 && buf[32] == 1);
    /* A one-label name. */
    CHECK(dill_dns_question(&q, 1, "localhost", DILL_DNS_TYPE_A) == 0);
    CHECK(dill_dns_query(buf, sizeof(buf), &q) == 12 + 11 + 4);
    CHECK(buf[12] == 9 && memcmp(buf + 13, "localhost", 9) == 0);
    CHECK(buf[22] == 0);
}

/* A dotted name of exactly len characters made of 63-byte labels. */
static void long_name(char *out, size_t len) {
    for(size_t i = 0; i < len; i++) out[i] = (i % 64 == 63) ? '.' : 'x';
    out[len] = 0;
}

static void test_query_names(void) {
    struct dill_dns_question q;
    char name[300];
    uint8_t buf[DILL_DNS_MAXQUERY];
    CHECK_ERR(dill_dns_question(&q, 1, "", DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, ".", DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, "a..b", DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, ".a", DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, "a.b..", DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, NULL, DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(NULL, 1, "a", DILL_DNS_TYPE_A), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, "a", DILL_DNS_TYPE_CNAME), EINVAL);
    CHECK_ERR(dill_dns_question(&q, 1, "a", 0), EINVAL);
    /* Labels: 63 bytes is the limit (RFC 1035 §2.3.4). */
    memset(name, 'l', 63);
    strcpy(name + 63, ".com");
    CHECK(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A) == 0);
    memset(name, 'l', 64);
    strcpy(name + 64, ".com");
    CHECK_ERR(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A), EINVAL);
    memset(name, 'l', 64);
    name[64] = 0;
    CHECK_ERR(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A), EINVAL);
    /* Names: 253 characters (255 wire bytes), a trailing dot extra. */
    long_name(name, 253);
    CHECK(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A) == 0);
    CHECK(dill_dns_query(buf, sizeof(buf), &q) == DILL_DNS_MAXQUERY);
    strcat(name, ".");
    CHECK(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A) == 0);
    long_name(name, 254);
    CHECK_ERR(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A), EINVAL);
    long_name(name, 290);
    CHECK_ERR(dill_dns_question(&q, 1, name, DILL_DNS_TYPE_A), EINVAL);
}

/* ---- Answers ------------------------------------------------------------ */

static void test_simple(void) {
    static const uint8_t msg[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(1), A_WWW(93, 184, 216, 34)};
    struct dill_dns_addr addrs[4];
    int count;
    CHECK(parse(&q_a, msg, sizeof(msg), addrs, 4, &count) == DILL_DNS_OK);
    CHECK(count == 1);
    CHECK(addrs[0].len == 4);
    CHECK(memcmp(addrs[0].bytes, "\x5d\xb8\xd8\x22", 4) == 0);
    /* No room: still a valid answer, nothing stored. */
    count = -1;
    CHECK(parse(&q_a, msg, sizeof(msg), addrs, 0, &count) == DILL_DNS_OK);
    CHECK(count == 0);
    CHECK(parse(&q_a, msg, sizeof(msg), NULL, -3, &count) == DILL_DNS_OK);
    CHECK(count == 0);
    /* The same reply asked for AAAA does not answer that question. */
    CHECK(parse(&q_aaaa, msg, sizeof(msg), addrs, 4, &count) ==
        DILL_DNS_MISMATCH);
    CHECK(count == 0);
}

static void test_aaaa(void) {
    static const uint8_t msg[] = {
        HEAD(RESP(0), 3, 0, 0), QUESTION(28),
        /* An A record among AAAA: not the type asked for. */
        A_WWW(1, 2, 3, 4),
        0xc0, 0x0c, W16(28), W16(1), TTL, W16(16),
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0xc0, 0x0c, W16(28), W16(1), TTL, W16(16),
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    struct dill_dns_addr addrs[4];
    int count;
    CHECK(parse(&q_aaaa, msg, sizeof(msg), addrs, 4, &count) ==
        DILL_DNS_OK);
    CHECK(count == 2);
    CHECK(addrs[0].len == 16 && addrs[1].len == 16);
    CHECK(memcmp(addrs[0].bytes,
        "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16) == 0);
    CHECK(memcmp(addrs[1].bytes,
        "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02", 16) == 0);
    /* An AAAA with 4 bytes, or an A with 16, is malformed. */
    static const uint8_t bad1[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(28),
        0xc0, 0x0c, W16(28), W16(1), TTL, W16(4), 1, 2, 3, 4};
    CHECK(parse(&q_aaaa, bad1, sizeof(bad1), addrs, 4, &count) ==
        DILL_DNS_MALFORMED);
    static const uint8_t bad2[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(28),
        0xc0, 0x0c, W16(1), W16(1), TTL, W16(16),
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(parse(&q_aaaa, bad2, sizeof(bad2), addrs, 4, &count) ==
        DILL_DNS_MALFORMED);
}

static void test_several(void) {
    static const uint8_t msg[] = {
        HEAD(RESP(0), 4, 0, 0), QUESTION(1),
        A_WWW(10, 0, 0, 1),
        /* A TXT record in between is skipped unread. */
        0xc0, 0x0c, W16(16), W16(1), TTL, W16(3), 2, 'h', 'i',
        A_WWW(10, 0, 0, 2), A_WWW(10, 0, 0, 3)};
    struct dill_dns_addr addrs[4];
    int count;
    CHECK(parse(&q_a, msg, sizeof(msg), addrs, 4, &count) == DILL_DNS_OK);
    CHECK(count == 3);
    for(int i = 0; i < 3; i++) {
        CHECK(addrs[i].len == 4);
        CHECK(memcmp(addrs[i].bytes, "\x0a\0\0", 3) == 0);
        CHECK(addrs[i].bytes[3] == i + 1);
    }
    /* Only as many as fit, in answer order. */
    addrs[2].bytes[3] = 99;
    CHECK(parse(&q_a, msg, sizeof(msg), addrs, 2, &count) == DILL_DNS_OK);
    CHECK(count == 2);
    CHECK(addrs[0].bytes[3] == 1 && addrs[1].bytes[3] == 2);
    CHECK(addrs[2].bytes[3] == 99);
}

/* www.example.com CNAME a.cdn.net, a.cdn.net CNAME b.cdn.net, b.cdn.net A
   10.0.0.7; also an A for a.cdn.net (not the end of the chain) and an
   additional record. Owners and targets point into the question and into
   earlier RDATA. Offsets are noted on the left. */
static const uint8_t chain[] = {
    /*   0 */ HEAD(RESP(0), 4, 0, 1),
    /*  12 */ QUESTION(1),
    /*  33 */ 0xc0, 0x0c, W16(5), W16(1), TTL, W16(11),
    /*  45 */ 1, 'a', 3, 'c', 'd', 'n', 3, 'n', 'e', 't', 0,
    /*  56 */ 0xc0, 45, W16(5), W16(1), TTL, W16(4),
    /*  68 */ 1, 'b', 0xc0, 47,
    /*  72 */ 0xc0, 68, W16(1), W16(1), TTL, W16(4), 10, 0, 0, 7,
    /*  88 */ 0xc0, 45, W16(1), W16(1), TTL, W16(4), 9, 9, 9, 9,
    /* 104: additional section */
              0xc0, 68, W16(28), W16(1), TTL, W16(16),
              0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7
    /* 132 */
};
#define CHAIN_ANSWERS_END 104

static void test_cname(void) {
    struct dill_dns_addr addrs[4];
    int count;
    CHECK(sizeof(chain) == 132);
    CHECK(parse(&q_a, chain, sizeof(chain), addrs, 4, &count) ==
        DILL_DNS_OK);
    CHECK(count == 1);
    CHECK(addrs[0].len == 4 && memcmp(addrs[0].bytes, "\x0a\0\0\x07", 4) == 0);
    /* The same chain with the records in reverse order. */
    static const uint8_t reversed[] = {
        /*   0 */ HEAD(RESP(0), 3, 0, 0),
        /*  12 */ QUESTION(1),
        /*  33 */ 1, 'b', 3, 'c', 'd', 'n', 3, 'n', 'e', 't', 0,
                  W16(1), W16(1), TTL, W16(4), 10, 0, 0, 8,
        /*  58 */ 1, 'a', 0xc0, 35, W16(5), W16(1), TTL, W16(2), 0xc0, 33,
        /*  74 */ 0xc0, 12, W16(5), W16(1), TTL, W16(2), 0xc0, 58};
    CHECK(parse(&q_a, reversed, sizeof(reversed), addrs, 4, &count) ==
        DILL_DNS_OK);
    CHECK(count == 1 && addrs[0].bytes[3] == 8);
    /* A CNAME whose RDATA holds more, or less, than its name. */
    static const uint8_t longer[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(1),
        0xc0, 0x0c, W16(5), W16(1), TTL, W16(3), 0xc0, 0x0c, 0};
    expect(longer, sizeof(longer), DILL_DNS_MALFORMED, 0);
    static const uint8_t shorter[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(1),
        0xc0, 0x0c, W16(5), W16(1), TTL, W16(2), 1, 'x', 0};
    expect(shorter, sizeof(shorter), DILL_DNS_MALFORMED, 0);
    /* A CNAME of another class is not followed, nor checked. */
    static const uint8_t chaos[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1),
        0xc0, 0x0c, W16(5), W16(3), TTL, W16(1), 0xff,
        A_WWW(1, 1, 1, 1)};
    expect(chaos, sizeof(chaos), DILL_DNS_OK, 1);
}

static void test_cname_loops(void) {
    /* www.example.com -> x.net -> www.example.com, with addresses. */
    static const uint8_t loop[] = {
        /*  0 */ HEAD(RESP(0), 4, 0, 0),
        /* 12 */ QUESTION(1),
        /* 33 */ 0xc0, 12, W16(5), W16(1), TTL, W16(7),
        /* 45 */ 1, 'x', 3, 'n', 'e', 't', 0,
        /* 52 */ 0xc0, 45, W16(5), W16(1), TTL, W16(2), 0xc0, 12,
                 A_WWW(1, 1, 1, 1),
                 0xc0, 45, W16(1), W16(1), TTL, W16(4), 2, 2, 2, 2};
    expect(loop, sizeof(loop), DILL_DNS_OK, 0);
    /* A name that is its own alias. */
    static const uint8_t self[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1),
        0xc0, 12, W16(5), W16(1), TTL, W16(2), 0xc0, 12,
        A_WWW(1, 1, 1, 1)};
    expect(self, sizeof(self), DILL_DNS_OK, 0);
    /* Chains of exactly DILL_DNS_MAXCNAME links, and one more. Link k is
       "c<k>" + question name; it points at the previous link's RDATA. */
    for(int links = DILL_DNS_MAXCNAME; links <= DILL_DNS_MAXCNAME + 1;
          links++) {
        struct pkt p;
        put_head(&p, (uint16_t)(links + 1));
        size_t owner = 12;
        for(int k = 0; k < links; k++) {
            put_ptr(&p, owner);
            put_rr_fixed(&p, 5, 5);
            owner = p.len;
            put8(&p, 2);
            put8(&p, 'c');
            put8(&p, (uint8_t)('a' + k));
            put_ptr(&p, 12);
        }
        put_ptr(&p, owner);
        put_rr_fixed(&p, 1, 4);
        put16(&p, 0x0a00);
        put16(&p, 0x0001);
        expect(p.b, p.len, DILL_DNS_OK,
            links <= DILL_DNS_MAXCNAME ? 1 : 0);
    }
}

static void test_other_owner(void) {
    static const uint8_t msg[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1),
        /* other.example.com: label + pointer to "example.com" at 16. */
        5, 'o', 't', 'h', 'e', 'r', 0xc0, 16, W16(1), W16(1), TTL, W16(4),
        1, 2, 3, 4,
        /* example.com itself. */
        0xc0, 16, W16(1), W16(1), TTL, W16(4), 5, 6, 7, 8};
    expect(msg, sizeof(msg), DILL_DNS_OK, 0);
    /* No answer at all: NOERROR with no data. */
    static const uint8_t empty[] = {HEAD(RESP(0), 0, 0, 0), QUESTION(1)};
    expect(empty, sizeof(empty), DILL_DNS_OK, 0);
    /* An A record of another class is skipped, whatever its length. */
    static const uint8_t chaos[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1),
        0xc0, 12, W16(1), W16(3), TTL, W16(2), 0, 1,
        A_WWW(4, 3, 2, 1)};
    expect(chaos, sizeof(chaos), DILL_DNS_OK, 1);
}

static void test_rcodes(void) {
    static const struct {
        int rcode;
        enum dill_dns_result rc;
    } cases[] = {
        {1, DILL_DNS_OTHER}, {2, DILL_DNS_SERVFAIL}, {3, DILL_DNS_NXDOMAIN},
        {4, DILL_DNS_OTHER}, {5, DILL_DNS_REFUSED}, {9, DILL_DNS_OTHER},
        {15, DILL_DNS_OTHER}};
    /* An error reply's answer section is not used, even if present. */
    uint8_t msg[] = {HEAD(RESP(0), 1, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg[3] = (uint8_t)(0x80 | cases[i].rcode);
        expect(msg, sizeof(msg), cases[i].rc, 0);
    }
    /* NXDOMAIN with an SOA in the authority section, as servers send. */
    static const uint8_t nx[] = {
        HEAD(RESP(3), 0, 1, 0), QUESTION(1),
        0xc0, 16, W16(6), W16(1), TTL, W16(2), 0xc0, 16};
    expect(nx, sizeof(nx), DILL_DNS_NXDOMAIN, 0);
    /* Only the four RCODE bits count; AA, AD and CD do not matter. */
    msg[2] = 0x85;
    msg[3] = 0xb0;
    expect(msg, sizeof(msg), DILL_DNS_OK, 1);
}

static void test_truncated_bit(void) {
    uint8_t msg[] = {HEAD(0x8380, 1, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    expect(msg, sizeof(msg), DILL_DNS_TRUNCATED, 0);
    /* TC wins over RCODE; the cut answer section is not read. */
    msg[3] = 0x83;
    expect(msg, sizeof(msg) - 3, DILL_DNS_TRUNCATED, 0);
    /* ... but the question must still be ours. */
    msg[30] = 28;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
}

static void test_mismatch(void) {
    uint8_t good[] = {HEAD(RESP(0), 1, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    uint8_t msg[sizeof(good)];
    expect(good, sizeof(good), DILL_DNS_OK, 1);
    /* The id, either byte. */
    memcpy(msg, good, sizeof(msg));
    msg[1] = 0x35;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    memcpy(msg, good, sizeof(msg));
    msg[0] = 0x21;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    /* Wrong id with a broken rest: ignored before anything is read. */
    expect(msg, 13, DILL_DNS_MISMATCH, 0);
    /* A query, not a response. */
    memcpy(msg, good, sizeof(msg));
    msg[2] = 0x01;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    /* Opcode IQUERY (1) and STATUS (2). */
    msg[2] = 0x81 | 1 << 3;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    msg[2] = 0x81 | 2 << 3;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    /* QDCOUNT 0 and 2. */
    memcpy(msg, good, sizeof(msg));
    msg[5] = 0;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    msg[5] = 2;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    msg[4] = 1;
    msg[5] = 1;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    /* Another name: www.example.org, and a shorter www.example.co. */
    memcpy(msg, good, sizeof(msg));
    memcpy(msg + 25, "org", 3);
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    static const uint8_t shorter[] = {
        HEAD(RESP(0), 0, 0, 0), 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p',
        'l', 'e', 2, 'c', 'o', 0, W16(1), W16(1)};
    expect(shorter, sizeof(shorter), DILL_DNS_MISMATCH, 0);
    /* Another type (AAAA) and another class (CH). */
    memcpy(msg, good, sizeof(msg));
    msg[30] = 28;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    memcpy(msg, good, sizeof(msg));
    msg[32] = 3;
    expect(msg, sizeof(msg), DILL_DNS_MISMATCH, 0);
    /* Id and question right, question cut: malformed. */
    expect(good, 30, DILL_DNS_MALFORMED, 0);
    expect(good, 20, DILL_DNS_MALFORMED, 0);
}

static void test_case(void) {
    static const uint8_t msg[] = {
        HEAD(RESP(0), 2, 0, 0),
        3, 'W', 'w', 'W', 7, 'E', 'x', 'A', 'm', 'P', 'l', 'E', 3, 'c', 'O',
        'M', 0, W16(1), W16(1),
        /* Owner written out in capitals. */
        3, 'W', 'W', 'W', 7, 'E', 'X', 'A', 'M', 'P', 'L', 'E', 3, 'C', 'O',
        'M', 0, W16(1), W16(1), TTL, W16(4), 1, 2, 3, 4,
        A_WWW(5, 6, 7, 8)};
    expect(msg, sizeof(msg), DILL_DNS_OK, 2);
    /* The question asked in capitals matches a lower-case reply. */
    struct dill_dns_question q;
    CHECK(dill_dns_question(&q, 0x1234, "WWW.EXAMPLE.COM",
        DILL_DNS_TYPE_A) == 0);
    static const uint8_t lower[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    struct dill_dns_addr addrs[2];
    int count;
    CHECK(parse(&q, lower, sizeof(lower), addrs, 2, &count) == DILL_DNS_OK);
    CHECK(count == 1);
}

static void test_name_equal(void) {
    CHECK(dill_dns_name_equal((const uint8_t *)"\3abc\0",
        (const uint8_t *)"\3ABC\0"));
    CHECK(dill_dns_name_equal((const uint8_t *)"", (const uint8_t *)""));
    CHECK(!dill_dns_name_equal((const uint8_t *)"\3abc\0",
        (const uint8_t *)"\3abd\0"));
    CHECK(!dill_dns_name_equal((const uint8_t *)"\3abc\0",
        (const uint8_t *)"\2ab\0"));
    CHECK(!dill_dns_name_equal((const uint8_t *)"\2ab\1c\0",
        (const uint8_t *)"\3abc\0"));
    CHECK(!dill_dns_name_equal((const uint8_t *)"\3abc\0",
        (const uint8_t *)"\3abc\1d\0"));
    /* Only A-Z and a-z fold: '@' (0x40) and '`' (0x60), '[' and '{' are
       as far apart as 'A' and 'a' but are different characters. */
    CHECK(!dill_dns_name_equal((const uint8_t *)"\1@\0",
        (const uint8_t *)"\1`\0"));
    CHECK(!dill_dns_name_equal((const uint8_t *)"\1[\0",
        (const uint8_t *)"\1{\0"));
    CHECK(!dill_dns_name_equal((const uint8_t *)"\1\xc1\0",
        (const uint8_t *)"\1\xe1\0"));
    CHECK(dill_dns_name_equal((const uint8_t *)"\2Z-\0",
        (const uint8_t *)"\2z-\0"));
}

/* ---- Malformed names ---------------------------------------------------- */

static void test_pointers(void) {
    uint8_t out[DILL_DNS_MAXWIRE];
    size_t next = 999;
    /* At offset 12: "ab" + root; at 16: "x" + pointer to 12; at 20: a
       pointer to 16. */
    static const uint8_t msg[] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        /* 12 */ 2, 'a', 'b', 0,
        /* 16 */ 1, 'x', 0xc0, 12,
        /* 20 */ 0xc0, 16};
    CHECK(name_read(msg, sizeof(msg), 12, out, &next) == 4);
    CHECK(next == 16 && memcmp(out, "\2ab", 4) == 0);
    CHECK(name_read(msg, sizeof(msg), 16, out, &next) == 6);
    CHECK(next == 20 && memcmp(out, "\1x\2ab", 6) == 0);
    CHECK(name_read(msg, sizeof(msg), 20, out, &next) == 6);
    CHECK(next == 22 && memcmp(out, "\1x\2ab", 6) == 0);
    /* The same bytes cut short: the pointer, then its second byte. */
    CHECK(name_read(msg, 21, 20, out, &next) == -1);
    CHECK(name_read(msg, 20, 20, out, &next) == -1);
    /* Reading at or past the end. */
    CHECK(name_read(msg, sizeof(msg), sizeof(msg), out, &next) == -1);
    CHECK(name_read(msg, sizeof(msg), 1000, out, &next) == -1);
    CHECK(name_read(msg, 0, 0, out, &next) == -1);

    /* A pointer to itself. */
    static const uint8_t self[] = {0, 0, 0, 0, 0xc0, 4};
    CHECK(name_read(self, sizeof(self), 4, out, &next) == -1);
    /* Two pointers to each other: 4 -> 6 is forward, 6 -> 4 -> 6 loops. */
    static const uint8_t pair[] = {0, 0, 0, 0, 0xc0, 6, 0xc0, 4};
    CHECK(name_read(pair, sizeof(pair), 4, out, &next) == -1);
    CHECK(name_read(pair, sizeof(pair), 6, out, &next) == -1);
    /* A pointer back to the start of its own name: "a" then pointer to
       the "a" (backwards from the pointer, not from the name). */
    static const uint8_t own[] = {0, 0, 0, 0, 1, 'a', 0xc0, 4};
    CHECK(name_read(own, sizeof(own), 4, out, &next) == -1);
    /* A pointer back into its own name that would end it at a zero byte
       inside a label: 3 "x\0y", pointer to the \0. Backwards from the
       pointer, but not before the name. */
    static const uint8_t inner[] = {0, 0, 0, 0, 3, 'x', 0, 'y', 0xc0, 6};
    CHECK(name_read(inner, sizeof(inner), 4, out, &next) == -1);
    /* The same target is fine from a name that starts after it. */
    static const uint8_t after[] = {0, 0, 0, 0, 3, 'x', 0, 'y', 0xc0, 6,
        0xc0, 6};
    CHECK(name_read(after, sizeof(after), 10, out, &next) == 1);
    CHECK(next == 12 && out[0] == 0);
    /* A forward pointer, even to a valid name. */
    static const uint8_t fwd[] = {0xc0, 2, 1, 'a', 0};
    CHECK(name_read(fwd, sizeof(fwd), 0, out, &next) == -1);
    /* Pointers past the end (14 bits of offset, high bits too). */
    static const uint8_t past[] = {1, 'a', 0, 0xc0, 0xff};
    CHECK(name_read(past, sizeof(past), 3, out, &next) == -1);
    static const uint8_t past2[] = {1, 'a', 0, 0xff, 0xff};
    CHECK(name_read(past2, sizeof(past2), 3, out, &next) == -1);
    /* A label running past the end, or missing its root label. */
    static const uint8_t label[] = {5, 'a', 'b', 'c'};
    CHECK(name_read(label, sizeof(label), 0, out, &next) == -1);
    static const uint8_t noroot[] = {3, 'a', 'b', 'c'};
    CHECK(name_read(noroot, sizeof(noroot), 0, out, &next) == -1);
    /* Reserved label types 01 and 10. */
    static const uint8_t r40[] = {0x41, 'a', 0};
    CHECK(name_read(r40, sizeof(r40), 0, out, &next) == -1);
    static const uint8_t r80[] = {0x81, 'a', 0};
    CHECK(name_read(r80, sizeof(r80), 0, out, &next) == -1);
    static const uint8_t r40b[] = {1, 'a', 0x40, 0};
    CHECK(name_read(r40b, sizeof(r40b), 0, out, &next) == -1);
    /* The root alone. */
    static const uint8_t root[] = {0};
    CHECK(name_read(root, 1, 0, out, &next) == 1 && next == 1 &&
        out[0] == 0);
}

static void test_long_names(void) {
    uint8_t out[DILL_DNS_MAXWIRE];
    size_t next;
    struct pkt p = {.len = 12};
    memset(p.b, 0, 12);
    /* 12: 63 a's; 77: 63 b's -> 12; 143: 63 c's -> 77; then 61 d's -> 143
       makes 62 + 3 * 64 + 1 = 255 bytes, and 62 e's one more. */
    put_label(&p, 63, 'a');
    put8(&p, 0);
    CHECK(p.len == 77);
    put_label(&p, 63, 'b');
    put_ptr(&p, 12);
    put_label(&p, 63, 'c');
    put_ptr(&p, 77);
    size_t d = p.len;
    put_label(&p, 61, 'd');
    put_ptr(&p, 143);
    size_t e = p.len;
    put_label(&p, 62, 'e');
    put_ptr(&p, 143);
    CHECK(name_read(p.b, p.len, d, out, &next) == 255);
    CHECK(next == e && out[0] == 61 && out[62] == 63 && out[254] == 0);
    CHECK(name_read(p.b, p.len, e, out, &next) == -1);
    /* The same without compression: four 63-byte labels are 257 bytes. */
    struct pkt u = {.len = 0};
    for(int i = 0; i < 4; i++) put_label(&u, 63, 'u');
    put8(&u, 0);
    CHECK(name_read(u.b, u.len, 0, out, &next) == -1);
    /* As an answer's owner name, the whole message is malformed. */
    struct pkt m;
    put_head(&m, 1);
    for(int i = 0; i < 4; i++) put_label(&m, 63, 'u');
    put8(&m, 0);
    put_rr_fixed(&m, 1, 4);
    put16(&m, 0);
    put16(&m, 0);
    expect(m.b, m.len, DILL_DNS_MALFORMED, 0);
}

static void test_hops(void) {
    uint8_t out[DILL_DNS_MAXWIRE];
    size_t next;
    /* At 12 the root; every later pointer points at the one before it,
       strictly backwards. 127 hops are allowed, 128 are not. */
    struct pkt p = {.len = 12};
    memset(p.b, 0, 13);
    p.len = 13;
    size_t prev = 12;
    for(int i = 0; i < 128; i++) {
        size_t here = p.len;
        put_ptr(&p, prev);
        prev = here;
    }
    size_t last = prev;
    CHECK(name_read(p.b, p.len, last - 2, out, &next) == 1);
    CHECK(next == last && out[0] == 0);
    CHECK(name_read(p.b, p.len, last, out, &next) == -1);
}

/* ---- Malformed messages ------------------------------------------------- */

static void test_short_header(void) {
    static const uint8_t msg[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    for(size_t len = 0; len < 12; len++)
        expect(msg, len, DILL_DNS_MALFORMED, 0);
    /* A header alone cannot hold the question it announces. */
    expect(msg, 12, DILL_DNS_MALFORMED, 0);
    expect(NULL, 0, DILL_DNS_MALFORMED, 0);
}

/* Every prefix of the CNAME chain: malformed until the last answer record
   is complete; from there on the same result as the whole message, as the
   additional section is never read. */
static void test_prefixes(void) {
    for(size_t len = 0; len <= sizeof(chain); len++) {
        struct dill_dns_addr addrs[4];
        int count = -1;
        enum dill_dns_result rc = parse(&q_a, chain, len, addrs, 4, &count);
        if(len < CHAIN_ANSWERS_END) {
            CHECK(rc == DILL_DNS_MALFORMED && count == 0);
            continue;
        }
        CHECK(rc == DILL_DNS_OK && count == 1);
        CHECK(memcmp(addrs[0].bytes, "\x0a\0\0\x07", 4) == 0);
    }
}

static void test_rdlength(void) {
    /* RDLENGTH one byte beyond the message. */
    uint8_t msg[] = {HEAD(RESP(0), 1, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    msg[sizeof(msg) - 5] = 5;
    expect(msg, sizeof(msg), DILL_DNS_MALFORMED, 0);
    /* RDLENGTH far beyond, on a type that is otherwise skipped. */
    msg[sizeof(msg) - 13] = 16;
    msg[sizeof(msg) - 6] = 0xff;
    expect(msg, sizeof(msg), DILL_DNS_MALFORMED, 0);
    /* An A record with 5 bytes that are all there. */
    static const uint8_t five[] = {
        HEAD(RESP(0), 1, 0, 0), QUESTION(1),
        0xc0, 0x0c, W16(1), W16(1), TTL, W16(5), 1, 2, 3, 4, 5};
    expect(five, sizeof(five), DILL_DNS_MALFORMED, 0);
    /* Or 3 bytes, followed by a good record. */
    static const uint8_t three[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1),
        0xc0, 0x0c, W16(1), W16(1), TTL, W16(3), 1, 2, 3,
        A_WWW(1, 2, 3, 4)};
    expect(three, sizeof(three), DILL_DNS_MALFORMED, 0);
    /* A bad A record for some other owner is just as malformed. */
    static const uint8_t other[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1),
        A_WWW(1, 2, 3, 4),
        0xc0, 16, W16(1), W16(1), TTL, W16(5), 1, 2, 3, 4, 5};
    expect(other, sizeof(other), DILL_DNS_MALFORMED, 0);
    /* ANCOUNT promises more records than there are. */
    uint8_t more[] = {HEAD(RESP(0), 2, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4)};
    expect(more, sizeof(more), DILL_DNS_MALFORMED, 0);
    more[7] = 1;
    expect(more, sizeof(more), DILL_DNS_OK, 1);
    /* The fixed part of a record cut short. */
    expect(more, sizeof(more) - 5, DILL_DNS_MALFORMED, 0);
}

static void test_bad_answer_names(void) {
    /* Owner using a reserved label type, a forward pointer, a pointer to
       itself, a pointer past the end. */
    static const uint8_t owners[][2] = {
        {0x40, 0x0c}, {0x80, 0x0c}, {0xc0, 40}, {0xc0, 33}, {0xc3, 0xff}};
    for(size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
        uint8_t msg[] = {HEAD(RESP(0), 1, 0, 0), QUESTION(1),
            A_WWW(1, 2, 3, 4)};
        msg[33] = owners[i][0];
        msg[34] = owners[i][1];
        expect(msg, sizeof(msg), DILL_DNS_MALFORMED, 0);
    }
    /* A question name that loops is malformed, not a mismatch. */
    static const uint8_t qloop[] = {HEAD(RESP(0), 0, 0, 0), 0xc0, 12,
        W16(1), W16(1)};
    expect(qloop, sizeof(qloop), DILL_DNS_MALFORMED, 0);
}

/* ---- Search list -------------------------------------------------------- */

static void test_search(void) {
    char out[300];
    char name[300];
    CHECK(dill_dns_expand(out, sizeof(out), "www", "example.com") == 15);
    CHECK(strcmp(out, "www.example.com") == 0);
    CHECK(dill_dns_expand(out, sizeof(out), "www", "example.com.") == 15);
    CHECK(strcmp(out, "www.example.com") == 0);
    CHECK(dill_dns_expand(out, sizeof(out), "a.b", "c") == 5);
    CHECK(strcmp(out, "a.b.c") == 0);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "www.", "example.com"),
        EINVAL);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "www", ""), EINVAL);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "www", "."), EINVAL);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "", "example.com"), EINVAL);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "a..b", "com"), EINVAL);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "www", "a..com"), EINVAL);
    /* Nothing is written on failure. */
    memset(out, 'Z', sizeof(out));
    CHECK_ERR(dill_dns_expand(out, sizeof(out), "www", "a..com"), EINVAL);
    CHECK_ERR(dill_dns_expand(out, 15, "www", "example.com"), EMSGSIZE);
    CHECK(out[0] == 'Z' && out[14] == 'Z');
    CHECK(dill_dns_expand(out, 16, "www", "example.com") == 15);
    /* 249 + 1 + 3 = 253 characters fit, one more does not. */
    long_name(name, 249);
    CHECK(dill_dns_expand(out, sizeof(out), name, "a.b") == 253);
    long_name(name, 250);
    CHECK_ERR(dill_dns_expand(out, sizeof(out), name, "a.b"), EINVAL);

    CHECK(dill_dns_bare_first("www", 1) == 0);
    CHECK(dill_dns_bare_first("www.example", 1) == 1);
    CHECK(dill_dns_bare_first("a.b", 2) == 0);
    CHECK(dill_dns_bare_first("a.b.c", 2) == 1);
    CHECK(dill_dns_bare_first("www.", 5) == 1);
    CHECK(dill_dns_bare_first("x", 0) == 1);
}

static void expect_candidates(const char *name, int ndots,
      const char *const *search, int nsearch, const char *const *want,
      int nwant) {
    char out[DILL_DNS_MAXTEXT + 2];
    for(int i = 0; i < nwant; i++) {
        errno = 0;
        int rc = dill_dns_candidate(out, sizeof(out), name, ndots, search,
            nsearch, i);
        if(want[i]) CHECK(rc == 1 && strcmp(out, want[i]) == 0);
        else CHECK(rc == -1 && errno == EINVAL);
    }
    CHECK(dill_dns_candidate(out, sizeof(out), name, ndots, search, nsearch,
        nwant) == 0);
    CHECK(dill_dns_candidate(out, sizeof(out), name, ndots, search, nsearch,
        nwant + 5) == 0);
    CHECK(dill_dns_candidate(out, sizeof(out), name, ndots, search, nsearch,
        -1) == 0);
}

static void test_candidates(void) {
    static const char *const search[] = {"a.com", "b.org"};
    static const char *const w1[] = {"www.a.com", "www.b.org", "www"};
    expect_candidates("www", 1, search, 2, w1, 3);
    static const char *const w2[] = {"www.x", "www.x.a.com", "www.x.b.org"};
    expect_candidates("www.x", 1, search, 2, w2, 3);
    static const char *const w3[] = {"www.x.a.com", "www.x.b.org", "www.x"};
    expect_candidates("www.x", 2, search, 2, w3, 3);
    static const char *const w4[] = {"www."};
    expect_candidates("www.", 1, search, 2, w4, 1);
    static const char *const w5[] = {"www"};
    expect_candidates("www", 1, NULL, 0, w5, 1);
    /* A candidate too long to form is reported and skipped. */
    static const char *const search2[] = {"abcdefghijk.com", "x.y"};
    char name[300];
    long_name(name, 243);
    char want[300];
    long_name(want, 243);
    strcat(want, ".x.y");
    const char *const w6[] = {name, NULL, want};
    expect_candidates(name, 1, search2, 2, w6, 3);
    /* An invalid name gives nothing usable. */
    static const char *const w7[] = {NULL, NULL, NULL};
    expect_candidates("a..b", 1, search, 2, w7, 3);
    /* The caller's buffer is too small. */
    char small[4];
    CHECK_ERR(dill_dns_candidate(small, sizeof(small), "www", 1, search, 2,
        0), EMSGSIZE);
    CHECK(dill_dns_candidate(small, sizeof(small), "www", 1, search, 2,
        2) == 1);
    CHECK(strcmp(small, "www") == 0);
    CHECK_ERR(dill_dns_candidate(small, sizeof(small), "www.", 1, search, 2,
        0), EMSGSIZE);
}

/* ---- Fuzz --------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 32);
}

/* One random change: a byte, a bit, a pointer, a count, the length. */
static void mutate(uint8_t *b, size_t *len, size_t cap) {
    size_t pos = *len ? rnd() % *len : 0;
    switch(rnd() % 7) {
    case 0: if(*len) b[pos] = (uint8_t)rnd(); break;
    case 1: if(*len) b[pos] ^= (uint8_t)(1 << (rnd() % 8)); break;
    case 2:
        if(*len >= 2 && pos + 1 < *len) {
            b[pos] = 0xc0 | (rnd() % 2 ? (uint8_t)(rnd() & 0x3f) : 0);
            b[pos + 1] = (uint8_t)(rnd() % (*len + 8));
        }
        break;
    case 3: if(*len >= 12) b[6 + 2 * (rnd() % 3) + 1] = rnd() % 8; break;
    case 4: *len = rnd() % (*len + 1); break;
    case 5:
        while(*len < cap && rnd() % 4) b[(*len)++] = (uint8_t)rnd();
        break;
    case 6: if(*len) b[pos] = (uint8_t)(rnd() % 64); break;
    }
}

/* A wire name must be labels of 1..63 bytes ending in the root, n bytes
   in all. */
static void check_wire(const uint8_t *name, int n) {
    CHECK(n >= 1 && n <= DILL_DNS_MAXWIRE);
    int i = 0;
    while(name[i] != 0) {
        CHECK(name[i] <= 63);
        i += 1 + name[i];
        CHECK(i < n);
    }
    CHECK(i == n - 1);
}

static void fuzz_one(const struct dill_dns_question *q, const uint8_t *msg,
      size_t len, int *seen) {
    struct dill_dns_addr a1[3], a2[3];
    int c1 = -1, c2 = -1;
    enum dill_dns_result r1 = dill_dns_parse(q, msg, len, a1, 3, &c1);
    enum dill_dns_result r2 = dill_dns_parse(q, msg, len, a2, 3, &c2);
    CHECK(r1 >= DILL_DNS_OK && r1 <= DILL_DNS_MALFORMED);
    CHECK(r1 == r2 && c1 == c2);
    CHECK(c1 >= 0 && c1 <= 3);
    CHECK(r1 == DILL_DNS_OK || c1 == 0);
    for(int i = 0; i < c1; i++) {
        CHECK(a1[i].len == (q->type == DILL_DNS_TYPE_A ? 4 : 16));
        CHECK(memcmp(&a1[i], &a2[i], sizeof(a1[i])) == 0);
    }
    seen[r1]++;
    uint8_t out[DILL_DNS_MAXWIRE];
    size_t next;
    size_t pos = rnd() % (len + 2);
    int n = dill_dns_name_read(msg, len, pos, out, &next);
    if(n >= 0) {
        check_wire(out, n);
        CHECK(next > pos && next <= len);
    }
}

static void test_fuzz(void) {
    static const uint8_t simple[] = {
        HEAD(RESP(0), 2, 0, 0), QUESTION(1), A_WWW(1, 2, 3, 4),
        A_WWW(5, 6, 7, 8)};
    static const uint8_t aaaa[] = {
        HEAD(RESP(0), 1, 0, 1), QUESTION(28),
        0xc0, 0x0c, W16(28), W16(1), TTL, W16(16),
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0xc0, 0x0c, W16(1), W16(1), TTL, W16(4), 1, 2, 3, 4};
    static const uint8_t nx[] = {
        HEAD(RESP(3), 0, 1, 0), QUESTION(1),
        0xc0, 16, W16(6), W16(1), TTL, W16(2), 0xc0, 16};
    const struct {
        const uint8_t *msg;
        size_t len;
        const struct dill_dns_question *q;
    } seeds[] = {
        {simple, sizeof(simple), &q_a}, {aaaa, sizeof(aaaa), &q_aaaa},
        {nx, sizeof(nx), &q_a}, {chain, sizeof(chain), &q_a}};
    int nseeds = sizeof(seeds) / sizeof(seeds[0]);
    int seen[DILL_DNS_MALFORMED + 1] = {0};
    uint8_t work[512];
    for(int iter = 0; iter < 200000; iter++) {
        int s = (int)(rnd() % (uint32_t)nseeds);
        size_t len = seeds[s].len;
        memcpy(work, seeds[s].msg, len);
        int nmut = 1 + (int)(rnd() % 4);
        for(int m = 0; m < nmut; m++) mutate(work, &len, sizeof(work));
        uint8_t *msg = malloc(len ? len : 1);
        CHECK(msg);
        memcpy(msg, work, len);
        fuzz_one(seeds[s].q, msg, len, seen);
        free(msg);
    }
    /* The mutations reach the interesting outcomes, not only the first
       check. */
    CHECK(seen[DILL_DNS_OK] > 1000);
    CHECK(seen[DILL_DNS_MALFORMED] > 1000);
    CHECK(seen[DILL_DNS_MISMATCH] > 1000);
    CHECK(seen[DILL_DNS_NXDOMAIN] > 100);
}

int main(void) {
    CHECK(dill_dns_question(&q_a, 0x1234, "www.example.com",
        DILL_DNS_TYPE_A) == 0);
    CHECK(dill_dns_question(&q_aaaa, 0x1234, "www.example.com",
        DILL_DNS_TYPE_AAAA) == 0);
    test_query();
    test_query_names();
    test_simple();
    test_aaaa();
    test_several();
    test_cname();
    test_cname_loops();
    test_other_owner();
    test_rcodes();
    test_truncated_bit();
    test_mismatch();
    test_case();
    test_name_equal();
    test_pointers();
    test_long_names();
    test_hops();
    test_short_header();
    test_prefixes();
    test_rdlength();
    test_bad_answer_names();
    test_search();
    test_candidates();
    test_fuzz();
    return 0;
}
