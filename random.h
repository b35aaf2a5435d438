/*
 * random.h: bytes from the kernel's random generator, for what must not be
 * guessed by a peer: DNS query ids (resolver.c) and WebSocket masking keys
 * and handshake keys (ws.c).
 */
#ifndef DILL_RANDOM_H_INCLUDED
#define DILL_RANDOM_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* Fill buf with len random bytes: getrandom where it exists (never
   waiting for the pool at early boot), else /dev/urandom. 0, or -1 with
   errno (no source: ENOSYS, ENOENT, EMFILE, ...; buf then holds what was
   got, the rest unchanged). */
int dill_random_fill(uint8_t *buf, size_t len);

#endif
