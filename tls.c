/*
 * tls.c: TLS over any bytestream, with OpenSSL (sockets.md §18; built with
 * --enable-tls). The handle is a bytestream with the sticky per-direction
 * states of §3; the OpenSSL side (the SSL object, the BIO, the waiting)
 * is tlsbio.c's, kept on the heap even for the _mem variants, since
 * OpenSSL allocates its own state anyway.
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

struct tls_sock {
    struct dill_layer layer;
    struct dill_bsock_vfs bvfs;
    struct dill_tlsbio *bio;
    unsigned in_busy : 1;
    unsigned out_busy : 1;
    unsigned in_eof : 1;     /* receives fail with EPIPE */
    unsigned in_failed : 1;  /* receives fail with ECONNRESET */
    unsigned out_done : 1;   /* sends fail with EPIPE */
    unsigned out_failed : 1; /* sends fail with ECONNRESET */
};

DILL_FITS(struct tls_sock, struct dill_tls_storage);

/* Private type id: only tls_done and tls_detach ask for it. */
static const int tls_type_id;
static const void *tls_type = &tls_type_id;

static void *tls_query(struct dill_hvfs *hvfs, const void *type) {
    struct tls_sock *p = dill_cont(hvfs, struct tls_sock, layer.hvfs);
    if(type == dill_bsock_type) return &p->bvfs;
    if(type == tls_type) return p;
    errno = ENOTSUP;
    return NULL;
}

static void tls_close(struct dill_hvfs *hvfs) {
    struct tls_sock *p = dill_cont(hvfs, struct tls_sock, layer.hvfs);
    dill_tlsbio_free(p->bio);
    dill_layer_close(&p->layer);
}

/* ---- Data --------------------------------------------------------------- */

static int send_list(struct tls_sock *p, struct dill_iolist *first,
      int64_t deadline) {
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(it->iol_len == 0) continue;
        /* EBADF: the handle was closed meanwhile; p may be freed. */
        if(dill_tlsbio_send(p->bio, it->iol_base, it->iol_len, deadline) < 0)
            return -1;
    }
    return 0;
}

static int tls_bsendl(struct dill_bsock_vfs *bvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct tls_sock *p = dill_cont(bvfs, struct tls_sock, bvfs);
    if(dill_refused(p->out_busy, p->out_done, p->out_failed)) return -1;
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) {
        p->out_failed = 1;
        return -1;
    }
    /* A NULL base is no data to send: EFAULT, as the kernel says for TCP,
       before anything goes out. */
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(!it->iol_base && it->iol_len) {
            p->out_failed = 1;
            errno = EFAULT;
            return -1;
        }
    }
    if(len == 0) return 0;
    p->out_busy = 1;
    int rc = send_list(p, first, deadline);
    if(rc < 0 && errno == EBADF) return -1;
    p->out_busy = 0;
    if(rc < 0) p->out_failed = 1;
    return rc;
}

/* Fill one element (NULL base: read and drop its length). */
static int recv_element(struct tls_sock *p, struct dill_iolist *it,
      int64_t deadline) {
    uint8_t *to = it->iol_base;
    size_t left = it->iol_len;
    while(left) {
        size_t n = left;
        uint8_t *at = to;
        if(!to) {
            at = dill_tlsbio_scratch(p->bio, 0);
            if(!at) return -1;
            if(n > DILL_DTLS_MAX_MESSAGE) n = DILL_DTLS_MAX_MESSAGE;
        }
        ssize_t got = dill_tlsbio_recv(p->bio, at, n, deadline);
        if(got < 0) return -1;
        if(to) to += got;
        left -= (size_t)got;
    }
    return 0;
}

static int tls_brecvl(struct dill_bsock_vfs *bvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct tls_sock *p = dill_cont(bvfs, struct tls_sock, bvfs);
    if(dill_refused(p->in_busy, p->in_eof, p->in_failed)) return -1;
    size_t len = 0;
    /* Both NULL (only from inside the library): drop everything until the
       peer's close_notify. */
    int drain = !first && !last;
    if(!drain && dill_iol_check(first, last, &len) < 0) {
        p->in_failed = 1;
        return -1;
    }
    if(!drain && len == 0) return 0;
    p->in_busy = 1;
    int rc = 0;
    if(drain) {
        rc = dill_tlsbio_drain(p->bio, deadline);
    } else {
        for(struct dill_iolist *it = first; it && rc == 0; it = it->iol_next)
            rc = recv_element(p, it, deadline);
    }
    /* EBADF: the handle was closed while we waited; p may be gone. */
    if(rc < 0 && errno == EBADF) return -1;
    p->in_busy = 0;
    if(drain && rc == 0) p->in_eof = 1;
    if(rc < 0) {
        if(errno == EPIPE) p->in_eof = 1;
        else p->in_failed = 1;
    }
    return rc;
}

/* ---- Attach ------------------------------------------------------------- */

static int attach(int s, int server, const char *cert, const char *pkey,
      struct dill_tls_storage *mem, int64_t deadline) {
    int u;
    struct dill_tlsbio *bio;
    struct tls_sock *p = dill_tlsbio_attach(s, 0, server, cert, pkey, mem,
        sizeof(*p), _Alignof(struct tls_sock), &u, &bio, deadline);
    if(!p) return -1;
    p->bio = bio;
    p->bvfs.bsendl = tls_bsendl;
    p->bvfs.brecvl = tls_brecvl;
    p->in_busy = p->out_busy = 0;
    p->in_eof = p->in_failed = 0;
    p->out_done = p->out_failed = 0;
    return dill_tlsbio_make(&p->layer, u, bio, tls_query, tls_close);
}

DILL_EXPORT int dill_tls_attach_server(int s, const char *cert,
      const char *pkey, int64_t deadline) {
    return attach(s, 1, cert, pkey, NULL, deadline);
}

DILL_EXPORT int dill_tls_attach_server_mem(int s, const char *cert,
      const char *pkey, struct dill_tls_storage *mem, int64_t deadline) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, 1, cert, pkey, mem, deadline);
}

DILL_EXPORT int dill_tls_attach_client(int s, int64_t deadline) {
    return attach(s, 0, NULL, NULL, NULL, deadline);
}

DILL_EXPORT int dill_tls_attach_client_mem(int s,
      struct dill_tls_storage *mem, int64_t deadline) {
    if(!mem) return dill_layer_refuse(s, EINVAL);
    return attach(s, 0, NULL, NULL, mem, deadline);
}

/* ---- Done, detach ------------------------------------------------------- */

DILL_EXPORT int dill_tls_done(int s, int64_t deadline) {
    struct tls_sock *p = dill_hquery(s, tls_type);
    if(!p) return -1;
    if(p->out_busy) {
        errno = EBUSY;
        return -1;
    }
    if(p->out_failed) {
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
    if(rc < 0) p->out_failed = 1;
    else p->out_done = 1;
    return rc;
}

/* close_notify if not sent yet, then everything up to the peer's. */
static int finish(struct tls_sock *p, int64_t deadline) {
    if(p->in_failed || p->out_failed) {
        errno = ECONNRESET;
        return -1;
    }
    if(!p->out_done) {
        if(dill_tlsbio_close_notify(p->bio, deadline) < 0) return -1;
        p->out_done = 1;
    }
    if(dill_tlsbio_closed(p->bio)) return 0;
    /* The stream below ended without the peer's close_notify. */
    if(p->in_eof) {
        errno = EPIPE;
        return -1;
    }
    return dill_tlsbio_drain(p->bio, deadline);
}

DILL_EXPORT int dill_tls_detach(int s, int64_t deadline) {
    struct tls_sock *p = dill_hquery(s, tls_type);
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
