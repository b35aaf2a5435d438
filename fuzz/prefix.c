/*
 * fuzz/prefix.c: PREFIX header decoding (prefix.c) over the fuzzer's
 * input served by fuzz/memsock.h. The first bytes choose the header length
 * (1 to 12, or 70 for a header read in pieces), the byte order and the
 * shape of the receive lists (up to 6 elements of odd lengths, empty ones
 * and NULL bases among them); the rest is the stream. Messages are
 * received until an error, every fourth one dropped with mrecvl(NULL,
 * NULL). Each result is checked against a decoding of the input by hand:
 * the size, the bytes consumed from the stream (header and payload, or
 * only the header on EMSGSIZE), the payload in the list, the list put
 * back exactly, the errno (EPIPE or EMSGSIZE) and ECONNRESET afterwards.
 * A send of a message of a length from the input checks EMSGSIZE for
 * lengths the header cannot hold.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "memsock.h"

#define MAX_PIECES 6

struct shape {
    size_t n;
    size_t len[MAX_PIECES];
    int null_base[MAX_PIECES];
};

static uint8_t take(const uint8_t **data, size_t *size) {
    if(*size == 0) return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

/* The expected length in the header at data (hdrlen bytes available), or
   -1 when a byte above the low-order 8 is set. */
static int decode(const uint8_t *data, size_t hdrlen, int little,
      uint64_t *len) {
    *len = 0;
    for(size_t i = 0; i < hdrlen; i++) {
        size_t rank = little ? i : hdrlen - 1 - i;
        if(rank >= 8) {
            if(data[i]) return -1;
        } else {
            *len |= (uint64_t)data[i] << (8 * rank);
        }
    }
    return 0;
}

static void check_send(int p, size_t hdrlen, uint8_t sel,
      struct memsock *m) {
    static const uint8_t payload[512];
    size_t len = (size_t)sel + (sel & 1 ? 256 : 0);
    size_t before = m->sent;
    int rc = dill_msend(p, payload, len, -1);
    int fits = hdrlen >= 2 || len < 256;
    if(fits) {
        if(rc != 0 || m->sent != before + hdrlen + len) abort();
    } else {
        if(rc != -1 || errno != EMSGSIZE || m->sent != before) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t sel = take(&data, &size);
    size_t hdrlen = sel == 255 ? 70 : (size_t)(sel % 12) + 1;
    int little = take(&data, &size) & 1;
    uint8_t send_sel = take(&data, &size);
    struct shape shape;
    shape.n = (size_t)(take(&data, &size) % MAX_PIECES) + 1;
    for(size_t i = 0; i < shape.n; i++) {
        uint8_t b = take(&data, &size);
        shape.len[i] = (size_t)(b & 0x3f);
        shape.null_base[i] = (b & 0xc0) == 0xc0;
    }

    int s = memsock_make(data, size);
    struct memsock *m = (struct memsock *)((char *)dill_hquery(s,
        dill_bsock_type) - offsetof(struct memsock, bvfs));
    int p = dill_prefix_attach(s, hdrlen, little);
    if(p < 0) abort();
    check_send(p, hdrlen, send_sel, m);

    uint8_t bufs[MAX_PIECES][64];
    struct dill_iolist iol[MAX_PIECES], copy[MAX_PIECES];
    size_t room = 0;
    for(size_t i = 0; i < shape.n; i++) {
        iol[i].iol_base = shape.null_base[i] ? NULL : bufs[i];
        iol[i].iol_len = shape.len[i];
        iol[i].iol_next = i + 1 < shape.n ? &iol[i + 1] : NULL;
        iol[i].iol_rsvd = 0;
        room += shape.len[i];
    }
    memcpy(copy, iol, sizeof(iol));

    for(int call = 0;; call++) {
        int drop = call % 4 == 3;
        size_t at = m->pos;
        size_t left = m->len - at;
        memset(bufs, 0xee, sizeof(bufs));
        ssize_t n = drop ? dill_mrecvl(p, NULL, NULL, -1) :
            dill_mrecvl(p, &iol[0], &iol[shape.n - 1], -1);
        int err = errno;
        if(memcmp(copy, iol, sizeof(iol)) != 0) abort();
        uint64_t len = 0;
        if(left < hdrlen) {
            /* The stream ends in the header. */
            if(n != -1 || err != EPIPE) abort();
            break;
        }
        int fits = decode(data + at, hdrlen, little, &len) == 0 &&
            len <= SSIZE_MAX && (drop || len <= room);
        if(!fits) {
            if(n != -1 || err != EMSGSIZE || m->pos != at + hdrlen) abort();
            break;
        }
        if(left - hdrlen < len) {
            if(n != -1 || err != EPIPE) abort();
            break;
        }
        if(n < 0 || (uint64_t)n != len || m->pos != at + hdrlen + len)
            abort();
        /* The payload, piece by piece; NULL bases drop their share. */
        size_t off = 0;
        for(size_t i = 0; i < shape.n && !drop && off < len; i++) {
            size_t k = len - off < shape.len[i] ? len - off : shape.len[i];
            if(!shape.null_base[i] &&
                  memcmp(bufs[i], data + at + hdrlen + off, k) != 0)
                abort();
            off += k;
        }
    }
    if(dill_mrecvl(p, NULL, NULL, -1) != -1 || errno != ECONNRESET) abort();
    if(dill_prefix_detach(p) != -1 || errno != ECONNRESET) abort();
    return 0;
}
