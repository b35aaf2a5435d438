/*
 * sha1.c: SHA-1 as FIPS 180-4 §6.1 describes it: 512-bit blocks, a
 * message schedule of 80 words kept in a rolling window of 16, and the
 * padding of §5.1.1 (a 1 bit, zeros, the 64-bit bit length).
 */
#include "config.h"

#include <string.h>

#include "sha1.h"

static uint32_t rol(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
        (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t x) {
    p[0] = (uint8_t)(x >> 24);
    p[1] = (uint8_t)(x >> 16);
    p[2] = (uint8_t)(x >> 8);
    p[3] = (uint8_t)x;
}

static void compress(uint32_t h[5], const uint8_t *block) {
    uint32_t w[16];
    for(int i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for(int t = 0; t < 80; t++) {
        uint32_t wt;
        if(t < 16) {
            wt = w[t];
        } else {
            /* W(t) = ROTL1(W(t-3) ^ W(t-8) ^ W(t-14) ^ W(t-16)), with the
               16 most recent words kept modulo 16. */
            wt = rol(w[(t + 13) & 15] ^ w[(t + 8) & 15] ^ w[(t + 2) & 15] ^
                w[t & 15], 1);
            w[t & 15] = wt;
        }
        uint32_t f, k;
        if(t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if(t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if(t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t temp = rol(a, 5) + f + e + k + wt;
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = temp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void dill_sha1_init(struct dill_sha1 *s) {
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
    s->h[4] = 0xc3d2e1f0;
    s->bytes = 0;
    s->used = 0;
}

void dill_sha1_update(struct dill_sha1 *s, const void *data, size_t len) {
    const uint8_t *p = data;
    s->bytes += len;
    if(s->used) {
        size_t n = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, p, n);
        s->used += n;
        p += n;
        len -= n;
        if(s->used < 64) return;
        compress(s->h, s->block);
        s->used = 0;
    }
    for(; len >= 64; p += 64, len -= 64) compress(s->h, p);
    memcpy(s->block, p, len);
    s->used = len;
}

void dill_sha1_final(struct dill_sha1 *s, uint8_t digest[DILL_SHA1_SIZE]) {
    uint64_t bits = s->bytes * 8;
    s->block[s->used++] = 0x80;
    if(s->used > 56) {
        /* No room for the length: it goes in one more block. */
        memset(s->block + s->used, 0, 64 - s->used);
        compress(s->h, s->block);
        s->used = 0;
    }
    memset(s->block + s->used, 0, 56 - s->used);
    store_be32(s->block + 56, (uint32_t)(bits >> 32));
    store_be32(s->block + 60, (uint32_t)bits);
    compress(s->h, s->block);
    for(int i = 0; i < 5; i++) store_be32(digest + 4 * i, s->h[i]);
}
