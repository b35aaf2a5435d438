/*
 * suffix.c: SUFFIX (sockets.md §12), message sockets over any bytestream,
 * each message ended by a delimiter of 1 to 32 bytes ("\r\n", say). The
 * payload is not escaped: the first occurrence of the delimiter ends the
 * message. No handshake and no terminator.
 *
 * The bytestream offers no way to give bytes back, so a receive must never
 * read past the delimiter: after detach the stream continues exactly
 * there. It reads as many bytes at a time as can be read safely: with the
 * last k bytes seen matching the first k of the delimiter (and no longer
 * such match), the delimiter cannot end before another suffixlen - k bytes
 * have come, so that many are read in one call. The matching is
 * Knuth-Morris-Pratt, with the failure table built at attach.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "iol.h"
#include "layer.h"
#include "now.h"
#include "utils.h"

static const int suffix_type_id;
static const void *suffix_type = &suffix_type_id;

#define SUFFIX_MAX 32

struct suffix_sock {
    struct dill_layer layer;
    struct dill_msock_vfs mvfs;
    uint8_t delim[SUFFIX_MAX];
    /* border[i]: the length of the longest proper prefix of delim[0..i]
       that is also a suffix of it. */
    uint8_t border[SUFFIX_MAX];
    uint8_t len;
    uint8_t in_busy : 1;
    uint8_t out_busy : 1;
    uint8_t in_failed : 1;
    uint8_t out_failed : 1;
};

DILL_FITS(struct suffix_sock, struct dill_suffix_storage);

/* A message that keeps coming without its delimiter must not hold the
   call past the deadline even when every read is served at once (the
   waits below are the only other place the deadline is looked at): the
   clock is read each time this many more bytes have been scanned. */
#define CLOCK_EVERY 65536

/* ---- Sending ------------------------------------------------------------- */

static int suffix_msendl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct suffix_sock *x = dill_cont(mvfs, struct suffix_sock, mvfs);
    if(dill_refused(x->out_busy, 0, x->out_failed)) return -1;
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) {
        /* A malformed list fails the direction (sockets.md §3). */
        x->out_failed = 1;
        return -1;
    }
    /* The delimiter rides after the caller's last element for the one
       call; the list is put back whatever happens. */
    struct dill_iolist delim = {x->delim, x->len, NULL, 0};
    last->iol_next = &delim;
    x->out_busy = 1;
    int rc = dill_bsendl(x->layer.u, first, &delim, deadline);
    int err = errno;
    last->iol_next = NULL;
    errno = err;
    /* EBADF: our handle was closed while we waited; x may be gone. */
    if(rc < 0 && err == EBADF) return -1;
    x->out_busy = 0;
    if(rc < 0) x->out_failed = 1;
    return rc;
}

/* ---- Receiving ----------------------------------------------------------- */

/* Where the next payload byte goes in the caller's list. */
struct cursor {
    struct dill_iolist *it; /* NULL: the list is full (or there is none) */
    size_t off;
    size_t total;           /* payload bytes so far */
    int drop;               /* no list: the payload is only counted */
    int overflow;           /* some did not fit */
};

/* Appends n payload bytes: into the list while it has room (elements with
   a NULL base take their share and drop it), counted in any case. */
static void put(struct cursor *c, const uint8_t *src, size_t n) {
    c->total += n;
    while(n && c->it) {
        size_t room = c->it->iol_len - c->off;
        if(room == 0) {
            c->it = c->it->iol_next;
            c->off = 0;
            continue;
        }
        size_t k = n < room ? n : room;
        if(c->it->iol_base) memcpy((uint8_t *)c->it->iol_base + c->off, src, k);
        c->off += k;
        src += k;
        n -= k;
    }
    if(n && !c->drop) c->overflow = 1;
}

/* The matcher's state after one more byte. */
static size_t step(const struct suffix_sock *x, size_t k, uint8_t c) {
    while(k > 0 && x->delim[k] != c) k = x->border[k - 1];
    return x->delim[k] == c ? k + 1 : 0;
}

/* Reads up to and including the delimiter, the payload going to c. */
static int recv_message(struct suffix_sock *x, struct cursor *c,
      int64_t deadline) {
    int u = x->layer.u;
    size_t k = 0;
    size_t next_clock = CLOCK_EVERY;
    uint8_t buf[SUFFIX_MAX];
    for(;;) {
        size_t want = x->len - k;
        if(dill_brecv(u, buf, want, deadline) < 0) return -1;
        /* x is alive: a close while we waited would have given EBADF. */
        size_t matched = k;
        for(size_t i = 0; i < want; i++) matched = step(x, matched, buf[i]);
        /* The delimiter can only end at the last byte read, and then k
           earlier bytes and all of buf are the delimiter itself. */
        if(matched == x->len) return 0;
        /* The k bytes held back were delim[0..k); of them and buf, all but
           the new match are payload now. */
        size_t out = k + want - matched;
        size_t held = out < k ? out : k;
        put(c, x->delim, held);
        put(c, buf, out - held);
        k = matched;
        if(c->total >= next_clock) {
            if(deadline >= 0 && dill_now_ms() >= deadline) {
                errno = ETIMEDOUT;
                return -1;
            }
            next_clock = c->total + CLOCK_EVERY;
        }
    }
}

static ssize_t suffix_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct suffix_sock *x = dill_cont(mvfs, struct suffix_sock, mvfs);
    if(dill_refused(x->in_busy, 0, x->in_failed)) return -1;
    size_t room;
    /* Both NULL: receive the next message and drop it. The room itself
       is not needed: the cursor finds the end of the list. */
    if((first || last) && dill_iol_check(first, last, &room) < 0) {
        x->in_failed = 1;
        return -1;
    }
    struct cursor c = {first, 0, 0, first == NULL, 0};
    x->in_busy = 1;
    int rc = recv_message(x, &c, deadline);
    /* EBADF: our handle was closed while we waited; x may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    x->in_busy = 0;
    /* Too long: the whole message was read, delimiter included, so the
       stream is in step, but the caller lost part of it, and that counts
       as a failure (sockets.md §21). */
    if(rc == 0 && (c.overflow || c.total > SSIZE_MAX)) {
        errno = EMSGSIZE;
        rc = -1;
    }
    /* Every failure, the end of the stream included: ECONNRESET later. */
    if(rc < 0) {
        x->in_failed = 1;
        return -1;
    }
    return (ssize_t)c.total;
}

/* ---- The handle ---------------------------------------------------------- */

static void *suffix_query(struct dill_hvfs *hvfs, const void *type) {
    struct suffix_sock *x = dill_cont(hvfs, struct suffix_sock, layer.hvfs);
    if(type == dill_msock_type) return &x->mvfs;
    if(type == suffix_type) return x;
    errno = ENOTSUP;
    return NULL;
}

static void suffix_close(struct dill_hvfs *hvfs) {
    struct suffix_sock *x = dill_cont(hvfs, struct suffix_sock, layer.hvfs);
    dill_layer_close(&x->layer);
}

static void build_border(struct suffix_sock *x) {
    x->border[0] = 0;
    size_t k = 0;
    for(size_t i = 1; i < x->len; i++) {
        while(k > 0 && x->delim[i] != x->delim[k]) k = x->border[k - 1];
        if(x->delim[i] == x->delim[k]) k++;
        x->border[i] = (uint8_t)k;
    }
}

static int attach(int s, const void *suffix, size_t suffixlen,
      struct dill_suffix_storage *mem) {
    if(!suffix || suffixlen == 0 || suffixlen > SUFFIX_MAX)
        return dill_layer_refuse(s, EINVAL);
    void *below;
    int u = dill_layer_own(s, dill_bsock_type, EPROTO, &below);
    if(u < 0) return -1;
    struct suffix_sock *x = dill_layer_alloc(mem, sizeof(*x),
        _Alignof(struct suffix_sock));
    if(!x) return dill_layer_fail(u);
    x->mvfs.msendl = suffix_msendl;
    x->mvfs.mrecvl = suffix_mrecvl;
    memcpy(x->delim, suffix, suffixlen);
    x->len = (uint8_t)suffixlen;
    build_border(x);
    x->in_busy = 0;
    x->out_busy = 0;
    x->in_failed = 0;
    x->out_failed = 0;
    return dill_layer_make(&x->layer, u, suffix_query, suffix_close);
}

DILL_EXPORT int dill_suffix_attach_mem(int s, const void *suffix,
      size_t suffixlen, struct dill_suffix_storage *mem) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, suffix, suffixlen, mem);
}

DILL_EXPORT int dill_suffix_attach(int s, const void *suffix,
      size_t suffixlen) {
    return attach(s, suffix, suffixlen, NULL);
}

DILL_EXPORT int dill_suffix_detach(int s, int64_t deadline) {
    /* Nothing goes on the wire, so nothing can wait. */
    (void)deadline;
    struct suffix_sock *x = dill_hquery(s, suffix_type);
    if(!x) return -1;
    /* A call still waiting would wake up on a freed object. */
    if(x->in_busy || x->out_busy) {
        errno = EBUSY;
        return -1;
    }
    if(x->in_failed || x->out_failed) {
        errno = ECONNRESET;
        return dill_layer_abort(s);
    }
    return dill_layer_release(s, &x->layer);
}
