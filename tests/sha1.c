/*
 * tests/sha1.c: SHA-1 (sha1.c) against the FIPS 180 examples ("abc", the
 * 448-bit message, one million 'a'), the empty message, the 896-bit
 * message of FIPS 180-2's SHA-512 example, messages whose length sits at
 * each padding boundary (55, 56, 57, 63, 64, 65, 119, 120, 128 bytes;
 * digests from an independent implementation), and the same digests when
 * the message is fed in pieces of every size from 1 to 130 bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sha1.h"
#include "check.h"

static void hex(const uint8_t *d, char *out) {
    for(int i = 0; i < DILL_SHA1_SIZE; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

/* Digest of msg fed in pieces of step bytes (0: all at once), in hex. */
static void digest(const void *msg, size_t len, size_t step, char *out) {
    struct dill_sha1 s;
    dill_sha1_init(&s);
    if(step == 0) {
        dill_sha1_update(&s, msg, len);
    } else {
        for(size_t i = 0; i < len; i += step)
            dill_sha1_update(&s, (const uint8_t *)msg + i,
                len - i < step ? len - i : step);
    }
    uint8_t d[DILL_SHA1_SIZE];
    dill_sha1_final(&s, d);
    hex(d, out);
}

static void check_digest(const void *msg, size_t len, const char *expected) {
    char out[2 * DILL_SHA1_SIZE + 1];
    digest(msg, len, 0, out);
    if(strcmp(out, expected) != 0)
        fprintf(stderr, "length %zu: got %s, expected %s\n", len, out,
            expected);
    CHECK(strcmp(out, expected) == 0);
    for(size_t step = 1; step <= 130; step++) {
        digest(msg, len, step, out);
        CHECK(strcmp(out, expected) == 0);
    }
}

static void test_fips(void) {
    check_digest("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *m448 =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(strlen(m448) == 56);
    check_digest(m448, 56, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    check_digest("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
        "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    CHECK(strlen(m896) == 112);
    check_digest(m896, 112, "a49b2446a02c645bf419f995b67091253a04a259");
}

static void test_million(void) {
    static uint8_t a[1000000];
    memset(a, 'a', sizeof(a));
    char out[2 * DILL_SHA1_SIZE + 1];
    const char *expected = "34aa973cd4c4daa4f61eeb2bdbad27316534016f";
    digest(a, sizeof(a), 0, out);
    CHECK(strcmp(out, expected) == 0);
    /* FIPS 180's own way: a thousand updates of 1000 'a', and pieces that
       straddle block boundaries. */
    digest(a, sizeof(a), 1000, out);
    CHECK(strcmp(out, expected) == 0);
    digest(a, sizeof(a), 77, out);
    CHECK(strcmp(out, expected) == 0);
}

static void test_boundaries(void) {
    static const struct { size_t len; const char *sha1; } v[] = {
        {55, "a83f94113f5292bb7ed9d7df07178ad7d931341a"},
        {56, "372e1b20329e0b2862472089ac00c55505116275"},
        {57, "f5ae9bfabee67dd2d35e5473a943ddb5b7fef1d2"},
        {63, "6944938dc131b6453b7d9637cfcbad8a3db28104"},
        {64, "aec4b7f13a2b75ec13bc0c3f13fa55caf97e621d"},
        {65, "29a20455c2f21fa85c66014ff3b75bfcce5aaba5"},
        {119, "43610a35bbf6783ba62fc82d421abc8b2f3e1abf"},
        {120, "482b555c1bda1cd10f9bdc34081249810af9fd77"},
        {128, "ddde2e96d57b78eda0da1151110a11eaa1d21d7b"},
    };
    uint8_t msg[128];
    for(size_t i = 0; i < sizeof(msg); i++) msg[i] = (uint8_t)(i * 7 % 251);
    for(size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        check_digest(msg, v[i].len, v[i].sha1);
}

int main(void) {
    test_fips();
    test_million();
    test_boundaries();
    return 0;
}
