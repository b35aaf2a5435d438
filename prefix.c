/*
 * prefix.c: PREFIX (sockets.md §11), message sockets over any bytestream,
 * each message framed by a header of hdrlen bytes that holds its length,
 * big or little endian. Nothing else goes on the wire: no handshake and no
 * terminator, so detach hands back the bytestream exactly where the last
 * message ended. Each direction keeps its own sticky failure state.
 *
 * Lengths are 64-bit numbers. A header longer than 8 bytes is accepted as
 * the original accepts it: the bytes beyond the 8 low-order ones are sent
 * as zero and must be zero on receive (a length of 2^64 or more fits in no
 * buffer: EMSGSIZE).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "iol.h"
#include "layer.h"
#include "now.h"
#include "utils.h"

static const int prefix_type_id;
static const void *prefix_type = &prefix_type_id;

/* hdrlen shares a 64-bit word with the flags. No one can send or receive
   a header of 2^56 bytes, so nothing real is refused. */
#define HDRLEN_BITS 56
#define HDRLEN_MAX ((UINT64_C(1) << HDRLEN_BITS) - 1)

struct prefix_sock {
    struct dill_layer layer;
    struct dill_msock_vfs mvfs;
    uint64_t hdrlen : HDRLEN_BITS;
    uint64_t little_endian : 1;
    uint64_t in_busy : 1;
    uint64_t out_busy : 1;
    uint64_t in_failed : 1;
    uint64_t out_failed : 1;
};

DILL_FITS(struct prefix_sock, struct dill_prefix_storage);

/* Headers are built and read in pieces of this size, so that any hdrlen
   works with a small buffer; up to this size a message is one bsendl. */
#define CHUNK 64

/* Dropping a message reads it in pieces this large, looking at the clock
   between them: a peer announcing an endless message and sending it as
   fast as we read cannot hold the call past its deadline. */
#define DROP_PIECE 65536

/* ---- The header ---------------------------------------------------------- */

/* Significance of byte i of the header: 0 for the lowest-order byte. */
static uint64_t rank(uint64_t i, uint64_t hdrlen, int little_endian) {
    return little_endian ? i : hdrlen - 1 - i;
}

/* Bytes [at, at + n) of the header that carries len. */
static void encode(uint8_t *out, uint64_t at, size_t n, uint64_t len,
      uint64_t hdrlen, int little_endian) {
    for(size_t i = 0; i < n; i++) {
        uint64_t r = rank(at + i, hdrlen, little_endian);
        out[i] = r < 8 ? (uint8_t)(len >> (8 * r)) : 0;
    }
}

/* Folds bytes [at, at + n) of a header into *len; 0, or -1 when a byte of
   rank 8 or more is not zero. */
static int decode(const uint8_t *in, uint64_t at, size_t n, uint64_t *len,
      uint64_t hdrlen, int little_endian) {
    int fits = 1;
    for(size_t i = 0; i < n; i++) {
        uint64_t r = rank(at + i, hdrlen, little_endian);
        if(r < 8) *len |= (uint64_t)in[i] << (8 * r);
        else if(in[i]) fits = 0;
    }
    return fits ? 0 : -1;
}

/* Whether a length can be written in hdrlen bytes. */
static int representable(uint64_t len, uint64_t hdrlen) {
    return hdrlen >= 8 || (len >> (8 * hdrlen)) == 0;
}

/* ---- Sending ------------------------------------------------------------- */

/* Header and payload: all but the last piece of a long header go out on
   their own, the last piece in front of the caller's list. */
static int send_message(int u, uint64_t hdrlen, int little_endian,
      struct dill_iolist *first, struct dill_iolist *last, size_t len,
      int64_t deadline) {
    uint8_t hdr[CHUNK];
    uint64_t at = 0;
    while(hdrlen - at > CHUNK) {
        encode(hdr, at, CHUNK, len, hdrlen, little_endian);
        if(dill_bsend(u, hdr, CHUNK, deadline) < 0) return -1;
        at += CHUNK;
    }
    size_t n = (size_t)(hdrlen - at);
    encode(hdr, at, n, len, hdrlen, little_endian);
    struct dill_iolist head = {hdr, n, first, 0};
    return dill_bsendl(u, &head, last, deadline);
}

static int prefix_msendl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct prefix_sock *p = dill_cont(mvfs, struct prefix_sock, mvfs);
    if(dill_refused(p->out_busy, 0, p->out_failed)) return -1;
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) {
        /* A malformed list fails the direction (sockets.md §3). */
        p->out_failed = 1;
        return -1;
    }
    /* Refused before a byte is written: the stream stays in step and the
       direction usable (the original wrote a truncated length). */
    if(!representable(len, p->hdrlen)) {
        errno = EMSGSIZE;
        return -1;
    }
    p->out_busy = 1;
    int rc = send_message(p->layer.u, p->hdrlen, p->little_endian, first,
        last, len, deadline);
    /* EBADF: our handle was closed while we waited; p may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    p->out_busy = 0;
    if(rc < 0) p->out_failed = 1;
    return rc;
}

/* ---- Receiving ----------------------------------------------------------- */

/* Reads a whole header into *len: 0, or -1 with the error of the stream,
   or EMSGSIZE when the length does not fit in 64 bits. */
static int recv_header(int u, uint64_t hdrlen, int little_endian,
      uint64_t *len, int64_t deadline) {
    uint8_t hdr[CHUNK];
    int fits = 1;
    *len = 0;
    for(uint64_t at = 0; at < hdrlen; at += CHUNK) {
        size_t n = hdrlen - at < CHUNK ? (size_t)(hdrlen - at) : CHUNK;
        if(dill_brecv(u, hdr, n, deadline) < 0) return -1;
        if(decode(hdr, at, n, len, hdrlen, little_endian) < 0) fits = 0;
    }
    if(!fits) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

static int drop_payload(int u, size_t len, int64_t deadline) {
    while(len) {
        size_t n = len < DROP_PIECE ? len : DROP_PIECE;
        if(dill_brecv(u, NULL, n, deadline) < 0) return -1;
        len -= n;
        if(len && deadline >= 0 && dill_now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/* The payload into the front of the list, which is cut after len bytes
   for the call and put back as it was. */
static int recv_payload(int u, struct dill_iolist *first, size_t len,
      int64_t deadline) {
    if(len == 0) return 0;
    struct dill_iolist *end = first;
    size_t before = 0;
    while(before + end->iol_len < len) {
        before += end->iol_len;
        end = end->iol_next;
    }
    size_t saved_len = end->iol_len;
    struct dill_iolist *saved_next = end->iol_next;
    end->iol_len = len - before;
    end->iol_next = NULL;
    int rc = dill_brecvl(u, first, end, deadline);
    int err = errno;
    end->iol_len = saved_len;
    end->iol_next = saved_next;
    errno = err;
    return rc;
}

static ssize_t recv_message(int u, uint64_t hdrlen, int little_endian,
      struct dill_iolist *first, size_t room, int64_t deadline) {
    uint64_t len;
    if(recv_header(u, hdrlen, little_endian, &len, deadline) < 0) return -1;
    /* The size must come back as an ssize_t. */
    if(len > SSIZE_MAX || (first && len > room)) {
        errno = EMSGSIZE;
        return -1;
    }
    int rc = first ? recv_payload(u, first, (size_t)len, deadline) :
        drop_payload(u, (size_t)len, deadline);
    return rc < 0 ? -1 : (ssize_t)len;
}

static ssize_t prefix_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct prefix_sock *p = dill_cont(mvfs, struct prefix_sock, mvfs);
    if(dill_refused(p->in_busy, 0, p->in_failed)) return -1;
    size_t room = 0;
    /* Both NULL: receive the next message and drop it. */
    if((first || last) && dill_iol_check(first, last, &room) < 0) {
        p->in_failed = 1;
        return -1;
    }
    p->in_busy = 1;
    ssize_t rc = recv_message(p->layer.u, p->hdrlen, p->little_endian, first,
        room, deadline);
    /* EBADF: our handle was closed while we waited; p may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    p->in_busy = 0;
    /* Every failure, the end of the stream and EMSGSIZE included, leaves
       the stream somewhere inside a message: later receives ECONNRESET. */
    if(rc < 0) p->in_failed = 1;
    return rc;
}

/* ---- The handle ---------------------------------------------------------- */

static void *prefix_query(struct dill_hvfs *hvfs, const void *type) {
    struct prefix_sock *p = dill_cont(hvfs, struct prefix_sock, layer.hvfs);
    if(type == dill_msock_type) return &p->mvfs;
    if(type == prefix_type) return p;
    errno = ENOTSUP;
    return NULL;
}

static void prefix_close(struct dill_hvfs *hvfs) {
    struct prefix_sock *p = dill_cont(hvfs, struct prefix_sock, layer.hvfs);
    dill_layer_close(&p->layer);
}

static int attach(int s, size_t hdrlen, int flags,
      struct dill_prefix_storage *mem) {
    if(hdrlen == 0 || (uint64_t)hdrlen > HDRLEN_MAX)
        return dill_layer_refuse(s, EINVAL);
    void *below;
    int u = dill_layer_own(s, dill_bsock_type, EPROTO, &below);
    if(u < 0) return -1;
    struct prefix_sock *p = dill_layer_alloc(mem, sizeof(*p),
        _Alignof(struct prefix_sock));
    if(!p) return dill_layer_fail(u);
    p->mvfs.msendl = prefix_msendl;
    p->mvfs.mrecvl = prefix_mrecvl;
    p->hdrlen = hdrlen;
    /* Bit 0 only; the other bits are ignored, as by the original. */
    p->little_endian = (flags & DILL_PREFIX_LITTLE_ENDIAN) ? 1 : 0;
    p->in_busy = 0;
    p->out_busy = 0;
    p->in_failed = 0;
    p->out_failed = 0;
    return dill_layer_make(&p->layer, u, prefix_query, prefix_close);
}

DILL_EXPORT int dill_prefix_attach_mem(int s, size_t hdrlen, int flags,
      struct dill_prefix_storage *mem) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, hdrlen, flags, mem);
}

DILL_EXPORT int dill_prefix_attach(int s, size_t hdrlen, int flags) {
    return attach(s, hdrlen, flags, NULL);
}

DILL_EXPORT int dill_prefix_detach(int s) {
    struct prefix_sock *p = dill_hquery(s, prefix_type);
    if(!p) return -1;
    /* A call still waiting would wake up on a freed object. */
    if(p->in_busy || p->out_busy) {
        errno = EBUSY;
        return -1;
    }
    if(p->in_failed || p->out_failed) {
        errno = ECONNRESET;
        return dill_layer_abort(s);
    }
    return dill_layer_release(s, &p->layer);
}
