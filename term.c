/*
 * term.c: TERM (sockets.md §13), the terminal handshake over any message
 * socket. Each side ends its outgoing direction with one ordinary message
 * whose content is the terminator given at attach (0 to 32 bytes; none
 * means an empty message); receiving the peer's terminator gives EPIPE.
 * term_detach sends ours if it has not gone out and discards messages
 * until the peer's, then hands back the socket below.
 *
 * As in the original, TERM keeps no failure state of its own (the socket
 * below has its own), lets sends through after term_done and receives
 * through after the peer's terminator.
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

static const int term_type_id;
static const void *term_type = &term_type_id;

#define TERM_MAX 32

struct term_sock {
    struct dill_layer layer;
    struct dill_msock_vfs mvfs;
    uint8_t term[TERM_MAX];
    uint8_t len;
    uint8_t in_busy : 1;
    uint8_t out_busy : 1;
    uint8_t sent : 1;     /* our terminator went out */
    uint8_t received : 1; /* the peer's came in */
};

DILL_FITS(struct term_sock, struct dill_term_storage);

/* ---- Sending ------------------------------------------------------------- */

static int term_msendl(struct dill_msock_vfs *mvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct term_sock *t = dill_cont(mvfs, struct term_sock, mvfs);
    if(t->out_busy) {
        errno = EBUSY;
        return -1;
    }
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) return -1;
    t->out_busy = 1;
    int rc = dill_msendl(t->layer.u, first, last, deadline);
    /* EBADF: our handle was closed while we waited; t may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    t->out_busy = 0;
    return rc;
}

static int send_terminator(struct term_sock *t, int64_t deadline) {
    t->out_busy = 1;
    int rc = dill_msend(t->layer.u, t->term, t->len, deadline);
    if(rc < 0 && errno == EBADF) return -1;
    t->out_busy = 0;
    /* Not sent: term_done may be tried again. */
    if(rc == 0) t->sent = 1;
    return rc;
}

/* ---- Receiving ----------------------------------------------------------- */

/* Copies n bytes to the front of the list, skipping NULL bases. */
static void copy_front(struct dill_iolist *it, const uint8_t *src, size_t n) {
    for(; n; it = it->iol_next) {
        size_t k = n < it->iol_len ? n : it->iol_len;
        if(it->iol_base) memcpy(it->iol_base, src, k);
        src += k;
        n -= k;
    }
}

/* One message of the socket below. Its first t->len bytes go to a buffer
   of ours, so that the terminator is recognised whatever the caller's
   list looks like; the rest lands in the caller's list beyond that many
   bytes (the element where they start is cut for the call), and our bytes
   are copied to the front when it is not the terminator. No list (first
   NULL): the message is dropped. Its size, or -1 with EPIPE for the
   terminator, EMSGSIZE when a message shorter than the terminator still
   does not fit the list, or the error of the socket below. */
static ssize_t recv_one(struct term_sock *t, struct dill_iolist *first,
      struct dill_iolist *last, size_t room, int64_t deadline) {
    size_t tl = t->len;
    uint8_t head[TERM_MAX];
    struct dill_iolist front = {head, tl, NULL, 0};
    struct dill_iolist drop = {NULL, SSIZE_MAX - tl, NULL, 0};
    struct dill_iolist *from = &front;
    struct dill_iolist *to = &front;
    struct dill_iolist *cut = NULL;
    void *cut_base = NULL;
    size_t cut_len = 0;
    if(!first) {
        /* Not NULL, NULL below: layers differ in what they return then. */
        front.iol_next = &drop;
        to = &drop;
        if(tl == 0) from = &drop;
    } else if(tl == 0) {
        from = first;
        to = last;
    } else {
        size_t before = 0;
        struct dill_iolist *it = first;
        while(it && before + it->iol_len <= tl) {
            before += it->iol_len;
            it = it->iol_next;
        }
        if(it) {
            cut = it;
            cut_base = it->iol_base;
            cut_len = it->iol_len;
            if(it->iol_base) it->iol_base = (uint8_t *)it->iol_base +
                (tl - before);
            it->iol_len -= tl - before;
            front.iol_next = it;
            to = last;
        }
    }
    ssize_t n = dill_mrecvl(t->layer.u, from, to, deadline);
    if(cut) {
        int err = errno;
        cut->iol_base = cut_base;
        cut->iol_len = cut_len;
        errno = err;
    }
    /* Failed (EBADF included: t may be gone). */
    if(n < 0) return -1;
    if((size_t)n == tl && memcmp(head, t->term, tl) == 0) {
        t->received = 1;
        errno = EPIPE;
        return -1;
    }
    if(!first || tl == 0) return n;
    if((size_t)n > room) {
        errno = EMSGSIZE;
        return -1;
    }
    copy_front(first, head, (size_t)n < tl ? (size_t)n : tl);
    return n;
}

static ssize_t term_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct term_sock *t = dill_cont(mvfs, struct term_sock, mvfs);
    if(t->in_busy) {
        errno = EBUSY;
        return -1;
    }
    size_t room = 0;
    /* Both NULL: receive the next message and drop it. */
    if((first || last) && dill_iol_check(first, last, &room) < 0) return -1;
    t->in_busy = 1;
    ssize_t rc = recv_one(t, first, last, room, deadline);
    /* EBADF: our handle was closed while we waited; t may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    t->in_busy = 0;
    return rc;
}

/* Discards messages until the peer's terminator, or until the socket
   below ends (EPIPE from it): 0; else -1. The clock is read after every
   message, so a peer that never stops sending cannot keep us past the
   deadline even if no receive ever has to wait. */
static int drain(struct term_sock *t, int64_t deadline) {
    for(;;) {
        t->in_busy = 1;
        ssize_t n = recv_one(t, NULL, NULL, 0, deadline);
        if(n < 0 && errno == EBADF) return -1;
        t->in_busy = 0;
        if(n < 0) return errno == EPIPE ? 0 : -1;
        if(deadline >= 0 && dill_now_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

/* ---- The handle ---------------------------------------------------------- */

static void *term_query(struct dill_hvfs *hvfs, const void *type) {
    struct term_sock *t = dill_cont(hvfs, struct term_sock, layer.hvfs);
    if(type == dill_msock_type) return &t->mvfs;
    if(type == term_type) return t;
    errno = ENOTSUP;
    return NULL;
}

static void term_close(struct dill_hvfs *hvfs) {
    struct term_sock *t = dill_cont(hvfs, struct term_sock, layer.hvfs);
    dill_layer_close(&t->layer);
}

static int attach(int s, const void *buf, size_t len,
      struct dill_term_storage *mem) {
    if((len > 0 && !buf) || len > TERM_MAX)
        return dill_layer_refuse(s, EINVAL);
    void *below;
    int u = dill_layer_own(s, dill_msock_type, EPROTO, &below);
    if(u < 0) return -1;
    struct term_sock *t = dill_layer_alloc(mem, sizeof(*t),
        _Alignof(struct term_sock));
    if(!t) return dill_layer_fail(u);
    t->mvfs.msendl = term_msendl;
    t->mvfs.mrecvl = term_mrecvl;
    if(len) memcpy(t->term, buf, len);
    t->len = (uint8_t)len;
    t->in_busy = 0;
    t->out_busy = 0;
    t->sent = 0;
    t->received = 0;
    return dill_layer_make(&t->layer, u, term_query, term_close);
}

DILL_EXPORT int dill_term_attach_mem(int s, const void *buf, size_t len,
      struct dill_term_storage *mem) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, buf, len, mem);
}

DILL_EXPORT int dill_term_attach(int s, const void *buf, size_t len) {
    return attach(s, buf, len, NULL);
}

DILL_EXPORT int dill_term_done(int s, int64_t deadline) {
    struct term_sock *t = dill_hquery(s, term_type);
    if(!t) return -1;
    if(t->sent) {
        errno = EPIPE;
        return -1;
    }
    if(t->out_busy) {
        errno = EBUSY;
        return -1;
    }
    return send_terminator(t, deadline);
}

DILL_EXPORT int dill_term_detach(int s, int64_t deadline) {
    struct term_sock *t = dill_hquery(s, term_type);
    if(!t) return -1;
    /* A call still waiting would wake up on a freed object. */
    if(t->in_busy || t->out_busy) {
        errno = EBUSY;
        return -1;
    }
    if(!t->sent && send_terminator(t, deadline) < 0) {
        /* EBADF: our handle was closed while we waited; nothing is left. */
        if(errno == EBADF) return -1;
        return dill_layer_abort(s);
    }
    if(!t->received && drain(t, deadline) < 0) {
        if(errno == EBADF) return -1;
        return dill_layer_abort(s);
    }
    return dill_layer_release(s, &t->layer);
}
