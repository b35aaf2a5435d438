/*
 * sha1.h: SHA-1 (FIPS 180-4), for the WebSocket accept key (RFC 6455
 * §4.2.2) and nothing else: SHA-1 is broken for collision resistance and
 * must not be used where that matters.
 */
#ifndef DILL_SHA1_H_INCLUDED
#define DILL_SHA1_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define DILL_SHA1_SIZE 20

struct dill_sha1 {
    uint32_t h[5];
    uint64_t bytes;       /* message length so far */
    uint8_t block[64];    /* the partial block not hashed yet */
    size_t used;          /* bytes in block */
};

void dill_sha1_init(struct dill_sha1 *s);
void dill_sha1_update(struct dill_sha1 *s, const void *data, size_t len);
/* Pads, hashes the last block(s) and writes the 20-byte digest. The state
   must be initialised again before further use. */
void dill_sha1_final(struct dill_sha1 *s, uint8_t digest[DILL_SHA1_SIZE]);

#endif
