/*
 * tlsbio.c: the OpenSSL engine of tls.c and dtls.c (see tlsbio.h): the
 * process-wide OpenSSL objects, the BIO that only copies, and the loop that
 * turns OpenSSL's "want read" into one receive of exactly what it asked
 * for, and its output into sends on the socket below.
 *
 * How OpenSSL 3 reads through a BIO. For TLS with read-ahead off (the
 * default; we never turn it on) the record layer asks for exactly the
 * 5-byte record header, and once it has the header for exactly the body
 * length the header gives: two BIO reads per record, never a byte more.
 * When our BIO has nothing it says "retry" and keeps the count asked for;
 * the loop then receives that many bytes with one brecv (all-or-nothing,
 * as a bytestream receive is) and calls OpenSSL again, which asks again
 * for the same count and gets all of it. So the stream below gives up
 * exactly the records OpenSSL processed. For DTLS OpenSSL always reads
 * whole datagrams, asking for its full buffer: the loop receives one
 * message (mrecv) and the BIO hands it out once; whatever OpenSSL did not
 * take of it is dropped, as a UDP socket truncates.
 *
 * Who sends the output queue: every call but a receive sends it before
 * going on (a handshake flight must be out before we wait for the answer).
 * A receive can produce output too: on TLS only the answer to a TLS 1.3
 * KeyUpdate request (RFC 8446 §4.6.3 only asks for it before our next
 * application data, so it waits for the next send) and the alert of a
 * fatal error (sent by the receive if no send is under way); on DTLS the
 * retransmission of our last flight when the peer repeats its own, which
 * the receive sends unless a send is already sending the queue, in which
 * case that send takes it along.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "alloc.h"
#include "tlsbio.h"

/* The DTLS datagram size the handshake fragments its messages to: 1200
   bytes fit any IPv4 or IPv6 path (IPv6's minimum MTU is 1280). */
#define DTLS_MTU 1200

/* Bytes given to one SSL_write on a bytestream: one full record, so the
   output queue never holds more than about one record. */
#define TLS_CHUNK 16384

struct outq {
    uint8_t *data;
    size_t len;
    size_t cap;
};

struct dill_tlsbio {
    SSL *ssl;
    void *below;         /* struct dill_bsock_vfs or dill_msock_vfs */
    uint8_t dgram;
    uint8_t flushing;    /* a coroutine is sending the output queue */
    uint8_t closed;      /* the peer's close_notify arrived */
    uint8_t broken;      /* OpenSSL failed: the session is unusable */
    int bio_err;         /* errno of a failed BIO write (ENOMEM) */
    /* Bytes (or one datagram) received for the BIO to hand out. */
    uint8_t *in;
    size_t in_cap;
    size_t in_len;
    size_t in_pos;
    size_t want;         /* what OpenSSL last asked the BIO for */
    /* The BIO appends to pending; the coroutine that flushes swaps it with
       sending and sends that, so an append never moves bytes a send below
       is still reading. In datagram mode each datagram is stored as its
       length (a size_t) followed by its bytes. */
    struct outq pending;
    struct outq sending;
    uint8_t *scratch[2]; /* [0] receive, [1] send */
};

enum op { OP_HANDSHAKE, OP_READ, OP_WRITE, OP_SHUTDOWN };

/* ---- Process-wide objects ----------------------------------------------- */

/* Created at the first attach, under the lock, and freed at exit. SSL_CTX
   is safe to share between threads (SSL_new only takes a reference). */
static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static BIO_METHOD *bio_method;
static SSL_CTX *client_ctx[2]; /* [dgram] */

static void global_free(void) {
    pthread_mutex_lock(&global_lock);
    SSL_CTX_free(client_ctx[0]);
    SSL_CTX_free(client_ctx[1]);
    client_ctx[0] = client_ctx[1] = NULL;
    BIO_meth_free(bio_method);
    bio_method = NULL;
    pthread_mutex_unlock(&global_lock);
}

static int bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

static int bio_read(BIO *b, char *buf, int len) {
    struct dill_tlsbio *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if(len <= 0) return 0;
    size_t avail = t->in_len - t->in_pos;
    if(avail == 0) {
        t->want = (size_t)len;
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = avail < (size_t)len ? avail : (size_t)len;
    memcpy(buf, t->in + t->in_pos, n);
    t->in_pos += n;
    /* A datagram is handed out once: what OpenSSL did not take is lost. */
    if(t->dgram || t->in_pos == t->in_len) t->in_pos = t->in_len = 0;
    return (int)n;
}

static int reserve(struct outq *q, size_t more) {
    if(q->cap - q->len >= more) return 0;
    size_t cap = q->cap ? q->cap : 4096;
    while(cap - q->len < more) cap *= 2;
    uint8_t *data = dill_realloc(q->data, cap);
    if(!data) return -1;
    q->data = data;
    q->cap = cap;
    return 0;
}

static int bio_write(BIO *b, const char *buf, int len) {
    struct dill_tlsbio *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if(len <= 0) return 0;
    size_t n = (size_t)len;
    struct outq *q = &t->pending;
    if(reserve(q, n + (t->dgram ? sizeof(n) : 0)) < 0) {
        t->bio_err = ENOMEM;
        return -1;
    }
    if(t->dgram) {
        memcpy(q->data + q->len, &n, sizeof(n));
        q->len += sizeof(n);
    }
    memcpy(q->data + q->len, buf, n);
    q->len += n;
    return len;
}

/* OpenSSL 3 sends control commands of many kinds (kTLS queries, EOF,
   pending counts, datagram options); an unknown one is answered 0, "not
   supported", never treated as a bug (sockets.md §21). */
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num;
    (void)ptr;
    struct dill_tlsbio *t = BIO_get_data(b);
    if(!t) return 0;
    switch(cmd) {
    case BIO_CTRL_FLUSH:
        /* The engine sends the queue after each OpenSSL call. */
        return 1;
    case BIO_CTRL_PENDING:
        return (long)(t->in_len - t->in_pos);
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return t->dgram ? DTLS_MTU : 0;
    default:
        return 0;
    }
}

/* Under the lock. The BIO method, once; OpenSSL's own exit handler is
   registered by OPENSSL_init_ssl, before ours, so ours runs first. */
static int global_init(void) {
    if(bio_method) return 0;
    if(!OPENSSL_init_ssl(0, NULL)) return -1;
    int index = BIO_get_new_index();
    if(index < 0) return -1;
    BIO_METHOD *m = BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "libdill");
    if(!m) return -1;
    if(!BIO_meth_set_create(m, bio_create) ||
       !BIO_meth_set_read(m, bio_read) ||
       !BIO_meth_set_write(m, bio_write) ||
       !BIO_meth_set_ctrl(m, bio_ctrl)) {
        BIO_meth_free(m);
        return -1;
    }
    static int exit_handler;
    if(!exit_handler) {
        if(atexit(global_free) != 0) {
            BIO_meth_free(m);
            return -1;
        }
        exit_handler = 1;
    }
    bio_method = m;
    return 0;
}

/* What OpenSSL's error queue says in errno terms, emptying it: ENOMEM if
   it ran out of memory, EMFILE or ENFILE if it could not open a file (the
   certificate, the key) for want of descriptors, else 0. */
static int queued_errno(void) {
    int err = 0;
    unsigned long e;
    while((e = ERR_get_error())) {
        int reason = ERR_GET_REASON(e);
        if(ERR_SYSTEM_ERROR(e)) {
            if(reason == EMFILE || reason == ENFILE || reason == ENOMEM)
                err = reason;
        } else if(reason == ERR_R_MALLOC_FAILURE) {
            err = ENOMEM;
        }
    }
    return err;
}

/* OpenSSL 3.0 often queues another cause than ERR_R_MALLOC_FAILURE when
   one of its own allocations fails (a decode error, an internal error, a
   key too small). malloc sets errno to ENOMEM, and so does a system call
   that lacks memory: with errno cleared before the OpenSSL calls, ENOMEM
   after them says that memory ran out, whatever the queue says. */
static int lacked_memory(int queued, int after) {
    return queued == ENOMEM || (!queued && after == ENOMEM);
}

/* OpenSSL failed: forget its error queue (nothing is printed) and set
   errno from it, or to fallback when it says nothing we can name. errno
   was cleared before the calls that failed. */
static void *openssl_failed(int fallback) {
    int after = errno;
    int err = queued_errno();
    if(lacked_memory(err, after)) err = ENOMEM;
    if(!err) dill_inject_unnamed_openssl_failure();
    errno = err ? err : fallback;
    return NULL;
}

static SSL_CTX *ctx_new(const SSL_METHOD *method) {
    SSL_CTX *ctx = SSL_CTX_new(method);
    if(!ctx) return NULL;
    /* A renegotiation started by a read could not be run by it. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

/* The shared client context, with a reference for the caller. */
static SSL_CTX *client_ctx_get(int dgram) {
    SSL_CTX *ctx = NULL;
    errno = 0; /* see lacked_memory */
    pthread_mutex_lock(&global_lock);
    if(global_init() == 0) {
        if(!client_ctx[dgram])
            client_ctx[dgram] = ctx_new(dgram ? DTLS_client_method() :
                TLS_client_method());
        ctx = client_ctx[dgram];
        if(ctx && !SSL_CTX_up_ref(ctx)) ctx = NULL;
    }
    pthread_mutex_unlock(&global_lock);
    return ctx;
}

/* A server context of its own for each attach: the files are read each
   time, as the caller names them. */
static SSL_CTX *server_ctx_new(int dgram, const char *cert,
      const char *pkey) {
    errno = 0; /* see lacked_memory */
    pthread_mutex_lock(&global_lock);
    int rc = global_init();
    pthread_mutex_unlock(&global_lock);
    if(rc < 0 || !cert || !pkey) return NULL;
    SSL_CTX *ctx = ctx_new(dgram ? DTLS_server_method() : TLS_server_method());
    if(!ctx) return NULL;
    /* Resumption cannot work with a context per connection: no session
       cache, no tickets (TLS 1.2 and DTLS in the handshake, TLS 1.3 after
       it). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    if(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx, pkey, SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* ---- Engines ------------------------------------------------------------ */

static struct dill_tlsbio *engine_new(void *below, int dgram, SSL_CTX *ctx,
      int server) {
    /* Bad files, a bad key: EFAULT, as the original says. */
    if(!ctx) return openssl_failed(EFAULT);
    struct dill_tlsbio *t = dill_calloc(1, sizeof(*t));
    if(!t) {
        SSL_CTX_free(ctx);
        ERR_clear_error();
        errno = ENOMEM;
        return NULL;
    }
    t->below = below;
    t->dgram = dgram ? 1 : 0;
    t->ssl = SSL_new(ctx);
    /* The SSL object holds its own reference. */
    SSL_CTX_free(ctx);
    BIO *b = t->ssl ? BIO_new(bio_method) : NULL;
    if(!b) {
        SSL_free(t->ssl);
        free(t);
        /* Nothing but memory makes these two fail. */
        return openssl_failed(ENOMEM);
    }
    BIO_set_data(b, t);
    /* One BIO both ways: SSL_set_bio takes the one reference. */
    SSL_set_bio(t->ssl, b, b);
    if(server) SSL_set_accept_state(t->ssl);
    else SSL_set_connect_state(t->ssl);
    if(dgram) {
        SSL_set_options(t->ssl, SSL_OP_NO_QUERY_MTU);
        SSL_set_mtu(t->ssl, DTLS_MTU);
    }
    return t;
}

struct dill_tlsbio *dill_tlsbio_client(void *below, int dgram) {
    return engine_new(below, dgram, client_ctx_get(dgram ? 1 : 0), 0);
}

struct dill_tlsbio *dill_tlsbio_server(void *below, int dgram,
      const char *cert, const char *pkey) {
    return engine_new(below, dgram, server_ctx_new(dgram, cert, pkey), 1);
}

void dill_tlsbio_free(struct dill_tlsbio *t) {
    SSL_free(t->ssl);
    ERR_clear_error();
    free(t->in);
    free(t->pending.data);
    free(t->sending.data);
    free(t->scratch[0]);
    free(t->scratch[1]);
    free(t);
}

int dill_tlsbio_closed(const struct dill_tlsbio *t) {
    return t->closed;
}

int dill_tlsbio_broken(const struct dill_tlsbio *t) {
    return t->broken;
}

void *dill_tlsbio_scratch(struct dill_tlsbio *t, int out) {
    uint8_t **s = &t->scratch[out ? 1 : 0];
    if(!*s) {
        *s = dill_malloc(DILL_DTLS_MAX_MESSAGE);
        if(!*s) errno = ENOMEM;
    }
    return *s;
}

/* ---- Moving bytes ------------------------------------------------------- */

/* Send one swapped-out queue: the bytes in one bsend, or each datagram in
   one msend. */
static int send_queue(struct dill_tlsbio *t, struct outq *q,
      int64_t deadline) {
    if(!t->dgram) {
        struct dill_bsock_vfs *b = t->below;
        struct dill_iolist iol = {q->data, q->len, NULL, 0};
        return b->bsendl(b, &iol, &iol, deadline);
    }
    struct dill_msock_vfs *m = t->below;
    size_t pos = 0;
    size_t end = q->len;
    uint8_t *data = q->data;
    while(pos < end) {
        size_t n;
        memcpy(&n, data + pos, sizeof(n));
        pos += sizeof(n);
        struct dill_iolist iol = {data + pos, n, NULL, 0};
        /* EBADF: our handle was closed meanwhile; t may be freed. */
        if(m->msendl(m, &iol, &iol, deadline) < 0) return -1;
        pos += n;
    }
    return 0;
}

/* Send the output queue until it is empty, what is appended meanwhile
   included. If another coroutine is sending it, that one takes the new
   output along. On failure the queue is dropped (a broken stream; lost
   datagrams). */
static int flush(struct dill_tlsbio *t, int64_t deadline) {
    if(t->flushing) return 0;
    t->flushing = 1;
    while(t->pending.len) {
        struct outq empty = t->sending;
        t->sending = t->pending;
        t->pending = empty;
        if(send_queue(t, &t->sending, deadline) < 0) {
            if(errno == EBADF) return -1;
            t->sending.len = 0;
            t->pending.len = 0;
            t->flushing = 0;
            return -1;
        }
        t->sending.len = 0;
    }
    t->flushing = 0;
    return 0;
}

static int reserve_in(struct dill_tlsbio *t, size_t len) {
    if(t->in_cap >= len) return 0;
    uint8_t *in = dill_realloc(t->in, len);
    if(!in) {
        errno = ENOMEM;
        return -1;
    }
    t->in = in;
    t->in_cap = len;
    return 0;
}

/* One datagram for the BIO, waiting until the deadline or until the DTLS
   retransmission timer runs out, whichever comes first. When the timer
   does, OpenSSL queues its last flight again and we return 0 without a
   datagram: the caller calls OpenSSL again, which sends it and asks for
   input once more. */
static int fill_datagram(struct dill_tlsbio *t, size_t want,
      int64_t deadline) {
    struct dill_msock_vfs *m = t->below;
    for(;;) {
        int64_t until = deadline;
        int timer = 0;
        struct timeval tv;
        if(DTLSv1_get_timeout(t->ssl, &tv)) {
            int64_t at = dill_now() + (int64_t)tv.tv_sec * 1000 +
                (tv.tv_usec + 999) / 1000;
            if(deadline < 0 || at < deadline) {
                until = at;
                timer = 1;
            }
        }
        struct dill_iolist iol = {t->in, want, NULL, 0};
        ssize_t n = m->mrecvl(m, &iol, &iol, until);
        if(n > 0) {
            t->in_len = (size_t)n;
            t->in_pos = 0;
            return 0;
        }
        /* An empty datagram carries no record. */
        if(n == 0) continue;
        /* EBADF among these: t may be freed, so do not touch it. */
        if(errno != ETIMEDOUT || !timer) return -1;
        ERR_clear_error();
        if(DTLSv1_handle_timeout(t->ssl) < 0) {
            /* Too many retransmissions: OpenSSL gives up. */
            ERR_clear_error();
            t->broken = 1;
            errno = ETIMEDOUT;
            return -1;
        }
        return 0;
    }
}

/* Receive what the BIO was asked for. */
static int fill(struct dill_tlsbio *t, int64_t deadline) {
    size_t want = t->want;
    t->want = 0;
    if(want == 0) {
        /* OpenSSL wants input but did not ask the BIO: cannot happen. */
        t->broken = 1;
        errno = EFAULT;
        return -1;
    }
    if(reserve_in(t, want) < 0) return -1;
    if(t->dgram) return fill_datagram(t, want, deadline);
    struct dill_bsock_vfs *b = t->below;
    struct dill_iolist iol = {t->in, want, NULL, 0};
    if(b->brecvl(b, &iol, &iol, deadline) < 0) return -1;
    t->in_len = want;
    t->in_pos = 0;
    return 0;
}

static int call(struct dill_tlsbio *t, enum op op, void *buf, size_t len,
      size_t *done) {
    switch(op) {
    case OP_HANDSHAKE:
        return SSL_do_handshake(t->ssl);
    case OP_READ:
        return SSL_read_ex(t->ssl, buf, len, done);
    case OP_WRITE:
        return SSL_write_ex(t->ssl, buf, len, done);
    case OP_SHUTDOWN: {
        /* 0: our close_notify is out, the peer's not yet in: success. */
        int rc = SSL_shutdown(t->ssl);
        return rc < 0 ? rc : 1;
    }
    }
    return -1;
}

/* What a failed OpenSSL call means, as an errno; queued is what its error
   queue said (queued_errno). A connection whose engine ran out of memory
   halfway through a record cannot go on: it is broken, as after any other
   failure, and ENOMEM says why. */
static int failure(struct dill_tlsbio *t, int code, int queued, int after) {
    if(code == SSL_ERROR_ZERO_RETURN) {
        t->closed = 1;
        return EPIPE;
    }
    t->broken = 1;
    if(code == SSL_ERROR_SYSCALL && t->bio_err) return t->bio_err;
    if(lacked_memory(queued, after)) return ENOMEM;
    dill_inject_unnamed_openssl_failure();
    return EFAULT;
}

/* Run one OpenSSL call to its end: send what it wrote, receive what it
   asked for, call it again. Only handshakes and receives receive (with
   renegotiation off, a send or a shutdown never needs input). */
static int run(struct dill_tlsbio *t, enum op op, void *buf, size_t len,
      size_t *done, int64_t deadline) {
    if(t->broken) {
        errno = ECONNRESET;
        return -1;
    }
    for(;;) {
        ERR_clear_error();
        t->bio_err = 0;
        t->want = 0;
        errno = 0; /* see lacked_memory */
        int rc = call(t, op, buf, len, done);
        int after = errno;
        int code = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
        int queued = queued_errno();
        int want_read = code == SSL_ERROR_WANT_READ &&
            (op == OP_HANDSHAKE || op == OP_READ);
        int err = code == SSL_ERROR_NONE || want_read ? 0 :
            failure(t, code, queued, after);
        /* After a failure the output is an alert, sent if the socket below
           takes it at once: it must not delay the report (a peer that
           does not read could hold us until the deadline). */
        if(op != OP_READ || t->dgram || t->broken) {
            if(flush(t, err ? 0 : deadline) < 0) {
                /* EBADF: t may be freed. Else the first error wins. */
                if(errno == EBADF || !err) return -1;
            }
        }
        if(err) {
            errno = err;
            return -1;
        }
        if(code == SSL_ERROR_NONE) return 0;
        if(fill(t, deadline) < 0) return -1;
    }
}

int dill_tlsbio_handshake(struct dill_tlsbio *t, int64_t deadline) {
    return run(t, OP_HANDSHAKE, NULL, 0, NULL, deadline);
}

int dill_tlsbio_send(struct dill_tlsbio *t, const void *buf, size_t len,
      int64_t deadline) {
    size_t done;
    if(t->dgram) return run(t, OP_WRITE, (void *)buf, len, &done, deadline);
    const uint8_t *p = buf;
    while(len) {
        size_t n = len < TLS_CHUNK ? len : TLS_CHUNK;
        if(run(t, OP_WRITE, (void *)p, n, &done, deadline) < 0) return -1;
        p += n;
        len -= n;
    }
    return 0;
}

ssize_t dill_tlsbio_recv(struct dill_tlsbio *t, void *buf, size_t len,
      int64_t deadline) {
    size_t done = 0;
    if(run(t, OP_READ, buf, len, &done, deadline) < 0) return -1;
    return (ssize_t)done;
}

int dill_tlsbio_close_notify(struct dill_tlsbio *t, int64_t deadline) {
    return run(t, OP_SHUTDOWN, NULL, 0, NULL, deadline);
}

int dill_tlsbio_drain(struct dill_tlsbio *t, int64_t deadline) {
    void *buf = dill_tlsbio_scratch(t, 0);
    if(!buf) return -1;
    for(;;) {
        if(dill_tlsbio_recv(t, buf, DILL_DTLS_MAX_MESSAGE, deadline) < 0) {
            /* Test errno first: after EBADF t may be freed. */
            if(errno == EPIPE && t->closed) return 0;
            return -1;
        }
        /* A peer that never stops sending must not keep us here. */
        if(deadline >= 0 && dill_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

/* ---- Attach ------------------------------------------------------------- */

void *dill_tlsbio_attach(int s, int dgram, int server, const char *cert,
      const char *pkey, void *mem, size_t size, size_t align, int *u,
      struct dill_tlsbio **t, int64_t deadline) {
    void *below;
    *u = dill_layer_own(s, dgram ? dill_msock_type : dill_bsock_type,
        EPROTO, &below);
    if(*u < 0) return NULL;
    struct dill_layer *l = dill_layer_alloc(mem, size, align);
    if(!l) {
        dill_layer_fail(*u);
        return NULL;
    }
    *t = server ? dill_tlsbio_server(below, dgram, cert, pkey) :
        dill_tlsbio_client(below, dgram);
    /* Nobody else can reach u before the handle exists: no EBADF rule. */
    if(*t && dill_tlsbio_handshake(*t, deadline) == 0) return l;
    int err = errno;
    if(*t) dill_tlsbio_free(*t);
    dill_unplace(l, l->in_caller_memory);
    errno = err;
    dill_layer_fail(*u);
    return NULL;
}

int dill_tlsbio_make(struct dill_layer *l, int u, struct dill_tlsbio *t,
      void *(*query)(struct dill_hvfs *vfs, const void *type),
      void (*close)(struct dill_hvfs *vfs)) {
    int h = dill_layer_make(l, u, query, close);
    if(h < 0) {
        /* l is freed and u closed; the engine is still ours. */
        int err = errno;
        dill_tlsbio_free(t);
        errno = err;
    }
    return h;
}
