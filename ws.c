/*
 * ws.c: WebSockets (RFC 6455; sockets.md §15) over any bytestream: the
 * opening handshake through the HTTP layer (none with WS_NOHTTP), frames
 * with masking, fragmented messages reassembled, pings answered, and the
 * closing handshake. A WebSocket is a message socket; ws_send and ws_recv
 * add the text/binary type of each message.
 *
 * The opening handshake and the key helpers are in wshandshake.c.
 *
 * Deviations from the original, each also in the man pages: pings are
 * answered with a pong and pongs skipped (the original fails with EPROTO);
 * fragments must be well ordered (RFC 6455 §5.4); after a framing error the
 * receive side stays failed; data frames met while ws_detach drains are
 * dropped; close reasons are limited to what fits a control frame.
 *
 * A client masks what it sends into a buffer: a small frame on the stack,
 * a bigger one in a buffer each thread keeps (grown once, reused by every
 * message), so a whole frame of up to 64 KiB leaves in one write.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined DILL_THREADS
#include <pthread.h>
#endif

#include "alloc.h"
#include "iol.h"
#include "layer.h"
#include "random.h"
#include "utils.h"
#include "ws.h"

/* RFC 6455 §5.2. */
#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xa
#define FIN 0x80
#define RSV 0x70
#define MASK 0x80
#define CONTROL_MAX 125

/* The most a client frame is masked into before it is written: header and
   64 KiB of payload, so messages up to that size leave in one write. */
#define CHUNK (14 + 64 * 1024)
/* Frames up to this size (header included) are masked on the stack. */
#define STACK_FRAME 256
/* Discarded payloads are read in pieces this big, the deadline looked at
   between them; and the deadline is looked at every FRAME_CHECK frames of
   one message, so that a peer sending without end cannot keep a call. */
#define DISCARD_PIECE (1024 * 1024)
#define FRAME_CHECK 64

struct ws_sock {
    struct dill_layer layer;
    struct dill_msock_vfs mvfs;
    /* Before the peer's close frame: the payload of a ping whose pong is
       left to the coroutine sending at the time (pong_due). After it: that
       close frame's payload, status and reason, for ws_status. */
    uint8_t ctl[CONTROL_MAX];
    uint8_t ctl_len;
    unsigned client : 1;
    unsigned text : 1;       /* the type of msend, and what mrecv accepts */
    unsigned out_busy : 1;
    unsigned out_done : 1;   /* our close frame is out: sends fail, EPIPE */
    unsigned out_failed : 1; /* sends fail with ECONNRESET */
    unsigned in_busy : 1;
    unsigned in_done : 1;    /* the peer's close frame arrived: EPIPE */
    unsigned in_failed : 1;  /* receives fail with ECONNRESET */
    unsigned pong_due : 1;
};

DILL_FITS(struct ws_sock, struct dill_ws_storage);

static const int ws_type_id;
static const void *ws_type = &ws_type_id;

/* ---- Per-thread state: the masking buffer and random bytes -------------- */

struct ws_thread {
    uint8_t *scratch;   /* lent to one client send at a time */
    size_t cap;
    int lent;
    uint8_t random[256]; /* from the kernel, handed out from the end */
    size_t random_left;
};

#if defined DILL_THREADS
static __thread struct ws_thread ws_thread;
static pthread_key_t ws_thread_key;
static pthread_once_t ws_thread_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *scratch) {
    free(scratch);
    ws_thread.scratch = NULL;
    ws_thread.cap = 0;
}

/* A forked child must not mask with the keys its parent will use. */
static void forked_child(void) {
    ws_thread.random_left = 0;
}

static int ws_thread_keyless;

static void thread_setup(void) {
    /* Without the key the buffer of an exiting thread would leak: then
       every send takes a buffer of its own (see scratch_lend). */
    if(pthread_key_create(&ws_thread_key, thread_exit) != 0)
        ws_thread_keyless = 1;
    pthread_atfork(NULL, NULL, forked_child);
}

static struct ws_thread *thread_state(void) {
    pthread_once(&ws_thread_once, thread_setup);
    return &ws_thread;
}
#else
static struct ws_thread ws_thread;
static const int ws_thread_keyless = 0;

static struct ws_thread *thread_state(void) {
    return &ws_thread;
}
#endif

/* n (at most 16) fresh random bytes; the pool saves a system call for
   most frames. 0 or -1 with errno. */
static int random_bytes(uint8_t *out, size_t n) {
    struct ws_thread *t = thread_state();
    if(t->random_left < n) {
        if(dill_random_fill(t->random, sizeof(t->random)) < 0) return -1;
        t->random_left = sizeof(t->random);
    }
    t->random_left -= n;
    memcpy(out, t->random + t->random_left, n);
    /* A byte handed out is not kept. */
    memset(t->random + t->random_left, 0, n);
    return 0;
}

/* A buffer of at least want bytes (want <= CHUNK) to mask into, its size in
   *cap: the thread's own, or when another send of this thread holds it, one
   of the call's. NULL with ENOMEM. */
static uint8_t *scratch_lend(size_t want, size_t *cap) {
    struct ws_thread *t = thread_state();
    if(!t->lent && !ws_thread_keyless) {
        if(t->cap < want) {
            /* Two sizes only: most messages are small. */
            size_t size = want <= 4096 ? 4096 : CHUNK;
            uint8_t *grown = dill_realloc(t->scratch, size);
            if(grown) {
                t->scratch = grown;
                t->cap = size;
#if defined DILL_THREADS
                pthread_setspecific(ws_thread_key, grown);
#endif
            }
        }
        if(t->cap >= want) {
            t->lent = 1;
            *cap = t->cap;
            return t->scratch;
        }
    }
    uint8_t *own = dill_malloc(want);
    if(!own) {
        errno = ENOMEM;
        return NULL;
    }
    *cap = want;
    return own;
}

static void scratch_return(uint8_t *buf) {
    struct ws_thread *t = &ws_thread;
    if(t->lent && buf == t->scratch) t->lent = 0;
    else free(buf);
}

/* ---- Frames -------------------------------------------------------------- */

/* dst[i] = src[i] ^ key[(at + i) % 4], eight bytes at a time; dst may be
   src. at is the offset of src within the frame's payload. */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
      const uint8_t key[4], size_t at) {
    uint8_t k[8];
    for(int i = 0; i < 8; i++) k[i] = key[(at + (size_t)i) & 3];
    uint64_t w;
    memcpy(&w, k, 8);
    size_t i = 0;
    for(; i + 32 <= n; i += 32) {
        uint64_t x[4];
        memcpy(x, src + i, 32);
        x[0] ^= w;
        x[1] ^= w;
        x[2] ^= w;
        x[3] ^= w;
        memcpy(dst + i, x, 32);
    }
    for(; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, src + i, 8);
        x ^= w;
        memcpy(dst + i, &x, 8);
    }
    /* k has period 4 and i is a multiple of 8 here. */
    for(; i < n; i++) dst[i] = src[i] ^ k[i & 7];
}

/* The header of a frame (RFC 6455 §5.2) with the shortest length encoding,
   with the masking key when key is not NULL. Returns its size, 2 to 14. */
static size_t frame_header(uint8_t *h, int opcode, uint64_t len,
      const uint8_t *key) {
    size_t n = 2;
    h[0] = (uint8_t)(FIN | opcode);
    if(len <= 125) {
        h[1] = (uint8_t)len;
    } else if(len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 127;
        for(int i = 0; i < 8; i++) h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if(key) {
        h[1] |= MASK;
        memcpy(h + n, key, 4);
        n += 4;
    }
    return n;
}

/* A client frame: header and payload masked with key copied into buf
   (cap bytes), written each time buf is full and at the end. */
static int send_masked(int u, uint8_t *buf, size_t cap, int opcode,
      const uint8_t *key, struct dill_iolist *first, size_t len,
      int64_t deadline) {
    size_t pos = frame_header(buf, opcode, len, key);
    size_t at = 0;
    for(struct dill_iolist *it = first; it && at < len; it = it->iol_next) {
        const uint8_t *src = it->iol_base;
        size_t left = it->iol_len;
        while(left) {
            size_t n = cap - pos < left ? cap - pos : left;
            mask_copy(buf + pos, src, n, key, at);
            pos += n;
            at += n;
            src += n;
            left -= n;
            if(pos == cap) {
                if(dill_bsend(u, buf, pos, deadline) < 0) return -1;
                pos = 0;
            }
        }
    }
    if(pos && dill_bsend(u, buf, pos, deadline) < 0) return -1;
    return 0;
}

/* send_frame failed before it wrote anything: the stream is still in
   step. */
#define NOT_SENT (-2)

/* Write one frame whose payload is the list from first (len bytes, first
   may be NULL when len is 0). A server sends header and list in one go,
   nothing copied; a client masks. 0, or -1 with errno; NOT_SENT with
   errno when no key or no buffer could be had. */
static int send_frame(struct ws_sock *self, int opcode,
      struct dill_iolist *first, struct dill_iolist *last, size_t len,
      int64_t deadline) {
    int u = self->layer.u;
    if(!self->client) {
        uint8_t h[10];
        struct dill_iolist hdr = {h, frame_header(h, opcode, len, NULL),
            len ? first : NULL, 0};
        return dill_bsendl(u, &hdr, len ? last : &hdr, deadline);
    }
    uint8_t key[4];
    if(random_bytes(key, sizeof(key)) < 0) return NOT_SENT;
    if(len <= STACK_FRAME - 14) {
        uint8_t buf[STACK_FRAME];
        return send_masked(u, buf, sizeof(buf), opcode, key, first, len,
            deadline);
    }
    size_t cap;
    uint8_t *buf = scratch_lend(len < CHUNK - 14 ? len + 14 : CHUNK, &cap);
    if(!buf) return NOT_SENT;
    int rc = send_masked(u, buf, cap, opcode, key, first, len, deadline);
    int err = errno;
    scratch_return(buf);
    errno = err;
    return rc;
}

static int send_control(struct ws_sock *self, int opcode, uint8_t *payload,
      size_t len, int64_t deadline) {
    struct dill_iolist iol = {payload, len, NULL, 0};
    return send_frame(self, opcode, &iol, &iol, len, deadline);
}

/* The send side is ours (out_busy): answer the ping the receiving
   coroutine left to us. A failure is left to the next send to report. */
static int send_due_pong(struct ws_sock *self, int64_t deadline) {
    uint8_t payload[CONTROL_MAX];
    size_t len = self->ctl_len;
    /* Copied out: the receiver may overwrite ctl with a close frame while
       the pong is being written. */
    memcpy(payload, self->ctl, len);
    self->pong_due = 0;
    int rc = send_control(self, OP_PONG, payload, len, deadline);
    if(rc == -1 && errno == EBADF) return -1;
    if(rc == -1) self->out_failed = 1;
    return 0;
}

/* A whole message, with the send side's state kept. */
static int send_message(struct ws_sock *self, int opcode,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    size_t len;
    if(dill_iol_check(first, last, &len) < 0) return -1;
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(!it->iol_base && it->iol_len) {
            errno = EINVAL;
            return -1;
        }
    }
    if(dill_refused(self->out_busy, self->out_done, self->out_failed))
        return -1;
    self->out_busy = 1;
    int rc = send_frame(self, opcode, first, last, len, deadline);
    if(rc == -1 && errno == EBADF) return -1;
    if(rc == -1) {
        self->out_failed = 1;
    } else if(rc == 0 && self->pong_due) {
        if(send_due_pong(self, deadline) < 0) return -1;
    }
    self->out_busy = 0;
    return rc < 0 ? -1 : 0;
}

/* ---- Receiving ----------------------------------------------------------- */

/* Read and drop len bytes, the deadline looked at between pieces. */
static int discard(int u, uint64_t len, int64_t deadline) {
    while(len) {
        size_t n = len < DISCARD_PIECE ? (size_t)len : DISCARD_PIECE;
        if(dill_brecv(u, NULL, n, deadline) < 0) return -1;
        len -= n;
        if(len && deadline >= 0 && dill_now() > deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/* Unmask bytes [at, at + n) of the list, with frame offsets from 0. */
static void unmask_list(struct dill_iolist *it, size_t at, size_t n,
      const uint8_t key[4]) {
    size_t done = 0;
    for(; done < n; it = it->iol_next) {
        if(at >= it->iol_len) {
            at -= it->iol_len;
            continue;
        }
        size_t k = it->iol_len - at < n - done ? it->iol_len - at : n - done;
        if(it->iol_base) {
            uint8_t *p = (uint8_t *)it->iol_base + at;
            mask_copy(p, p, k, key, done);
        }
        done += k;
        at = 0;
    }
}

/* Receive n > 0 bytes into bytes [at, at + n) of the list from first, then
   unmask them with key (NULL: not masked). The caller's list is cut to
   that range for the one brecvl and restored after it (sockets.md §2). */
static int recv_into(int u, struct dill_iolist *first, size_t at, size_t n,
      const uint8_t *key, int64_t deadline) {
    struct dill_iolist *start = first;
    size_t off = at;
    while(off >= start->iol_len) {
        off -= start->iol_len;
        start = start->iol_next;
    }
    struct dill_iolist *end = start;
    size_t end_len = off + n;
    while(end_len > end->iol_len) {
        end_len -= end->iol_len;
        end = end->iol_next;
    }
    int rc;
    uint8_t *base = start->iol_base;
    if(start == end) {
        rc = dill_brecv(u, base ? base + off : NULL, n, deadline);
    } else {
        size_t start_len = start->iol_len;
        size_t saved_end_len = end->iol_len;
        struct dill_iolist *saved_next = end->iol_next;
        start->iol_base = base ? base + off : NULL;
        start->iol_len = start_len - off;
        end->iol_len = end_len;
        end->iol_next = NULL;
        rc = dill_brecvl(u, start, end, deadline);
        int err = errno;
        start->iol_base = base;
        start->iol_len = start_len;
        end->iol_len = saved_end_len;
        end->iol_next = saved_next;
        errno = err;
    }
    if(rc == 0 && key) unmask_list(first, at, n, key);
    return rc;
}

/* The peer's close frame (RFC 6455 §5.5.1, §7.4): kept for ws_status. */
static int got_close(struct ws_sock *self, const uint8_t *payload,
      size_t len) {
    if(len == 1) {
        errno = EPROTO;
        return -1;
    }
    if(len >= 2) {
        int status = payload[0] << 8 | payload[1];
        if(status < 1000 || status > 4999) {
            errno = EPROTO;
            return -1;
        }
    }
    memcpy(self->ctl, payload, len);
    self->ctl_len = (uint8_t)len;
    /* No pong after a close frame (RFC 6455 §5.5.2). */
    self->pong_due = 0;
    self->in_done = 1;
    errno = EPIPE;
    return -1;
}

/* A ping: answered at once when nobody is sending, else left to the sender
   (only the latest ping is answered then, which §5.5.3 allows). After our
   close frame nothing more is sent. */
static int got_ping(struct ws_sock *self, uint8_t *payload, size_t len,
      int64_t deadline) {
    if(self->out_done || self->out_failed) return 0;
    if(self->out_busy) {
        memcpy(self->ctl, payload, len);
        self->ctl_len = (uint8_t)len;
        self->pong_due = 1;
        return 0;
    }
    self->out_busy = 1;
    int rc = send_control(self, OP_PONG, payload, len, deadline);
    if(rc == -1 && errno == EBADF) return -1;
    self->out_busy = 0;
    if(rc == -1) self->out_failed = 1;
    return rc < 0 ? -1 : 0;
}

/* A control frame met while receiving (its header already read). -1 with
   EPIPE for a close frame. */
static int got_control(struct ws_sock *self, int opcode, size_t len,
      const uint8_t *key, int64_t deadline) {
    uint8_t payload[CONTROL_MAX];
    if(opcode != OP_CLOSE && opcode != OP_PING && opcode != OP_PONG) {
        errno = EPROTO;
        return -1;
    }
    if(opcode == OP_PONG) return dill_brecv(self->layer.u, NULL, len, deadline);
    if(len && dill_brecv(self->layer.u, payload, len, deadline) < 0)
        return -1;
    if(key) mask_copy(payload, payload, len, key, 0);
    if(opcode == OP_CLOSE) return got_close(self, payload, len);
    return got_ping(self, payload, len, deadline);
}

/* One message into the list from first with room for cap bytes (first
   NULL: drop it). Its size, and its opcode (text or binary) in *opcode;
   or -1 with errno, EPIPE after the peer's close frame. */
static ssize_t recv_message(struct ws_sock *self, int *opcode,
      struct dill_iolist *first, size_t cap, int64_t deadline) {
    int u = self->layer.u;
    uint64_t total = 0;
    int started = 0;
    for(unsigned frames = 1;; frames++) {
        if(frames % FRAME_CHECK == 0 && deadline >= 0 &&
              dill_now() > deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        uint8_t h[14];
        if(dill_brecv(u, h, 2, deadline) < 0) return -1;
        int fin = h[0] & FIN;
        int op = h[0] & 0x0f;
        int masked = h[1] & MASK;
        uint64_t len = h[1] & 0x7f;
        size_t ext = len == 126 ? 2 : len == 127 ? 8 : 0;
        size_t more = ext + (masked ? 4 : 0);
        if(more && dill_brecv(u, h + 2, more, deadline) < 0) return -1;
        if(ext) {
            len = 0;
            for(size_t i = 0; i < ext; i++) len = len << 8 | h[2 + i];
        }
        const uint8_t *key = masked ? h + 2 + ext : NULL;
        /* No extension is negotiated, so no RSV bit may be set; a server
           gets masked frames only, a client unmasked ones only (§5.1); the
           top bit of a 64-bit length must be 0 (§5.2). */
        if((h[0] & RSV) || (masked != 0) == self->client || (len >> 63)) {
            errno = EPROTO;
            return -1;
        }
        if(op & 0x8) {
            if(!fin || len > CONTROL_MAX) {
                errno = EPROTO;
                return -1;
            }
            if(got_control(self, op, (size_t)len, key, deadline) < 0)
                return -1;
            continue;
        }
        /* A message starts with text or binary, goes on with
           continuations (§5.4). */
        if(op == OP_CONT ? !started : (op > OP_BINARY || started)) {
            errno = EPROTO;
            return -1;
        }
        if(!started) *opcode = op;
        started = 1;
        if(len > SSIZE_MAX - total || (first && len > cap - total)) {
            errno = EMSGSIZE;
            return -1;
        }
        if(len) {
            int rc = first ?
                recv_into(u, first, (size_t)total, (size_t)len, key,
                    deadline) :
                discard(u, len, deadline);
            if(rc < 0) return -1;
        }
        total += len;
        if(fin) return (ssize_t)total;
    }
}

/* A whole receive, with the receive side's state kept: every failure
   but the peer's close frame leaves it failed. */
static ssize_t recv_checked(struct ws_sock *self, int *opcode,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    size_t cap = 0;
    if(first && dill_iol_check(first, last, &cap) < 0) return -1;
    if(dill_refused(self->in_busy, self->in_done, self->in_failed))
        return -1;
    self->in_busy = 1;
    ssize_t rc = recv_message(self, opcode, first, cap, deadline);
    if(rc < 0 && errno == EBADF) return -1;
    self->in_busy = 0;
    if(rc < 0 && !self->in_done) self->in_failed = 1;
    return rc;
}

/* ---- The message socket -------------------------------------------------- */

static void *ws_query(struct dill_hvfs *hvfs, const void *type) {
    struct ws_sock *self = dill_cont(hvfs, struct ws_sock, layer.hvfs);
    if(type == dill_msock_type) return &self->mvfs;
    if(type == ws_type) return self;
    errno = ENOTSUP;
    return NULL;
}

static void ws_close(struct dill_hvfs *hvfs) {
    struct ws_sock *self = dill_cont(hvfs, struct ws_sock, layer.hvfs);
    dill_layer_close(&self->layer);
}

static int ws_msendl(struct dill_msock_vfs *mvfs, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct ws_sock *self = dill_cont(mvfs, struct ws_sock, mvfs);
    return send_message(self, self->text ? OP_TEXT : OP_BINARY, first, last,
        deadline);
}

static ssize_t ws_mrecvl(struct dill_msock_vfs *mvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    struct ws_sock *self = dill_cont(mvfs, struct ws_sock, mvfs);
    int opcode;
    ssize_t rc = recv_checked(self, &opcode, first, last, deadline);
    if(rc < 0) return -1;
    /* The message is consumed and the stream still in step: the socket
       stays usable. */
    if(opcode != (self->text ? OP_TEXT : OP_BINARY)) {
        errno = EPROTO;
        return -1;
    }
    return rc;
}

/* The WebSocket behind handle s, or NULL with EBADF or ENOTSUP. */
static struct ws_sock *get(int s) {
    return dill_hquery(s, ws_type);
}

/* ---- Attaching ----------------------------------------------------------- */

/* The object over the bytestream u, with its handle. On failure u is
   closed and self freed. */
static int make(struct ws_sock *self, int u, int client, int flags) {
    self->mvfs.msendl = ws_msendl;
    self->mvfs.mrecvl = ws_mrecvl;
    self->ctl_len = 0;
    self->client = client != 0;
    self->text = (flags & DILL_WS_TEXT) != 0;
    self->out_busy = 0;
    self->out_done = 0;
    self->out_failed = 0;
    self->in_busy = 0;
    self->in_done = 0;
    self->in_failed = 0;
    self->pong_due = 0;
    return dill_layer_make(&self->layer, u, ws_query, ws_close);
}

/* ---- Attaching ----------------------------------------------------------- */

static int client_attach(int s, int flags, const char *resource,
      const char *host, struct dill_ws_storage *mem, int use_mem,
      int64_t deadline) {
    int http = !(flags & DILL_WS_NOHTTP);
    if((use_mem && !mem) || (http && (!resource || !host)))
        return dill_layer_refuse(s, EINVAL);
    void *below;
    int u = dill_layer_own(s, dill_bsock_type, ENOTSUP, &below);
    if(u < 0) return -1;
    struct ws_sock *self = dill_layer_alloc(mem, sizeof(*self),
        _Alignof(struct ws_sock));
    if(!self) return dill_layer_fail(u);
    if(http && dill_ws_client_handshake(&u, resource, host, deadline) < 0) {
        int err = errno;
        dill_unplace(self, self->layer.in_caller_memory);
        errno = err;
        return -1;
    }
    return make(self, u, 1, flags);
}

static int server_attach(int s, int flags, char *resource,
      size_t resourcelen, char *host, size_t hostlen,
      struct dill_ws_storage *mem, int use_mem, int64_t deadline) {
    int http = !(flags & DILL_WS_NOHTTP);
    if((use_mem && !mem) || (http && (!resource || !host)))
        return dill_layer_refuse(s, EINVAL);
    void *below;
    int u = dill_layer_own(s, dill_bsock_type, ENOTSUP, &below);
    if(u < 0) return -1;
    struct ws_sock *self = dill_layer_alloc(mem, sizeof(*self),
        _Alignof(struct ws_sock));
    if(!self) return dill_layer_fail(u);
    if(http && dill_ws_server_handshake(&u, resource, resourcelen, host, hostlen,
          deadline) < 0) {
        int err = errno;
        dill_unplace(self, self->layer.in_caller_memory);
        errno = err;
        return -1;
    }
    return make(self, u, 0, flags);
}

/* ---- Public functions ---------------------------------------------------- */

DILL_EXPORT int dill_ws_attach_client_mem(int s, int flags,
      const char *resource, const char *host, struct dill_ws_storage *mem,
      int64_t deadline) {
    return client_attach(s, flags, resource, host, mem, 1, deadline);
}

DILL_EXPORT int dill_ws_attach_client(int s, int flags, const char *resource,
      const char *host, int64_t deadline) {
    return client_attach(s, flags, resource, host, NULL, 0, deadline);
}

DILL_EXPORT int dill_ws_attach_server_mem(int s, int flags, char *resource,
      size_t resourcelen, char *host, size_t hostlen,
      struct dill_ws_storage *mem, int64_t deadline) {
    return server_attach(s, flags, resource, resourcelen, host, hostlen, mem,
        1, deadline);
}

DILL_EXPORT int dill_ws_attach_server(int s, int flags, char *resource,
      size_t resourcelen, char *host, size_t hostlen, int64_t deadline) {
    return server_attach(s, flags, resource, resourcelen, host, hostlen,
        NULL, 0, deadline);
}

DILL_EXPORT int dill_ws_sendl(int s, int flags, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct ws_sock *self = get(s);
    if(!self) return -1;
    if(!first || !last || last->iol_next) {
        errno = EINVAL;
        return -1;
    }
    return send_message(self, (flags & DILL_WS_TEXT) ? OP_TEXT : OP_BINARY,
        first, last, deadline);
}

DILL_EXPORT int dill_ws_send(int s, int flags, const void *buf, size_t len,
      int64_t deadline) {
    struct ws_sock *self = get(s);
    if(!self) return -1;
    struct dill_iolist iol = {(void *)buf, len, NULL, 0};
    return send_message(self, (flags & DILL_WS_TEXT) ? OP_TEXT : OP_BINARY,
        &iol, &iol, deadline);
}

DILL_EXPORT ssize_t dill_ws_recvl(int s, int *flags, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct ws_sock *self = get(s);
    if(!self) return -1;
    /* Both NULL: receive the next message and drop it, as mrecvl. */
    if((!first) != (!last) || (last && last->iol_next)) {
        errno = EINVAL;
        return -1;
    }
    int opcode;
    ssize_t rc = recv_checked(self, &opcode, first, last, deadline);
    if(rc >= 0 && flags)
        *flags = opcode == OP_TEXT ? DILL_WS_TEXT : DILL_WS_BINARY;
    return rc;
}

DILL_EXPORT ssize_t dill_ws_recv(int s, int *flags, void *buf, size_t len,
      int64_t deadline) {
    struct ws_sock *self = get(s);
    if(!self) return -1;
    struct dill_iolist iol = {buf, len, NULL, 0};
    int opcode;
    ssize_t rc = recv_checked(self, &opcode, &iol, &iol, deadline);
    if(rc >= 0 && flags)
        *flags = opcode == OP_TEXT ? DILL_WS_TEXT : DILL_WS_BINARY;
    return rc;
}

/* The arguments of ws_done and ws_detach: a status of 0 or 1000..4999, and
   a reason that fits a control frame with the status (§5.5). */
static int close_args(int status, const void *buf, size_t len) {
    if((status != 0 && (status < 1000 || status > 4999)) || (!buf && len) ||
          len > (status ? CONTROL_MAX - 2 : CONTROL_MAX)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* Send our close frame; the send side is done afterwards, or failed. */
static int send_close(struct ws_sock *self, int status, const void *buf,
      size_t len, int64_t deadline) {
    if(dill_refused(self->out_busy, self->out_done, self->out_failed))
        return -1;
    uint8_t payload[CONTROL_MAX];
    size_t n = 0;
    if(status) {
        payload[0] = (uint8_t)(status >> 8);
        payload[1] = (uint8_t)status;
        n = 2;
    }
    if(len) memcpy(payload + n, buf, len);
    self->out_busy = 1;
    int rc = send_control(self, OP_CLOSE, payload, n + len, deadline);
    if(rc == -1 && errno == EBADF) return -1;
    self->out_busy = 0;
    if(rc == -1) self->out_failed = 1;
    else if(rc == 0) self->out_done = 1;
    return rc < 0 ? -1 : 0;
}

DILL_EXPORT int dill_ws_done(int s, int status, const void *buf, size_t len,
      int64_t deadline) {
    if(close_args(status, buf, len) < 0) return -1;
    struct ws_sock *self = get(s);
    if(!self) return -1;
    return send_close(self, status, buf, len, deadline);
}

DILL_EXPORT int dill_ws_detach(int s, int status, const void *buf,
      size_t len, int64_t deadline) {
    if(close_args(status, buf, len) < 0) return -1;
    struct ws_sock *self = get(s);
    if(!self) return -1;
    /* Nothing is sent when the drain could not even start. */
    if(!self->in_done && dill_refused(self->in_busy, 0, self->in_failed))
        return -1;
    if(!self->out_done && send_close(self, status, buf, len, deadline) < 0)
        return -1;
    /* Everything up to the peer's close frame is dropped. */
    for(unsigned messages = 1; !self->in_done; messages++) {
        int opcode;
        if(recv_checked(self, &opcode, NULL, NULL, deadline) >= 0) {
            if(messages % FRAME_CHECK == 0 && deadline >= 0 &&
                  dill_now() > deadline) {
                self->in_failed = 1;
                errno = ETIMEDOUT;
                return -1;
            }
            continue;
        }
        if(errno != EPIPE || !self->in_done) return -1;
    }
    return dill_layer_release(s, &self->layer);
}

DILL_EXPORT ssize_t dill_ws_status(int s, int *status, void *buf,
      size_t len) {
    if(!buf && len) {
        errno = EINVAL;
        return -1;
    }
    struct ws_sock *self = get(s);
    if(!self) return -1;
    if(!self->in_done) {
        errno = EAGAIN;
        return -1;
    }
    size_t n = self->ctl_len;
    size_t reason = n >= 2 ? n - 2 : 0;
    if(buf && len < reason) {
        errno = EMSGSIZE;
        return -1;
    }
    if(status) *status = n >= 2 ? self->ctl[0] << 8 | self->ctl[1] : 0;
    if(buf && reason) memcpy(buf, self->ctl + 2, reason);
    return (ssize_t)reason;
}
