/*
 * dtls.c: DTLS over any message socket, with OpenSSL (sockets.md §19;
 * built with --enable-tls). The original declares these functions but
 * ships no implementation. Ours: one message = one DTLS record = one
 * message below (a datagram on UDP); the handshake retransmits lost
 * flights on OpenSSL's timer, waited for together with our deadline (see
 * tlsbio.c). Like UDP, a failed send or receive (a timeout, an error of
 * the socket below) does not stick; only a broken DTLS session (an OpenSSL
 * error, a fatal alert) does, and the peer's close_notify (EPIPE).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iol.h"
#include "layer.h"
#include "libdillimpl.h"
#include "tlsbio.h"
#include "utils.h"

struct dtls_sock {
    struct dill_layer layer;
    struct dill_msock_vfs mvfs;
    struct dill_tlsbio *bio;
    unsigned in_busy : 1;
    unsigned out_busy : 1;
    unsigned in_eof : 1;   /* the peer's close_notify: receives get EPIPE */
    unsigned out_done : 1; /* ours: sends get EPIPE */
};

DILL_FITS(struct dtls_sock, struct dill_dtls_storage);

/* Private type id: only dtls_done and dtls_detach ask for it. */
static const int dtls_type_id;
static const void *dtls_type = &dtls_type_id;

static void *dtls_query(struct dill_hvfs *hvfs, const void *type) {
    struct dtls_sock *p = dill_cont(hvfs, struct dtls_sock, layer.hvfs);
    if(type == dill_msock_type) return &p->mvfs;
    if(type == dtls_type) return p;
    errno = ENOTSUP;
    return NULL;
}

static void dtls_close(struct dill_hvfs *hvfs) {
    struct dtls_sock *p = dill_cont(hvfs, struct dtls_sock, layer.hvfs);
    dill_tlsbio_free(p->bio);
    dill_layer_close(&p->layer);
}

/* ---- Messages ----------------------------------------------------------- */

/* The message as one buffer: the element itself, or the list gathered
   into the engine's send scratch. NULL with EFAULT (a NULL base with a
   length) or ENOMEM. */
static const void *gather(struct dtls_sock *p, struct dill_iolist *first) {
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(!it->iol_base && it->iol_len) {
            errno = EFAULT;
            return NULL;
        }
    }
    if(!first->iol_next) return first->iol_base;
    uint8_t *buf = dill_tlsbio_scratch(p->bio, 1);
    if(!buf) return NULL;
    size_t pos = 0;
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(it->iol_len) memcpy(buf + pos, it->iol_base, it->iol_len);
        pos += it->iol_len;
    }
    return buf;
}

static int dtls_msendl(struct dill_msock_vfs *mvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dtls_sock *p = dill_cont(mvfs, struct dtls_sock, mvfs);
    if(dill_refused(p->out_busy, p->out_done, dill_tlsbio_broken(p->bio)))
        return -1;
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) return -1;
    if(len > DILL_DTLS_MAX_MESSAGE) {
        errno = EMSGSIZE;
        return -1;
    }
    /* OpenSSL refuses to write an empty record (and would call it a
       fatal error): refused here, the session untouched. */
    if(len == 0) {
        errno = EINVAL;
        return -1;
    }
    const void *buf = gather(p, first);
    if(!buf) return -1;
    p->out_busy = 1;
    int rc = dill_tlsbio_send(p->bio, buf, len, deadline);
    /* EBADF: the handle was closed while we waited; p may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    p->out_busy = 0;
    return rc;
}

static void scatter(struct dill_iolist *first, const uint8_t *buf,
      size_t len) {
    for(struct dill_iolist *it = first; it && len; it = it->iol_next) {
        size_t n = it->iol_len < len ? it->iol_len : len;
        if(it->iol_base) memcpy(it->iol_base, buf, n);
        buf += n;
        len -= n;
    }
}

static ssize_t dtls_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct dtls_sock *p = dill_cont(mvfs, struct dtls_sock, mvfs);
    if(dill_refused(p->in_busy, p->in_eof, dill_tlsbio_broken(p->bio)))
        return -1;
    size_t len = 0;
    /* Both NULL: receive one message and drop it. */
    int drop = !first && !last;
    if(!drop && dill_iol_check(first, last, &len) < 0) return -1;
    /* A single element that holds any record is read into directly. */
    int direct = !drop && first == last && first->iol_base &&
        len >= DILL_DTLS_MAX_MESSAGE;
    uint8_t *buf = direct ? first->iol_base : dill_tlsbio_scratch(p->bio, 0);
    if(!buf) return -1;
    p->in_busy = 1;
    ssize_t n = dill_tlsbio_recv(p->bio, buf, DILL_DTLS_MAX_MESSAGE, deadline);
    if(n < 0 && errno == EBADF) return -1;
    p->in_busy = 0;
    if(n < 0) {
        if(errno == EPIPE && dill_tlsbio_closed(p->bio)) p->in_eof = 1;
        return -1;
    }
    if(drop || direct) return n;
    if((size_t)n > len) {
        /* The message is consumed; the socket stays usable. */
        errno = EMSGSIZE;
        return -1;
    }
    scatter(first, buf, (size_t)n);
    return n;
}

/* ---- Attach ------------------------------------------------------------- */

static int attach(int s, int server, const char *cert, const char *pkey,
      struct dill_dtls_storage *mem, int64_t deadline) {
    int u;
    struct dill_tlsbio *bio;
    struct dtls_sock *p = dill_tlsbio_attach(s, 1, server, cert, pkey, mem,
        sizeof(*p), _Alignof(struct dtls_sock), &u, &bio, deadline);
    if(!p) return -1;
    p->bio = bio;
    p->mvfs.msendl = dtls_msendl;
    p->mvfs.mrecvl = dtls_mrecvl;
    p->in_busy = p->out_busy = 0;
    p->in_eof = p->out_done = 0;
    return dill_tlsbio_make(&p->layer, u, bio, dtls_query, dtls_close);
}

DILL_EXPORT int dill_dtls_attach_server(int s, const char *cert,
      const char *pkey, int64_t deadline) {
    return attach(s, 1, cert, pkey, NULL, deadline);
}

DILL_EXPORT int dill_dtls_attach_server_mem(int s, const char *cert,
      const char *pkey, struct dill_dtls_storage *mem, int64_t deadline) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, 1, cert, pkey, mem, deadline);
}

DILL_EXPORT int dill_dtls_attach_client(int s, int64_t deadline) {
    return attach(s, 0, NULL, NULL, NULL, deadline);
}

DILL_EXPORT int dill_dtls_attach_client_mem(int s,
      struct dill_dtls_storage *mem, int64_t deadline) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, 0, NULL, NULL, mem, deadline);
}

/* ---- Done, detach ------------------------------------------------------- */

DILL_EXPORT int dill_dtls_done(int s, int64_t deadline) {
    struct dtls_sock *p = dill_hquery(s, dtls_type);
    if(!p) return -1;
    if(p->out_busy) {
        errno = EBUSY;
        return -1;
    }
    if(dill_tlsbio_broken(p->bio)) {
        errno = ECONNRESET;
        return -1;
    }
    if(p->out_done) {
        errno = EPIPE;
        return -1;
    }
    p->out_busy = 1;
    int rc = dill_tlsbio_close_notify(p->bio, deadline);
    if(rc < 0 && errno == EBADF) return -1;
    p->out_busy = 0;
    /* Our close_notify is queued in OpenSSL's state even if the send
       below failed: sending is over either way. */
    p->out_done = 1;
    return rc;
}

/* close_notify if not sent yet, then everything up to the peer's. */
static int finish(struct dtls_sock *p, int64_t deadline) {
    if(dill_tlsbio_broken(p->bio)) {
        errno = ECONNRESET;
        return -1;
    }
    if(!p->out_done) {
        p->out_done = 1;
        if(dill_tlsbio_close_notify(p->bio, deadline) < 0) return -1;
    }
    if(dill_tlsbio_closed(p->bio)) return 0;
    return dill_tlsbio_drain(p->bio, deadline);
}

DILL_EXPORT int dill_dtls_detach(int s, int64_t deadline) {
    struct dtls_sock *p = dill_hquery(s, dtls_type);
    if(!p) return -1;
    if(p->in_busy || p->out_busy) {
        errno = EBUSY;
        return -1;
    }
    p->in_busy = p->out_busy = 1;
    if(finish(p, deadline) < 0) {
        /* EBADF: closed meanwhile, nothing left to close. */
        if(errno == EBADF) return -1;
        return dill_layer_abort(s);
    }
    return dill_layer_release(s, &p->layer);
}
