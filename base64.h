/*
 * base64.h: the base64 alphabet of RFC 4648 §4 (A-Z a-z 0-9 + /, with =
 * padding), for the WebSocket keys (RFC 6455 §4.1, §4.2.2).
 */
#ifndef DILL_BASE64_H_INCLUDED
#define DILL_BASE64_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* Characters the encoding of len bytes takes, padding included, without
   the terminating NUL. */
#define DILL_BASE64_LEN(len) (((len) + 2) / 3 * 4)

/* Encode len bytes into out, padded, NUL-terminated. out must hold
   DILL_BASE64_LEN(len) + 1 bytes; outlen says how many it holds. Returns
   the characters written (without the NUL), or -1 if out is too small
   (nothing written then). */
long dill_base64_encode(const uint8_t *in, size_t len, char *out,
    size_t outlen);

/* Decode the NUL-terminated in the lenient way RFC 6455 peers need:
   whitespace is skipped, decoding stops at the first = or at any other
   character outside the alphabet, and bits left over that do not make a
   whole byte are dropped. Returns the bytes decoded, or -1 if there are
   more than outlen (out then holds the first outlen). */
long dill_base64_decode(const char *in, uint8_t *out, size_t outlen);

#endif
