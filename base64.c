/*
 * base64.c: base64 encoding and decoding (RFC 4648 §4), with the padded
 * output RFC 6455 keys use and a decoder that stops at padding.
 */
#include "config.h"

#include "base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

long dill_base64_encode(const uint8_t *in, size_t len, char *out,
      size_t outlen) {
    if(len > ((size_t)-1 - 3) / 4 * 3 || outlen < DILL_BASE64_LEN(len) + 1)
        return -1;
    char *o = out;
    for(; len >= 3; in += 3, len -= 3) {
        uint32_t v = (uint32_t)in[0] << 16 | (uint32_t)in[1] << 8 | in[2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if(len) {
        uint32_t v = (uint32_t)in[0] << 16;
        if(len == 2) v |= (uint32_t)in[1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = len == 2 ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return (long)(o - out);
}

/* The 6-bit value of c, -1 for padding and anything outside the alphabet,
   -2 for whitespace. */
static int value(char c) {
    if(c >= 'A' && c <= 'Z') return c - 'A';
    if(c >= 'a' && c <= 'z') return c - 'a' + 26;
    if(c >= '0' && c <= '9') return c - '0' + 52;
    if(c == '+') return 62;
    if(c == '/') return 63;
    if(c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
          c == '\f')
        return -2;
    return -1;
}

long dill_base64_decode(const char *in, uint8_t *out, size_t outlen) {
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for(; *in; in++) {
        int v = value(*in);
        if(v == -2) continue;
        if(v < 0) break;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if(bits >= 8) {
            bits -= 8;
            if(n == outlen) return -1;
            out[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)n;
}
