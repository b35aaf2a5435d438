/*
 * fuzz/suffix.c: SUFFIX delimiter scanning (suffix.c) over the fuzzer's
 * input served by fuzz/memsock.h. The first bytes give the delimiter (1 to
 * 32 bytes, taken from the input so that self-overlapping ones come up)
 * and the shape of the receive lists (up to 6 elements of odd lengths,
 * empty ones and NULL bases among them); the rest is the stream. Messages
 * are received until an error, every fourth one dropped with
 * mrecvl(NULL, NULL). Each result is checked against a plain leftmost
 * search of the input: the size, the stream consumed exactly through the
 * delimiter and never beyond (also on EMSGSIZE), the payload in the list,
 * the list put back exactly, EPIPE when no delimiter is left, and
 * ECONNRESET afterwards. A send checks the bytes written: payload, then
 * delimiter.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "memsock.h"

#define MAX_PIECES 6

static uint8_t take(const uint8_t **data, size_t *size) {
    if(*size == 0) return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

/* The first occurrence of delim in data[from..len), or len. */
static size_t find(const uint8_t *data, size_t from, size_t len,
      const uint8_t *delim, size_t dlen) {
    for(size_t i = from; i + dlen <= len; i++)
        if(memcmp(data + i, delim, dlen) == 0) return i;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t delim[32];
    size_t dlen = (size_t)(take(&data, &size) % 32) + 1;
    for(size_t i = 0; i < dlen; i++) delim[i] = take(&data, &size);
    size_t n = (size_t)(take(&data, &size) % MAX_PIECES) + 1;
    size_t lens[MAX_PIECES];
    int null_base[MAX_PIECES];
    for(size_t i = 0; i < n; i++) {
        uint8_t b = take(&data, &size);
        lens[i] = (size_t)(b & 0x3f);
        null_base[i] = (b & 0xc0) == 0xc0;
    }

    int s = memsock_make(data, size);
    struct memsock *m = (struct memsock *)((char *)dill_hquery(s,
        dill_bsock_type) - offsetof(struct memsock, bvfs));
    int p = dill_suffix_attach(s, delim, dlen);
    if(p < 0) abort();
    if(dill_msend(p, data, size < 40 ? size : 40, -1) != 0) abort();
    if(m->sent != (size < 40 ? size : 40) + dlen) abort();

    uint8_t bufs[MAX_PIECES][64];
    struct dill_iolist iol[MAX_PIECES], copy[MAX_PIECES];
    size_t room = 0;
    for(size_t i = 0; i < n; i++) {
        iol[i].iol_base = null_base[i] ? NULL : bufs[i];
        iol[i].iol_len = lens[i];
        iol[i].iol_next = i + 1 < n ? &iol[i + 1] : NULL;
        iol[i].iol_rsvd = 0;
        room += lens[i];
    }
    memcpy(copy, iol, sizeof(iol));

    for(int call = 0;; call++) {
        int drop = call % 4 == 3;
        size_t at = m->pos;
        memset(bufs, 0xee, sizeof(bufs));
        ssize_t got = drop ? dill_mrecvl(p, NULL, NULL, -1) :
            dill_mrecvl(p, &iol[0], &iol[n - 1], -1);
        int err = errno;
        if(memcmp(copy, iol, sizeof(iol)) != 0) abort();
        size_t end = find(data, at, size, delim, dlen);
        if(end == size) {
            if(got != -1 || err != EPIPE) abort();
            break;
        }
        size_t len = end - at;
        if(m->pos != end + dlen) abort();
        if(!drop && len > room) {
            if(got != -1 || err != EMSGSIZE) abort();
            break;
        }
        if(got < 0 || (size_t)got != len) abort();
        /* The payload, piece by piece; NULL bases drop their share. */
        size_t off = 0;
        for(size_t i = 0; i < n && !drop && off < len; i++) {
            size_t k = len - off < lens[i] ? len - off : lens[i];
            if(!null_base[i] && memcmp(bufs[i], data + at + off, k) != 0)
                abort();
            off += k;
        }
    }
    if(dill_mrecvl(p, NULL, NULL, -1) != -1 || errno != ECONNRESET) abort();
    if(dill_suffix_detach(p, -1) != -1 || errno != ECONNRESET) abort();
    return 0;
}
