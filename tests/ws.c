/*
 * tests/ws.c: WebSockets (sockets.md §15, with §1, §4, §20.17 and the WS
 * rows of §21). Covers ws_request_key and ws_response_key (the RFC 6455
 * example, EINVAL, EPROTO for keys that do not decode to 16 bytes, the
 * hash over the key exactly as given); every attach variant (EINVAL for a
 * NULL mem, resource or host, ENOTSUP for a socket that is not a
 * bytestream, EBADF, the socket closed on every failure, storage at every
 * alignment); messages both ways between our client and server (text and
 * binary through ws_send/ws_recv and the socket type through msend/mrecv,
 * EPROTO on a type mismatch, sizes at every length encoding up to 1 MiB,
 * scattered lists with odd element sizes, skipped elements and empty
 * ones, the list unchanged, EMSGSIZE, dropped messages, every EINVAL of a
 * list); the exact bytes on the wire (shortest lengths, client masking
 * with a fresh key per frame, unmasked server frames, close frames);
 * the receive rules on hand-made frames (fragments reassembled with
 * pings and pongs between them, each ping answered with its payload, the
 * pong of a ping that arrives while a send is under way written after it,
 * no pong after our close, non-minimal lengths, and EPROTO for each bad
 * frame: continuation first, a new message inside a fragmented one,
 * reserved opcodes and bits, wrong masking, long or fragmented control
 * frames, bad close payloads, a 64-bit length with its top bit set, each
 * followed by ECONNRESET); closing (ws_done, ws_status with EAGAIN,
 * EMSGSIZE and EINVAL, the argument checks of ws_done, EPIPE on both
 * sides, no automatic close reply) and ws_detach (the stream given back
 * right after the close frame, data frames dropped while draining,
 * ETIMEDOUT with the handle still usable, the old number dead); EBUSY,
 * ETIMEDOUT, ECANCELED and a handle closed under a blocked call; framing
 * on small go_mem stacks (SMALL_STACK, 4 KiB) on both sides; masking
 * buffers of several coroutines and (unless built with --disable-threads)
 * threads at once; the HTTP handshake
 * between our client and server, the exact request and response text
 * against a raw peer, every check of §15.2 and §15.3 with its errno and
 * the socket closed; and real peers: examples/ws_echo against a
 * python3-websockets client (text, binary, 80 kB, ping, fragments,
 * keepalive pings, close code echoed), and our client against a
 * python3-websockets server (the same, with its pings inside fragmented
 * messages, its close frame, and ours).
 *
 * Needs /usr/bin/python3 with python3-websockets (Debian packages python3
 * and python3-websockets); fails saying so when it is missing.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"
#include "peer.h"

#define SOON (now() + 5000)

/* ---- Helpers ------------------------------------------------------------ */

static void ipc_pair2(int *a, int *b) {
    int s[2];
    CHECK(ipc_pair(s) == 0);
    *a = s[0];
    *b = s[1];
}

static void tcp_pair(int *a, int *b) {
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int l = tcp_listen(&addr, 10);
    CHECK(l >= 0);
    *a = tcp_connect(&addr, SOON);
    CHECK(*a >= 0);
    *b = tcp_accept(l, NULL, SOON);
    CHECK(*b >= 0);
    CHECK(hclose(l) == 0);
}

/* The raw ends of ws_raw, by handle: a second descriptor of the same
   socket, to peek at what is waiting without touching the handle (a
   receive that times out would leave the handle failed). 0: none, else
   the descriptor + 1. */
static int peek_fds[1024];

/* Our client (or server) without HTTP over one end of a pair; the other,
   raw end in *raw, to be closed with raw_close. */
static int ws_raw(int client, int flags, int *raw) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int peek = dup(sv[1]);
    CHECK(peek >= 0);
    int a = ipc_fromfd(sv[0]);
    int b = ipc_fromfd(sv[1]);
    CHECK(a >= 0 && b >= 0 && b < 1024);
    peek_fds[b] = peek + 1;
    int ws = client ?
        ws_attach_client(a, flags | WS_NOHTTP, NULL, NULL, -1) :
        ws_attach_server(a, flags | WS_NOHTTP, NULL, 0, NULL, 0, -1);
    CHECK(ws >= 0);
    *raw = b;
    return ws;
}

/* Our client and our server, without HTTP, over a pair. */
static void ws_pair(int flags, int *c, int *s) {
    int a, b;
    ipc_pair2(&a, &b);
    *c = ws_attach_client(a, flags | WS_NOHTTP, NULL, NULL, -1);
    CHECK(*c >= 0);
    *s = ws_attach_server(b, flags | WS_NOHTTP, NULL, 0, NULL, 0, -1);
    CHECK(*s >= 0);
}

/* The socket s was closed: the raw end sees the stream end (err: EPIPE
   for a UNIX pair, ECONNRESET for TCP, which hclose resets). */
static void raw_close(int raw) {
    if(raw >= 0 && raw < 1024 && peek_fds[raw]) {
        close(peek_fds[raw] - 1);
        peek_fds[raw] = 0;
    }
    CHECK(hclose(raw) == 0);
}

static void check_closed_at(int raw, int err, int line) {
    char c;
    errno = 0;
    int rc = brecv(raw, &c, 1, SOON);
    if(rc != -1 || errno != err)
        fprintf(stderr, "check_closed from line %d\n", line);
    CHECK(rc == -1 && errno == err);
    raw_close(raw);
}
#define check_closed(raw, err) check_closed_at(raw, err, __LINE__)

static const uint8_t key1[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A frame: first byte b0 (FIN, RSV, opcode), the payload masked with key
   when key is not NULL, the length in the shortest form or, with form
   126 or 127, in that one. Returns its size. */
static size_t frame(uint8_t *out, int b0, const void *payload, size_t len,
      const uint8_t *key, int form) {
    size_t n = 2;
    out[0] = (uint8_t)b0;
    if(form == 0) form = len <= 125 ? 0 : len <= 0xffff ? 126 : 127;
    if(form == 0) {
        out[1] = (uint8_t)len;
    } else if(form == 126) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 127;
        for(int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        n = 10;
    }
    if(key) {
        out[1] |= 0x80;
        memcpy(out + n, key, 4);
        n += 4;
    }
    for(size_t i = 0; i < len; i++)
        out[n + i] = ((const uint8_t *)payload)[i] ^ (key ? key[i % 4] : 0);
    return n + len;
}

static void send_frame(int raw, int b0, const void *payload, size_t len,
      const uint8_t *key) {
    uint8_t *buf = malloc(len + 14);
    CHECK(buf);
    size_t n = frame(buf, b0, payload, len, key, 0);
    CHECK(bsend(raw, buf, n, SOON) == 0);
    free(buf);
}

/* What read_frame found. */
struct rframe {
    int b0;
    int masked;
    uint8_t key[4];
    int len_bytes;   /* 0, 2 or 8: the length form used */
};

/* Read one frame from raw; the unmasked payload into buf (cap bytes at
   most); returns the payload length. */
static size_t read_frame(int raw, struct rframe *f, void *buf, size_t cap) {
    uint8_t h[10];
    CHECK(brecv(raw, h, 2, SOON) == 0);
    f->b0 = h[0];
    f->masked = (h[1] & 0x80) != 0;
    uint64_t len = h[1] & 0x7f;
    f->len_bytes = len == 126 ? 2 : len == 127 ? 8 : 0;
    if(f->len_bytes) {
        CHECK(brecv(raw, h, (size_t)f->len_bytes, SOON) == 0);
        len = 0;
        for(int i = 0; i < f->len_bytes; i++) len = len << 8 | h[i];
    }
    if(f->masked) CHECK(brecv(raw, f->key, 4, SOON) == 0);
    CHECK(len <= cap);
    CHECK(brecv(raw, buf, (size_t)len, SOON) == 0);
    if(f->masked)
        for(size_t i = 0; i < len; i++) ((uint8_t *)buf)[i] ^= f->key[i % 4];
    return (size_t)len;
}

/* Nothing more is waiting on raw right now. */
static void check_nothing(int raw) {
    char c;
    CHECK(peek_fds[raw] > 0);
    CHECK(recv(peek_fds[raw] - 1, &c, 1, MSG_PEEK | MSG_DONTWAIT) == -1 &&
        (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void fill(uint8_t *p, size_t n, unsigned seed) {
    for(size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131 + seed + (i >> 9)) & 0xff);
}

/* What a coroutine's call returned. */
struct op {
    volatile int done;
    volatile ssize_t rc;
    volatile int err;
};

static coroutine void recv_co(int s, void *buf, size_t len, int64_t deadline,
      struct op *op) {
    errno = 0;
    int flags;
    op->rc = ws_recv(s, &flags, buf, len, deadline);
    op->err = errno;
    op->done = 1;
}

static coroutine void send_co(int s, int flags, const void *buf, size_t len,
      int64_t deadline, struct op *op) {
    errno = 0;
    op->rc = ws_send(s, flags, buf, len, deadline);
    op->err = errno;
    op->done = 1;
}

static void join(int cr) {
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(hclose(cr) == 0);
}

/* ---- Keys --------------------------------------------------------------- */

static void test_keys(void) {
    char key[WS_KEY_SIZE], key2[WS_KEY_SIZE], resp[WS_KEY_SIZE];
    CHECK_ERR(ws_request_key(NULL), EINVAL);
    memset(key, 'x', sizeof(key));
    CHECK(ws_request_key(key) == 0);
    CHECK(strlen(key) == 24);
    CHECK(key[22] == '=' && key[23] == '=');
    CHECK(ws_request_key(key2) == 0);
    /* 128 random bits each: equal would be a broken generator. */
    CHECK(strcmp(key, key2) != 0);
    CHECK(ws_response_key(key, resp) == 0);
    CHECK(strlen(resp) == 28);

    /* RFC 6455 §1.3. */
    memset(resp, 'x', sizeof(resp));
    CHECK(ws_response_key("dGhlIHNhbXBsZSBub25jZQ==", resp) == 0);
    CHECK(strcmp(resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK_ERR(ws_response_key(NULL, resp), EINVAL);
    CHECK_ERR(ws_response_key("dGhlIHNhbXBsZSBub25jZQ==", NULL), EINVAL);
    /* 15 bytes, 17 bytes, nothing, not base64. */
    CHECK_ERR(ws_response_key("dGhlIHNhbXBsZSBub25j", resp), EPROTO);
    CHECK_ERR(ws_response_key("dGhlIHNhbXBsZSBub25jZWU=", resp), EPROTO);
    CHECK_ERR(ws_response_key("", resp), EPROTO);
    CHECK_ERR(ws_response_key("!!!!", resp), EPROTO);
    /* Leniently decoded, but hashed exactly as given. */
    char a[WS_KEY_SIZE], b[WS_KEY_SIZE];
    CHECK(ws_response_key("dGhlIHNhbXBsZSBub25jZQ== ", a) == 0);
    CHECK(ws_response_key(" dGhlIHNhbXBsZSBub25jZQ==", b) == 0);
    CHECK(strcmp(a, b) != 0);
    CHECK(strcmp(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0);
    CHECK(ws_response_key("dGhlIHNhbXBsZSBub25jZQ", a) == 0);
}

/* ---- Attaching ---------------------------------------------------------- */

static void test_attach_errors(void) {
    int a, b;
    struct ws_storage mem;
    char res[64], host[64];

    ipc_pair2(&a, &b);
    CHECK_ERR(ws_attach_client_mem(a, WS_NOHTTP, NULL, NULL, NULL, -1),
        EINVAL);
    CHECK_ERR(hclose(a), EBADF);
    check_closed(b, EPIPE);
    ipc_pair2(&a, &b);
    CHECK_ERR(ws_attach_server_mem(a, WS_NOHTTP, NULL, 0, NULL, 0, NULL, -1),
        EINVAL);
    check_closed(b, EPIPE);
    ipc_pair2(&a, &b);
    CHECK_ERR(ws_attach_client(a, 0, NULL, "host", SOON), EINVAL);
    check_closed(b, EPIPE);
    ipc_pair2(&a, &b);
    CHECK_ERR(ws_attach_client_mem(a, 0, "/", NULL, &mem, SOON), EINVAL);
    check_closed(b, EPIPE);
    ipc_pair2(&a, &b);
    CHECK_ERR(ws_attach_server(a, 0, NULL, 64, host, sizeof(host), SOON),
        EINVAL);
    check_closed(b, EPIPE);
    ipc_pair2(&a, &b);
    CHECK_ERR(ws_attach_server_mem(a, 0, res, sizeof(res), NULL, 0, &mem,
        SOON), EINVAL);
    check_closed(b, EPIPE);

    /* Not a bytestream: a UDP socket, a WebSocket, a channel. */
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int u = udp_open(&addr, NULL);
    CHECK(u >= 0);
    CHECK_ERR(ws_attach_client(u, WS_NOHTTP, NULL, NULL, -1), ENOTSUP);
    CHECK_ERR(hclose(u), EBADF);
    int raw;
    int w = ws_raw(1, 0, &raw);
    CHECK_ERR(ws_attach_server(w, WS_NOHTTP, NULL, 0, NULL, 0, -1), ENOTSUP);
    CHECK_ERR(hclose(w), EBADF);
    check_closed(raw, EPIPE);
    int ch[2];
    CHECK(chmake(ch) == 0);
    CHECK_ERR(ws_attach_client_mem(ch[0], 0, "/", "h", &mem, SOON), ENOTSUP);
    CHECK(hclose(ch[1]) == 0);

    /* No handle at all. */
    CHECK_ERR(ws_attach_client(-1, WS_NOHTTP, NULL, NULL, -1), EBADF);
    CHECK_ERR(ws_attach_server(9999, WS_NOHTTP, NULL, 0, NULL, 0, -1), EBADF);

    /* The ws_* functions on what is not a WebSocket. */
    ipc_pair2(&a, &b);
    int flags;
    char buf[4];
    struct iolist iol = {buf, 4, NULL, 0};
    CHECK_ERR(ws_send(a, 0, "x", 1, SOON), ENOTSUP);
    CHECK_ERR(ws_recv(a, &flags, buf, 4, SOON), ENOTSUP);
    CHECK_ERR(ws_sendl(a, 0, &iol, &iol, SOON), ENOTSUP);
    CHECK_ERR(ws_recvl(a, &flags, &iol, &iol, SOON), ENOTSUP);
    CHECK_ERR(ws_done(a, 0, NULL, 0, SOON), ENOTSUP);
    CHECK_ERR(ws_detach(a, 0, NULL, 0, SOON), ENOTSUP);
    CHECK_ERR(ws_status(a, NULL, NULL, 0), ENOTSUP);
    CHECK_ERR(ws_send(-1, 0, "x", 1, SOON), EBADF);
    CHECK_ERR(ws_recv(-1, &flags, buf, 4, SOON), EBADF);
    CHECK_ERR(ws_status(-1, NULL, NULL, 0), EBADF);
    CHECK_ERR(ws_done(-1, 1000, NULL, 0, SOON), EBADF);
    CHECK_ERR(ws_detach(-1, 0, NULL, 0, SOON), EBADF);
    CHECK(hclose(a) == 0);
    CHECK(hclose(b) == 0);
}

/* The object at every alignment within caller storage; detach gives the
   bytestream back, under a new number, the WebSocket number dead. */
static void test_storage(void) {
    static char space[8 + sizeof(struct ws_storage) * 2];
    for(int off = 0; off < 8; off++) {
        struct ws_storage *m1 = (struct ws_storage *)(space + off);
        struct ws_storage *m2 = m1 + 1;
        memset(space, 0x5a, sizeof(space));
        int a, b;
        ipc_pair2(&a, &b);
        int c = ws_attach_client_mem(a, WS_NOHTTP, NULL, NULL, m1, -1);
        CHECK(c >= 0);
        int s = ws_attach_server_mem(b, WS_NOHTTP | WS_TEXT, NULL, 0, NULL,
            0, m2, -1);
        CHECK(s >= 0);
        CHECK_ERR(hclose(a), EBADF);
        CHECK(ws_send(c, WS_TEXT, "abc", 3, SOON) == 0);
        char buf[8];
        CHECK(mrecv(s, buf, sizeof(buf), SOON) == 3);
        CHECK(memcmp(buf, "abc", 3) == 0);
        /* Both ends close; each detach then finds the other's frame. */
        CHECK(ws_done(s, 1001, "off", 3, SOON) == 0);
        int tc = ws_detach(c, 1000, NULL, 0, SOON);
        CHECK(tc >= 0);
        int ts = ws_detach(s, 0, NULL, 0, SOON);
        CHECK(ts >= 0);
        CHECK_ERR(ws_send(c, 0, "x", 1, SOON), EBADF);
        CHECK_ERR(ws_status(s, NULL, NULL, 0), EBADF);
        CHECK_ERR(hclose(c), EBADF);
        CHECK(bsend(tc, "raw", 3, SOON) == 0);
        CHECK(brecv(ts, buf, 3, SOON) == 0);
        CHECK(memcmp(buf, "raw", 3) == 0);
        CHECK(hclose(tc) == 0);
        CHECK(hclose(ts) == 0);
    }
}

/* ---- Messages ----------------------------------------------------------- */

static void test_types(void) {
    int c, s;
    ws_pair(0, &c, &s);
    int flags = -1;
    char buf[16];
    CHECK(ws_send(c, WS_TEXT, "text", 4, SOON) == 0);
    CHECK(ws_recv(s, &flags, buf, sizeof(buf), SOON) == 4);
    CHECK(flags == WS_TEXT && memcmp(buf, "text", 4) == 0);
    CHECK(ws_send(s, WS_BINARY, "bin", 3, SOON) == 0);
    CHECK(ws_recv(c, &flags, buf, sizeof(buf), SOON) == 3);
    CHECK(flags == WS_BINARY && memcmp(buf, "bin", 3) == 0);
    /* Other flag bits do not matter; flags may be NULL. */
    CHECK(ws_send(c, WS_TEXT | WS_NOHTTP, "t", 1, SOON) == 0);
    CHECK(ws_recv(s, NULL, buf, sizeof(buf), SOON) == 1);
    /* The socket was attached binary: msend sends binary, mrecv takes
       binary only. A text message is consumed, EPROTO, and the socket
       stays in step. */
    CHECK(msend(c, "m", 1, SOON) == 0);
    CHECK(ws_recv(s, &flags, buf, sizeof(buf), SOON) == 1);
    CHECK(flags == WS_BINARY);
    CHECK(ws_send(c, WS_TEXT, "wrong", 5, SOON) == 0);
    CHECK(msend(c, "right", 5, SOON) == 0);
    CHECK_ERR(mrecv(s, buf, sizeof(buf), SOON), EPROTO);
    CHECK(mrecv(s, buf, sizeof(buf), SOON) == 5);
    CHECK(memcmp(buf, "right", 5) == 0);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);

    ws_pair(WS_TEXT, &c, &s);
    CHECK(msend(s, "txt", 3, SOON) == 0);
    CHECK(ws_recv(c, &flags, buf, sizeof(buf), SOON) == 3);
    CHECK(flags == WS_TEXT);
    CHECK(ws_send(s, WS_BINARY, "b", 1, SOON) == 0);
    CHECK_ERR(mrecv(c, buf, sizeof(buf), SOON), EPROTO);
    CHECK(msend(s, "ok", 2, SOON) == 0);
    CHECK(mrecv(c, buf, sizeof(buf), SOON) == 2);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
}

static coroutine void echo_n(int s, size_t max, int count, struct op *op) {
    uint8_t *buf = malloc(max);
    CHECK(buf);
    op->rc = 0;
    for(int i = 0; i < count; i++) {
        int flags;
        ssize_t n = ws_recv(s, &flags, buf, max, SOON);
        if(n < 0 || ws_send(s, flags, buf, (size_t)n, SOON) < 0) {
            op->rc = -1;
            op->err = errno;
            break;
        }
    }
    free(buf);
    op->done = 1;
}

/* Every length encoding, both ways, big enough to block on the pair. */
static void test_sizes(void) {
    static const size_t sizes[] = {0, 1, 7, 8, 125, 126, 127, 255, 4096,
        65535, 65536, 65537, 65550, 200000, 1048579};
    size_t max = 1048579;
    uint8_t *out = malloc(max), *in = malloc(max);
    CHECK(out && in);
    size_t count = sizeof(sizes) / sizeof(sizes[0]);
    for(int dir = 0; dir < 2; dir++) {
        int c, s;
        ws_pair(0, &c, &s);
        int from = dir ? s : c, to = dir ? c : s;
        struct op op = {0};
        int cr = go(echo_n(to, max, (int)count, &op));
        CHECK(cr >= 0);
        for(size_t i = 0; i < count; i++) {
            fill(out, sizes[i], (unsigned)i);
            int flags;
            CHECK(ws_send(from, i % 2 ? WS_TEXT : 0, out, sizes[i], SOON) == 0);
            memset(in, 0, sizes[i]);
            CHECK(ws_recv(from, &flags, in, max, SOON) == (ssize_t)sizes[i]);
            CHECK(flags == (i % 2 ? WS_TEXT : WS_BINARY));
            CHECK(memcmp(in, out, sizes[i]) == 0);
        }
        join(cr);
        CHECK(op.rc == 0);
        CHECK(hclose(c) == 0);
        CHECK(hclose(s) == 0);
    }
    free(out);
    free(in);
}

/* A list of n elements over buf with the given element sizes (repeated),
   zero-length elements where a size is 0. */
static struct iolist *make_list(struct iolist *iol, size_t n, uint8_t *buf,
      const size_t *sizes, size_t nsizes, size_t *total) {
    size_t at = 0;
    for(size_t i = 0; i < n; i++) {
        iol[i].iol_base = buf + at;
        iol[i].iol_len = sizes[i % nsizes];
        iol[i].iol_next = i + 1 < n ? &iol[i + 1] : NULL;
        iol[i].iol_rsvd = 0;
        at += iol[i].iol_len;
    }
    *total = at;
    return &iol[n - 1];
}

static void check_list(struct iolist *iol, size_t n, uint8_t *buf,
      const size_t *sizes, size_t nsizes) {
    size_t at = 0;
    for(size_t i = 0; i < n; i++) {
        CHECK(iol[i].iol_base == buf + at);
        CHECK(iol[i].iol_len == sizes[i % nsizes]);
        CHECK(iol[i].iol_next == (i + 1 < n ? &iol[i + 1] : NULL));
        CHECK(iol[i].iol_rsvd == 0);
        at += iol[i].iol_len;
    }
}

/* Masking and unmasking run across element boundaries at every offset
   modulo 4, and across frames whose boundaries fall inside elements. */
static void test_lists(void) {
    static const size_t send_sizes[] = {1, 0, 3, 5, 2, 7, 0, 11, 4, 1000, 9};
    static const size_t recv_sizes[] = {2, 5, 0, 1, 6, 3, 13, 1, 2000, 3};
    enum { N = 23 };
    static uint8_t out[40000], in[40000], want[40000];
    struct iolist so[N], ri[N];
    for(int dir = 0; dir < 2; dir++) {
        int c, s;
        ws_pair(0, &c, &s);
        int from = dir ? s : c, to = dir ? c : s;
        size_t slen, rlen;
        struct iolist *slast = make_list(so, N, out, send_sizes, 11, &slen);
        struct iolist *rlast = make_list(ri, N, in, recv_sizes, 10, &rlen);
        CHECK(rlen >= slen);
        fill(out, slen, 7);
        memset(in, 0xee, sizeof(in));
        CHECK(ws_sendl(from, WS_TEXT, so, slast, SOON) == 0);
        check_list(so, N, out, send_sizes, 11);
        int flags;
        CHECK(ws_recvl(to, &flags, ri, rlast, SOON) == (ssize_t)slen);
        CHECK(flags == WS_TEXT);
        check_list(ri, N, in, recv_sizes, 10);
        CHECK(memcmp(in, out, slen) == 0);
        CHECK(in[slen] == 0xee);

        /* Elements with a NULL base are skipped bytes. */
        struct iolist skip[3] = {{in, 3, &skip[1], 0}, {NULL, 5, &skip[2], 0},
            {in + 3, 100, NULL, 0}};
        fill(out, 50, 3);
        CHECK(msend(from, out, 50, SOON) == 0);
        CHECK(mrecvl(to, &skip[0], &skip[2], SOON) == 50);
        CHECK(memcmp(in, out, 3) == 0);
        CHECK(memcmp(in + 3, out + 8, 42) == 0);
        CHECK(skip[1].iol_base == NULL && skip[1].iol_len == 5);
        CHECK(skip[2].iol_next == NULL);

        /* Dropped messages: their size comes back. */
        CHECK(msend(from, out, 40, SOON) == 0);
        CHECK(mrecvl(to, NULL, NULL, SOON) == 40);
        CHECK(ws_send(from, WS_TEXT, out, 12345, SOON) == 0);
        CHECK(ws_recvl(to, &flags, NULL, NULL, SOON) == 12345);
        CHECK(flags == WS_TEXT);
        CHECK(ws_send(from, 0, NULL, 0, SOON) == 0);
        CHECK(ws_recv(to, &flags, NULL, 0, SOON) == 0);
        CHECK(flags == WS_BINARY);
        CHECK(hclose(c) == 0);
        CHECK(hclose(s) == 0);
    }
}

static void test_list_errors(void) {
    int c, s;
    ws_pair(0, &c, &s);
    char buf[16];
    struct iolist a = {buf, 1, NULL, 0}, b = {buf, 1, NULL, 0},
        d = {buf, 1, NULL, 0};
    int socks[2] = {c, s};
    for(int i = 0; i < 2; i++) {
        int w = socks[i];
        a.iol_next = NULL;
        CHECK_ERR(ws_sendl(w, 0, NULL, &a, SOON), EINVAL);
        CHECK_ERR(ws_sendl(w, 0, &a, NULL, SOON), EINVAL);
        CHECK_ERR(msendl(w, NULL, NULL, SOON), EINVAL);
        a.iol_next = &b;
        CHECK_ERR(ws_sendl(w, 0, &b, &a, SOON), EINVAL);
        /* A loop that never reaches last. */
        b.iol_next = &a;
        CHECK_ERR(ws_sendl(w, 0, &a, &d, SOON), EINVAL);
        CHECK_ERR(msendl(w, &a, &d, SOON), EINVAL);
        CHECK_ERR(ws_recvl(w, NULL, &a, &d, SOON), EINVAL);
        CHECK_ERR(mrecvl(w, &a, &d, SOON), EINVAL);
        CHECK(a.iol_rsvd == 0 && b.iol_rsvd == 0);
        /* last not on the chain. */
        b.iol_next = NULL;
        CHECK_ERR(ws_sendl(w, 0, &a, &d, SOON), EINVAL);
        CHECK_ERR(ws_recvl(w, NULL, &a, &d, SOON), EINVAL);
        /* iol_rsvd must be 0. */
        b.iol_rsvd = 1;
        CHECK_ERR(ws_sendl(w, 0, &a, &b, SOON), EINVAL);
        CHECK_ERR(mrecvl(w, &a, &b, SOON), EINVAL);
        CHECK(b.iol_rsvd == 1);
        b.iol_rsvd = 0;
        /* A NULL base with bytes in a send: nothing is sent. */
        b.iol_base = NULL;
        CHECK_ERR(ws_sendl(w, 0, &a, &b, SOON), EINVAL);
        CHECK_ERR(msendl(w, &a, &b, SOON), EINVAL);
        CHECK_ERR(ws_send(w, 0, NULL, 1, SOON), EINVAL);
        b.iol_base = buf;
        CHECK_ERR(ws_recvl(w, NULL, NULL, &a, SOON), EINVAL);
        CHECK_ERR(ws_recvl(w, NULL, &a, NULL, SOON), EINVAL);
        CHECK_ERR(mrecvl(w, &a, NULL, SOON), EINVAL);
    }
    /* Neither direction of either socket was harmed. */
    CHECK(ws_send(c, 0, "up", 2, SOON) == 0);
    CHECK(ws_recv(s, NULL, buf, sizeof(buf), SOON) == 2);
    CHECK(ws_send(s, 0, "up", 2, SOON) == 0);
    CHECK(ws_recv(c, NULL, buf, sizeof(buf), SOON) == 2);

    /* Too big for the list: EMSGSIZE, then the receive side is broken,
       the send side still fine. */
    CHECK(ws_send(c, 0, "0123456789", 10, SOON) == 0);
    CHECK(ws_send(c, 0, "next", 4, SOON) == 0);
    CHECK_ERR(ws_recv(s, NULL, buf, 9, SOON), EMSGSIZE);
    CHECK_ERR(ws_recv(s, NULL, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK_ERR(mrecv(s, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(ws_send(s, 0, "still", 5, SOON) == 0);
    CHECK(ws_recv(c, NULL, buf, sizeof(buf), SOON) == 5);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
}

/* ---- The wire ----------------------------------------------------------- */

/* What our client and server write: one FIN frame per message with the
   shortest length, masked with a fresh key by the client only. */
static void test_wire_send(void) {
    static const size_t sizes[] = {0, 5, 125, 126, 65535, 65536, 70000};
    static uint8_t out[70000], in[70000];
    for(int client = 0; client < 2; client++) {
        int raw;
        int w = ws_raw(client, 0, &raw);
        uint8_t keys[7][4];
        for(size_t i = 0; i < 7; i++) {
            fill(out, sizes[i], (unsigned)i);
            CHECK(ws_send(w, i % 2 ? WS_TEXT : 0, out, sizes[i], SOON) == 0);
            struct rframe f;
            CHECK(read_frame(raw, &f, in, sizeof(in)) == sizes[i]);
            CHECK(f.b0 == (0x80 | (i % 2 ? 0x1 : 0x2)));
            CHECK(f.masked == client);
            CHECK(f.len_bytes == (sizes[i] <= 125 ? 0 :
                sizes[i] <= 65535 ? 2 : 8));
            CHECK(memcmp(in, out, sizes[i]) == 0);
            memcpy(keys[i], f.key, 4);
        }
        if(client) {
            /* Seven random keys: any two equal would be a 1 in 2^32/21
               coincidence. */
            for(int i = 0; i < 7; i++)
                for(int j = i + 1; j < 7; j++)
                    CHECK(memcmp(keys[i], keys[j], 4) != 0);
        }
        /* A close frame: status, then reason. */
        CHECK(ws_done(w, 1001, "going", 5, SOON) == 0);
        struct rframe f;
        CHECK(read_frame(raw, &f, in, sizeof(in)) == 7);
        CHECK(f.b0 == 0x88 && f.masked == client);
        CHECK(memcmp(in, "\x03\xe9going", 7) == 0);
        check_nothing(raw);
        CHECK(hclose(w) == 0);
        check_closed(raw, EPIPE);
    }
    /* The exact bytes of a server frame. */
    int raw;
    int w = ws_raw(0, WS_TEXT, &raw);
    CHECK(msend(w, "Hello", 5, SOON) == 0);
    uint8_t b[7];
    CHECK(brecv(raw, b, 7, SOON) == 0);
    CHECK(memcmp(b, "\x81\x05Hello", 7) == 0);
    CHECK(ws_done(w, 0, NULL, 0, SOON) == 0);
    CHECK(brecv(raw, b, 2, SOON) == 0);
    CHECK(memcmp(b, "\x88\x00", 2) == 0);
    CHECK(ws_done(w, 0, NULL, 0, SOON) == -1 && errno == EPIPE);
    CHECK(hclose(w) == 0);
    raw_close(raw);
}

/* ---- Receiving hand-made frames ----------------------------------------- */

/* Fragments reassembled, control frames between them, pings answered. */
static void test_fragments(void) {
    for(int client = 0; client < 2; client++) {
        int raw;
        int w = ws_raw(client, 0, &raw);
        /* A server gets masked frames, a client unmasked ones. */
        const uint8_t *k = client ? NULL : key1;
        send_frame(raw, 0x01, "ab", 2, k);
        send_frame(raw, 0x89, "hi", 2, k);
        send_frame(raw, 0x00, "cde", 3, k);
        send_frame(raw, 0x8a, "pong", 4, k);
        send_frame(raw, 0x00, "", 0, k);
        send_frame(raw, 0x80, "fgh", 3, k);
        char buf[128];
        int flags;
        CHECK(ws_recv(w, &flags, buf, sizeof(buf), SOON) == 8);
        CHECK(flags == WS_TEXT && memcmp(buf, "abcdefgh", 8) == 0);
        /* The pong carries the ping's payload; a client masks it. */
        struct rframe f;
        CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 2);
        CHECK(f.b0 == 0x8a && f.masked == client);
        CHECK(memcmp(buf, "hi", 2) == 0);
        check_nothing(raw);

        /* Pings on their own, empty and full size, before a message. */
        uint8_t big[125];
        fill(big, sizeof(big), 9);
        send_frame(raw, 0x89, "", 0, k);
        send_frame(raw, 0x89, big, 125, k);
        send_frame(raw, 0x82, "x", 1, k);
        CHECK(ws_recv(w, &flags, buf, sizeof(buf), SOON) == 1);
        CHECK(flags == WS_BINARY);
        CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 0);
        CHECK(f.b0 == 0x8a);
        CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 125);
        CHECK(memcmp(buf, big, 125) == 0);

        /* Longer length forms than needed are accepted; so are empty
           fragments and a message of nothing. */
        uint8_t fr[64];
        size_t n = frame(fr, 0x82, "12345", 5, k, 126);
        CHECK(bsend(raw, fr, n, SOON) == 0);
        CHECK(ws_recv(w, &flags, buf, sizeof(buf), SOON) == 5);
        n = frame(fr, 0x81, "678", 3, k, 127);
        CHECK(bsend(raw, fr, n, SOON) == 0);
        CHECK(ws_recv(w, &flags, buf, sizeof(buf), SOON) == 3);
        CHECK(flags == WS_TEXT && memcmp(buf, "678", 3) == 0);
        send_frame(raw, 0x02, "", 0, k);
        send_frame(raw, 0x80, "", 0, k);
        CHECK(ws_recv(w, &flags, buf, sizeof(buf), SOON) == 0);
        CHECK(flags == WS_BINARY);

        /* A fragmented message into a scattered list: each frame's mask
           starts again at its first byte, wherever that falls. */
        uint8_t msg[100], in[100];
        fill(msg, sizeof(msg), 4);
        static const uint8_t key2[4] = {0xa5, 0x01, 0x7e, 0xc3};
        send_frame(raw, 0x02, msg, 13, k);
        send_frame(raw, 0x00, msg + 13, 30, client ? NULL : key2);
        send_frame(raw, 0x80, msg + 43, 57, k);
        struct iolist l[4] = {{in, 7, &l[1], 0}, {in + 7, 9, &l[2], 0},
            {in + 16, 33, &l[3], 0}, {in + 49, 51, NULL, 0}};
        CHECK(ws_recvl(w, &flags, &l[0], &l[3], SOON) == 100);
        CHECK(memcmp(in, msg, 100) == 0);
        CHECK(l[0].iol_len == 7 && l[1].iol_base == in + 7 &&
            l[2].iol_len == 33 && l[3].iol_next == NULL);
        check_nothing(raw);
        CHECK(hclose(w) == 0);
        raw_close(raw);
    }
}

/* Each bad frame: EPROTO (or EMSGSIZE), then ECONNRESET; sending still
   works. Frames for a server, each masked with a zero key. */
static void test_bad_frames(void) {
    static const struct {
        const char *what;
        uint8_t bytes[24];
        size_t len;
        int err;
    } bad[] = {
        {"continuation first", {0x80, 0x82, 0, 0, 0, 0, 'a', 'b'}, 8, EPROTO},
        {"text inside a message", {0x01, 0x81, 0, 0, 0, 0, 'a', 0x81, 0x81,
            0, 0, 0, 0, 'b'}, 14, EPROTO},
        {"binary inside a message", {0x02, 0x81, 0, 0, 0, 0, 'a', 0x82, 0x80,
            0, 0, 0, 0}, 13, EPROTO},
        {"opcode 3", {0x83, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"opcode 7", {0x87, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"opcode 11", {0x8b, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"opcode 15", {0x8f, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"RSV1", {0xc2, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"RSV2", {0xa2, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"RSV3", {0x92, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"unmasked", {0x82, 0x01, 'a'}, 3, EPROTO},
        {"fragmented ping", {0x09, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"fragmented close", {0x08, 0x80, 0, 0, 0, 0}, 6, EPROTO},
        {"ping of 126 bytes", {0x89, 0xfe, 0, 126, 0, 0, 0, 0}, 8, EPROTO},
        {"close of 1 byte", {0x88, 0x81, 0, 0, 0, 0, 3}, 7, EPROTO},
        {"close status 999", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe7}, 8, EPROTO},
        {"close status 5000", {0x88, 0x82, 0, 0, 0, 0, 0x13, 0x88}, 8,
            EPROTO},
        {"close status 0", {0x88, 0x83, 0, 0, 0, 0, 0, 0, 'x'}, 9, EPROTO},
        {"64-bit length, top bit", {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0}, 14, EPROTO},
        {"message over the buffer", {0x82, 0x89, 0, 0, 0, 0, 1, 2, 3, 4, 5,
            6, 7, 8, 9}, 15, EMSGSIZE},
        {"fragments over the buffer", {0x02, 0x85, 0, 0, 0, 0, 1, 2, 3, 4, 5,
            0x80, 0x84, 0, 0, 0, 0, 6, 7, 8, 9}, 21, EMSGSIZE},
    };
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int raw;
        int w = ws_raw(0, 0, &raw);
        CHECK(bsend(raw, bad[i].bytes, bad[i].len, SOON) == 0);
        char buf[8];
        errno = 0;
        ssize_t rc = ws_recv(w, NULL, buf, sizeof(buf), SOON);
        if(rc != -1 || errno != bad[i].err)
            fprintf(stderr, "%s: %zd, errno %d\n", bad[i].what, rc, errno);
        CHECK(rc == -1 && errno == bad[i].err);
        CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), SOON), ECONNRESET);
        CHECK_ERR(ws_status(w, NULL, NULL, 0), EAGAIN);
        CHECK(ws_send(w, 0, "ok", 2, SOON) == 0);
        CHECK(brecv(raw, buf, 4, SOON) == 0);
        CHECK(memcmp(buf, "\x82\x02ok", 4) == 0);
        /* ws_detach cannot finish on a broken receive side. */
        CHECK_ERR(ws_detach(w, 1002, NULL, 0, SOON), ECONNRESET);
        CHECK(hclose(w) == 0);
        raw_close(raw);
    }
    /* A client refuses masked frames. */
    int raw;
    int w = ws_raw(1, 0, &raw);
    send_frame(raw, 0x82, "x", 1, key1);
    CHECK_ERR(mrecv(w, NULL, 0, SOON), EPROTO);
    CHECK_ERR(mrecv(w, NULL, 0, SOON), ECONNRESET);
    CHECK(hclose(w) == 0);
    raw_close(raw);
    /* The stream ending inside a frame, or between frames. */
    w = ws_raw(1, 0, &raw);
    CHECK(bsend(raw, "\x82\x05" "ab", 4, SOON) == 0);
    raw_close(raw);
    char buf[8];
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), SOON), EPIPE);
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(hclose(w) == 0);
}

/* A ping that arrives while our send is blocked: the sender writes the
   pong after its message, and only for the latest ping. */
static void test_pong_after_send(void) {
    size_t big = 8 * 1024 * 1024;
    uint8_t *out = malloc(big), *in = malloc(big);
    CHECK(out && in);
    fill(out, big, 1);
    for(int client = 0; client < 2; client++) {
        int raw;
        int w = ws_raw(client, 0, &raw);
        const uint8_t *k = client ? NULL : key1;
        struct op sop = {0}, rop = {0};
        char buf[16];
        int scr = go(send_co(w, 0, out, big, SOON, &sop));
        CHECK(scr >= 0);
        int rcr = go(recv_co(w, buf, sizeof(buf), SOON, &rop));
        CHECK(rcr >= 0);
        send_frame(raw, 0x89, "p1", 2, k);
        send_frame(raw, 0x89, "p2", 2, k);
        send_frame(raw, 0x81, "marker", 6, k);
        /* The receiver has handled both pings when the marker is in. */
        join(rcr);
        CHECK(rop.rc == 6 && memcmp(buf, "marker", 6) == 0);
        CHECK(!sop.done);
        struct rframe f;
        CHECK(read_frame(raw, &f, in, big) == big);
        CHECK(f.b0 == 0x82 && memcmp(in, out, big) == 0);
        CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 2);
        CHECK(f.b0 == 0x8a && memcmp(buf, "p2", 2) == 0);
        join(scr);
        CHECK(sop.rc == 0);
        check_nothing(raw);

        /* No pong once our close frame is out; none after the peer's
           close either (it is not read past). */
        CHECK(ws_done(w, 1000, NULL, 0, SOON) == 0);
        CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 2);
        CHECK(f.b0 == 0x88);
        send_frame(raw, 0x89, "p3", 2, k);
        send_frame(raw, 0x81, "after", 5, k);
        CHECK(ws_recv(w, NULL, buf, sizeof(buf), SOON) == 5);
        check_nothing(raw);
        CHECK(hclose(w) == 0);
        raw_close(raw);
    }
    free(out);
    free(in);
}

/* ---- Closing ------------------------------------------------------------ */

static void test_done_status(void) {
    int c, s;
    ws_pair(0, &c, &s);
    int status = -1;
    char buf[200];
    /* Arguments first, before the handle is even looked at. */
    CHECK_ERR(ws_status(s, NULL, NULL, 1), EINVAL);
    CHECK_ERR(ws_status(-1, NULL, NULL, 1), EINVAL);
    CHECK_ERR(ws_status(s, &status, buf, sizeof(buf)), EAGAIN);
    CHECK_ERR(ws_done(-1, 999, NULL, 0, SOON), EINVAL);
    CHECK_ERR(ws_done(c, 999, NULL, 0, SOON), EINVAL);
    CHECK_ERR(ws_done(c, 5000, NULL, 0, SOON), EINVAL);
    CHECK_ERR(ws_done(c, 1, NULL, 0, SOON), EINVAL);
    CHECK_ERR(ws_done(c, -1000, NULL, 0, SOON), EINVAL);
    CHECK_ERR(ws_done(c, 1000, NULL, 1, SOON), EINVAL);
    CHECK_ERR(ws_done(c, 1000, buf, 124, SOON), EINVAL);
    CHECK_ERR(ws_done(c, 0, buf, 126, SOON), EINVAL);
    CHECK_ERR(ws_detach(c, 4999 + 1, NULL, 0, SOON), EINVAL);
    CHECK_ERR(ws_detach(c, 1000, buf, 124, SOON), EINVAL);
    CHECK_ERR(ws_detach(c, 1000, NULL, 3, SOON), EINVAL);
    /* None of that sent anything: the next message comes first. */
    CHECK(ws_send(c, 0, "m", 1, SOON) == 0);
    CHECK(ws_recv(s, NULL, buf, sizeof(buf), SOON) == 1);

    /* The longest reason with a status. */
    char reason[123];
    fill((uint8_t *)reason, sizeof(reason), 2);
    CHECK(ws_done(c, 4999, reason, 123, SOON) == 0);
    CHECK_ERR(ws_done(c, 1000, NULL, 0, SOON), EPIPE);
    CHECK_ERR(ws_send(c, 0, "x", 1, SOON), EPIPE);
    CHECK_ERR(msend(c, "x", 1, SOON), EPIPE);
    CHECK_ERR(ws_recv(s, NULL, buf, sizeof(buf), SOON), EPIPE);
    CHECK_ERR(ws_recv(s, NULL, buf, sizeof(buf), SOON), EPIPE);
    CHECK_ERR(mrecv(s, buf, sizeof(buf), SOON), EPIPE);
    CHECK(ws_status(s, &status, buf, sizeof(buf)) == 123);
    CHECK(status == 4999 && memcmp(buf, reason, 123) == 0);
    CHECK(ws_status(s, NULL, NULL, 0) == 123);
    status = -1;
    CHECK(ws_status(s, &status, buf, 123) == 123);
    CHECK(status == 4999);
    CHECK_ERR(ws_status(s, &status, buf, 122), EMSGSIZE);
    /* No close frame goes back by itself; the server can still send and
       the client still receive. */
    CHECK(ws_send(s, WS_TEXT, "late", 4, SOON) == 0);
    int flags;
    CHECK(ws_recv(c, &flags, buf, sizeof(buf), SOON) == 4);
    CHECK(flags == WS_TEXT);
    CHECK_ERR(ws_status(c, NULL, NULL, 0), EAGAIN);
    /* A close frame without a status, then with one and no reason. */
    CHECK(ws_done(s, 0, NULL, 0, SOON) == 0);
    CHECK_ERR(ws_recv(c, NULL, buf, sizeof(buf), SOON), EPIPE);
    status = -1;
    CHECK(ws_status(c, &status, buf, sizeof(buf)) == 0);
    CHECK(status == 0);
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);

    ws_pair(0, &c, &s);
    CHECK(ws_done(s, 1000, NULL, 0, SOON) == 0);
    CHECK_ERR(mrecvl(c, NULL, NULL, SOON), EPIPE);
    CHECK(ws_status(c, &status, NULL, 0) == 0);
    CHECK(status == 1000);
    /* 125 bytes without a status are allowed and sent as they are; the
       peer reads the first two as a status (here 1000). */
    char raw125[125];
    memset(raw125, 'r', sizeof(raw125));
    raw125[0] = 0x03;
    raw125[1] = (char)0xe8;
    CHECK(ws_done(c, 0, raw125, 125, SOON) == 0);
    CHECK_ERR(ws_recv(s, NULL, buf, sizeof(buf), SOON), EPIPE);
    CHECK(ws_status(s, &status, buf, sizeof(buf)) == 123);
    CHECK(status == 1000 && buf[0] == 'r' && buf[122] == 'r');
    CHECK(hclose(c) == 0);
    CHECK(hclose(s) == 0);
}

static coroutine void detach_co(int w, int status, int64_t deadline,
      struct op *op) {
    errno = 0;
    op->rc = ws_detach(w, status, "bye", 3, deadline);
    op->err = errno;
    op->done = 1;
}

static void test_detach(void) {
    /* Both sides at once: each sends its close frame, then waits for the
       other's; the streams continue right after the close frames. */
    int c, s;
    ws_pair(0, &c, &s);
    CHECK(ws_send(c, 0, "a", 1, SOON) == 0);
    CHECK(ws_send(c, WS_TEXT, "b", 1, SOON) == 0);
    CHECK(ws_send(c, 0, NULL, 0, SOON) == 0);
    struct op op = {0};
    int cr = go(detach_co(c, 1000, SOON, &op));
    CHECK(cr >= 0);
    /* The server drops the three messages on its way to the close. */
    int ts = ws_detach(s, 1001, NULL, 0, SOON);
    CHECK(ts >= 0);
    join(cr);
    int tc = (int)op.rc;
    CHECK(tc >= 0);
    CHECK(tc != c && ts != s);
    CHECK_ERR(ws_recv(s, NULL, NULL, 0, SOON), EBADF);
    CHECK_ERR(hclose(c), EBADF);
    char buf[8];
    CHECK(bsend(tc, "to s", 4, SOON) == 0);
    CHECK(bsend(ts, "to c", 4, SOON) == 0);
    CHECK(brecv(ts, buf, 4, SOON) == 0);
    CHECK(memcmp(buf, "to s", 4) == 0);
    CHECK(brecv(tc, buf, 4, SOON) == 0);
    CHECK(memcmp(buf, "to c", 4) == 0);
    CHECK(hclose(tc) == 0);
    CHECK(hclose(ts) == 0);

    /* The peer's close frame already in: no waiting; after ws_done no
       second close frame. */
    int raw;
    int w = ws_raw(1, 0, &raw);
    CHECK(ws_done(w, 1000, NULL, 0, SOON) == 0);
    send_frame(raw, 0x81, "dropped", 7, NULL);
    send_frame(raw, 0x88, "\x03\xe8", 2, NULL);
    send_frame(raw, 0x82, "after", 5, NULL);
    int t = ws_detach(w, 4000, "ignored", 7, SOON);
    CHECK(t >= 0);
    struct rframe f;
    CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 2);
    CHECK(f.b0 == 0x88 && memcmp(buf, "\x03\xe8", 2) == 0);
    check_nothing(raw);
    /* The stream is positioned right after the peer's close frame. */
    CHECK(brecv(t, buf, 7, SOON) == 0);
    CHECK(memcmp(buf, "\x82\x05" "after", 7) == 0);
    CHECK(hclose(t) == 0);
    raw_close(raw);

    /* A peer that never closes: ETIMEDOUT, and the handle stays ours. */
    w = ws_raw(0, 0, &raw);
    int64_t start = now();
    CHECK_ERR(ws_detach(w, 1000, NULL, 0, now() + 100), ETIMEDOUT);
    CHECK(now() - start >= 100);
    CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 2);
    CHECK(f.b0 == 0x88);
    CHECK_ERR(ws_detach(w, 1000, NULL, 0, SOON), ECONNRESET);
    CHECK(hclose(w) == 0);
    check_closed(raw, EPIPE);

    /* A peer that never stops sending: still ETIMEDOUT at the deadline. */
    w = ws_raw(1, 0, &raw);
    static uint8_t flood[16384];
    size_t n = 0;
    while(n + 16 < sizeof(flood)) n += frame(flood + n, 0x82, "", 0, NULL, 0);
    struct op fop = {0};
    start = now();
    int fcr = go(detach_co(w, 1000, now() + 200, &fop));
    CHECK(fcr >= 0);
    while(!fop.done && now() - start < 5000)
        if(bsend(raw, flood, n, now() + 100) < 0) break;
    CHECK(fop.done);
    CHECK(fop.rc == -1 && fop.err == ETIMEDOUT);
    CHECK(now() - start >= 200 && now() - start < 5000);
    join(fcr);
    CHECK(hclose(w) == 0);
    raw_close(raw);
}

/* ---- Blocking, deadlines, cancellation ---------------------------------- */

static void test_blocking(void) {
    int raw;
    int w = ws_raw(1, 0, &raw);
    char buf[16];
    /* EBUSY in each direction while a call waits; the other direction
       is free. */
    struct op rop = {0};
    int rcr = go(recv_co(w, buf, sizeof(buf), SOON, &rop));
    CHECK(rcr >= 0);
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), SOON), EBUSY);
    CHECK_ERR(mrecv(w, buf, sizeof(buf), SOON), EBUSY);
    CHECK_ERR(ws_detach(w, 0, NULL, 0, SOON), EBUSY);
    size_t big = 4 * 1024 * 1024;
    uint8_t *out = malloc(big), *in = malloc(big);
    CHECK(out && in);
    fill(out, big, 5);
    struct op sop = {0};
    int scr = go(send_co(w, 0, out, big, SOON, &sop));
    CHECK(scr >= 0);
    CHECK(!sop.done);
    CHECK_ERR(ws_send(w, 0, "x", 1, SOON), EBUSY);
    CHECK_ERR(msend(w, "x", 1, SOON), EBUSY);
    CHECK_ERR(ws_done(w, 1000, NULL, 0, SOON), EBUSY);
    struct rframe f;
    CHECK(read_frame(raw, &f, in, big) == big);
    CHECK(memcmp(in, out, big) == 0);
    join(scr);
    CHECK(sop.rc == 0);
    send_frame(raw, 0x81, "wake", 4, NULL);
    join(rcr);
    CHECK(rop.rc == 4);
    free(out);
    free(in);

    /* A receive that times out breaks the receive side only. */
    int64_t start = now();
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), now() + 50), ETIMEDOUT);
    CHECK(now() - start >= 50);
    send_frame(raw, 0x81, "late", 4, NULL);
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(ws_send(w, 0, "ok", 2, SOON) == 0);
    CHECK(read_frame(raw, &f, buf, sizeof(buf)) == 2);
    /* Deadline 0 with nothing there. */
    CHECK(hclose(w) == 0);
    raw_close(raw);
    w = ws_raw(0, 0, &raw);
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), 0), ETIMEDOUT);
    CHECK(hclose(w) == 0);
    raw_close(raw);
    /* Deadline 0 with a message waiting: it is returned. */
    w = ws_raw(0, 0, &raw);
    send_frame(raw, 0x82, "here", 4, key1);
    CHECK(ws_recv(w, NULL, buf, sizeof(buf), 0) == 4);
    CHECK(hclose(w) == 0);
    raw_close(raw);

    /* Cancellation of a blocked receive. */
    w = ws_raw(1, 0, &raw);
    struct op cop = {0};
    int ccr = go(recv_co(w, buf, sizeof(buf), -1, &cop));
    CHECK(ccr >= 0);
    CHECK(hclose(ccr) == 0);
    CHECK(cop.done && cop.rc == -1 && cop.err == ECANCELED);
    CHECK_ERR(ws_recv(w, NULL, buf, sizeof(buf), SOON), ECONNRESET);
    CHECK(hclose(w) == 0);
    check_closed(raw, EPIPE);

    /* The handle closed under a blocked receive and a blocked send. */
    w = ws_raw(1, 0, &raw);
    big = 4 * 1024 * 1024;
    out = calloc(1, big);
    CHECK(out);
    struct op bop = {0}, bsop = {0};
    int bcr = go(recv_co(w, buf, sizeof(buf), -1, &bop));
    int bscr = go(send_co(w, 0, out, big, -1, &bsop));
    CHECK(bcr >= 0 && bscr >= 0);
    /* hclose sends no close frame: the peer sees a bare end of stream
       after the part of the message that got out. */
    CHECK(hclose(w) == 0);
    join(bcr);
    join(bscr);
    CHECK(bop.rc == -1 && bop.err == EBADF);
    CHECK(bsop.rc == -1 && bsop.err == EBADF);
    free(out);
    raw_close(raw);

    /* A send whose peer is gone: the error, then ECONNRESET. */
    w = ws_raw(0, 0, &raw);
    raw_close(raw);
    CHECK_ERR(ws_send(w, 0, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(ws_send(w, 0, "x", 1, SOON), ECONNRESET);
    CHECK_ERR(ws_done(w, 1000, NULL, 0, SOON), ECONNRESET);
    CHECK_ERR(ws_detach(w, 1000, NULL, 0, SOON), ECONNRESET);
    CHECK(hclose(w) == 0);
}

/* Several client sends of big messages blocked at once in one thread (one
   takes the thread's masking buffer, the others their own), and clients
   in other threads, which exit with their buffers freed. */
static coroutine void big_echo_check(int c, unsigned seed, struct op *op) {
    size_t len = 300000;
    uint8_t *out = malloc(len), *in = malloc(len);
    CHECK(out && in);
    fill(out, len, seed);
    op->rc = 0;
    for(int i = 0; i < 3; i++) {
        int flags;
        if(ws_send(c, 0, out, len, SOON) < 0 ||
              ws_recv(c, &flags, in, len, SOON) != (ssize_t)len ||
              memcmp(in, out, len) != 0)
            op->rc = -1;
    }
    free(out);
    free(in);
    op->done = 1;
}

static void run_big_echoes(int count) {
    int c[4], s[4], crs[4], ecrs[4];
    struct op ops[4], eops[4];
    memset(ops, 0, sizeof(ops));
    memset(eops, 0, sizeof(eops));
    for(int i = 0; i < count; i++) {
        ws_pair(0, &c[i], &s[i]);
        ecrs[i] = go(echo_n(s[i], 300000, 3, &eops[i]));
        crs[i] = go(big_echo_check(c[i], (unsigned)i, &ops[i]));
        CHECK(ecrs[i] >= 0 && crs[i] >= 0);
    }
    for(int i = 0; i < count; i++) {
        join(crs[i]);
        join(ecrs[i]);
        CHECK(ops[i].rc == 0 && eops[i].rc == 0);
        CHECK(hclose(c[i]) == 0);
        CHECK(hclose(s[i]) == 0);
    }
}

static void *thread_main(void *arg) {
    (void)arg;
    run_big_echoes(2);
    return NULL;
}

static void test_buffers(void) {
    run_big_echoes(4);
#if defined DILL_TEST_THREADS
    /* Built with one scheduler per thread (not --disable-threads). */
    pthread_t t[2];
    for(int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, thread_main, NULL) == 0);
    for(int i = 0; i < 2; i++) CHECK(pthread_join(t[i], NULL) == 0);
#else
    (void)thread_main;
#endif
}

/* Framing fits a small caller-memory stack (go_mem): both ends of an echo,
   pings and the closing handshake included. */
static coroutine void small_client(int c, struct op *op) {
    static uint8_t out[100000], in[100000];
    fill(out, sizeof(out), 8);
    op->rc = 0;
    size_t sizes[3] = {64, 300, sizeof(out)};
    for(int i = 0; i < 3; i++) {
        if(ws_send(c, WS_TEXT, out, sizes[i], SOON) < 0 ||
              ws_recv(c, NULL, in, sizeof(in), SOON) != (ssize_t)sizes[i] ||
              memcmp(in, out, sizes[i]) != 0)
            op->rc = -1;
    }
    int t = ws_detach(c, 1000, "small", 5, SOON);
    if(t < 0) op->rc = -1;
    else hclose(t);
    op->done = 1;
}

static coroutine void small_server(int s, struct op *op) {
    static uint8_t buf[100000];
    op->rc = 0;
    for(;;) {
        int flags;
        ssize_t n = ws_recv(s, &flags, buf, sizeof(buf), SOON);
        if(n < 0) break;
        if(ws_send(s, flags, buf, (size_t)n, SOON) < 0) op->rc = -1;
    }
    if(errno != EPIPE) op->rc = -1;
    int t = ws_detach(s, 1000, NULL, 0, SOON);
    if(t < 0) op->rc = -1;
    else hclose(t);
    op->done = 1;
}

static void test_small_stacks(void) {
    static char stack1[SMALL_STACK], stack2[SMALL_STACK];
    int c, s;
    ws_pair(0, &c, &s);
    struct op cop = {0}, sop = {0};
    int scr = go_mem(small_server(s, &sop), stack1, sizeof(stack1));
    int ccr = go_mem(small_client(c, &cop), stack2, sizeof(stack2));
    CHECK(scr >= 0 && ccr >= 0);
    join(ccr);
    join(scr);
    CHECK(cop.rc == 0 && sop.rc == 0);
}

/* ---- The HTTP handshake ------------------------------------------------- */

struct attach_op {
    int s;
    int flags;
    const char *resource;
    const char *host;
    int64_t deadline;
    volatile int rc;
    volatile int err;
};

static coroutine void client_co(struct attach_op *op) {
    errno = 0;
    op->rc = ws_attach_client(op->s, op->flags, op->resource, op->host,
        op->deadline);
    op->err = errno;
}

static void test_handshake(void) {
    for(int mem = 0; mem < 2; mem++) {
        int a, b;
        tcp_pair(&a, &b);
        struct attach_op op = {a, WS_TEXT, "/chat?room=1", "example.com:80",
            SOON, 0, 0};
        int cr = go(client_co(&op));
        CHECK(cr >= 0);
        char res[64], host[64];
        struct ws_storage storage;
        int s = mem ?
            ws_attach_server_mem(b, 0, res, sizeof(res), host, sizeof(host),
                &storage, SOON) :
            ws_attach_server(b, 0, res, sizeof(res), host, sizeof(host),
                SOON);
        CHECK(s >= 0);
        join(cr);
        int c = op.rc;
        CHECK(c >= 0);
        CHECK(strcmp(res, "/chat?room=1") == 0);
        CHECK(strcmp(host, "example.com:80") == 0);
        /* The client was attached WS_TEXT, the server binary. */
        CHECK(msend(c, "hi", 2, SOON) == 0);
        int flags;
        char buf[8];
        CHECK(ws_recv(s, &flags, buf, sizeof(buf), SOON) == 2);
        CHECK(flags == WS_TEXT);
        CHECK(msend(s, "yo", 2, SOON) == 0);
        CHECK(ws_recv(c, &flags, buf, sizeof(buf), SOON) == 2);
        CHECK(flags == WS_BINARY);
        CHECK(hclose(c) == 0);
        CHECK(hclose(s) == 0);
    }
}

/* Read an HTTP head (up to the empty line) from raw. */
static void read_head(int raw, char *head, size_t len) {
    size_t n = 0;
    for(;;) {
        CHECK(n + 1 < len);
        CHECK(brecv(raw, head + n, 1, SOON) == 0);
        n++;
        head[n] = 0;
        if(n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0) return;
    }
}

/* The client's request, exactly; then each answer a server could give. */
static void test_client_handshake(void) {
    static const struct {
        const char *what;
        const char *head;   /* %s: the accept key */
        int err;            /* 0: attach succeeds */
    } answers[] = {
        {"plain", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", 0},
        {"any case, any order, other fields", "HTTP/1.1 101 OK\r\n"
            "sec-websocket-accept: %s\r\nX-Other: 1\r\nCONNECTION: upgrade\r\n"
            "Server: test\r\nupgrade: WebSocket\r\n\r\n", 0},
        {"status 200", "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", EPROTO},
        {"status 404", "HTTP/1.1 404 Not Found\r\n\r\n%s", EPROTO},
        {"no Upgrade", "HTTP/1.1 101 x\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n", EPROTO},
        {"no Connection", "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n", EPROTO},
        {"no accept key", "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nX: %s\r\n\r\n", EPROTO},
        {"two Upgrade", "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n", EPROTO},
        {"two accept keys", "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n", EPROTO},
        {"Connection list", "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
            "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
            "\r\n", EPROTO},
        {"Upgrade h2c", "HTTP/1.1 101 x\r\nUpgrade: h2c\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", EPROTO},
        {"wrong accept key", "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Accept: x%s\r\n\r\n",
            EPROTO},
        {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n%s", EPROTO},
    };
    for(size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
        int a, raw;
        tcp_pair(&a, &raw);
        struct attach_op op = {a, 0, "/", "localhost", SOON, 0, 0};
        int cr = go(client_co(&op));
        CHECK(cr >= 0);
        char head[1024];
        read_head(raw, head, sizeof(head));
        char key[25];
        CHECK(sscanf(head, "GET / HTTP/1.1\r\nHost: localhost\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %24s\r\n", key) == 1);
        char want[512];
        snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: localhost\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key);
        CHECK(strcmp(head, want) == 0);
        char accept[WS_KEY_SIZE];
        CHECK(ws_response_key(key, accept) == 0);
        char answer[512];
        /* Formats use the key once, one of them twice. */
        snprintf(answer, sizeof(answer), answers[i].head, accept, accept);
        CHECK(bsend(raw, answer, strlen(answer), SOON) == 0);
        /* A first frame right behind the head, in the same write. */
        CHECK(bsend(raw, "\x81\x02hi", 4, SOON) == 0);
        join(cr);
        if(op.rc < 0 && answers[i].err == 0)
            fprintf(stderr, "%s: errno %d\n", answers[i].what, op.err);
        if(answers[i].err) {
            CHECK(op.rc == -1 && op.err == answers[i].err);
            CHECK_ERR(hclose(a), EBADF);
            check_closed(raw, ECONNRESET);
            continue;
        }
        CHECK(op.rc >= 0);
        char buf[4];
        int flags;
        CHECK(ws_recv(op.rc, &flags, buf, sizeof(buf), SOON) == 2);
        CHECK(flags == WS_TEXT && memcmp(buf, "hi", 2) == 0);
        CHECK(hclose(op.rc) == 0);
        raw_close(raw);
    }

    /* Lines over 255 bytes: the reason, a field name, a field value. */
    char big[300];
    memset(big, 'z', sizeof(big));
    big[256] = 0;
    const char *fmt[] = {"HTTP/1.1 101 %s\r\n\r\n", "HTTP/1.1 101 x\r\n"
        "%s: v\r\n\r\n", "HTTP/1.1 101 x\r\nX: %s\r\n\r\n"};
    for(int i = 0; i < 3; i++) {
        int a, raw;
        tcp_pair(&a, &raw);
        struct attach_op op = {a, 0, "/", "h", SOON, 0, 0};
        int cr = go(client_co(&op));
        CHECK(cr >= 0);
        char head[1024];
        read_head(raw, head, sizeof(head));
        char answer[512];
        snprintf(answer, sizeof(answer), fmt[i], big);
        CHECK(bsend(raw, answer, strlen(answer), SOON) == 0);
        join(cr);
        CHECK(op.rc == -1 && op.err == EMSGSIZE);
        check_closed(raw, ECONNRESET);
    }

    /* No answer in time. */
    int a, raw;
    tcp_pair(&a, &raw);
    int64_t start = now();
    CHECK_ERR(ws_attach_client(a, 0, "/", "h", now() + 100), ETIMEDOUT);
    CHECK(now() - start >= 100);
    char head[1024];
    read_head(raw, head, sizeof(head));
    check_closed(raw, ECONNRESET);
    /* The server goes away. */
    tcp_pair(&a, &raw);
    struct attach_op op = {a, 0, "/", "h", SOON, 0, 0};
    int cr = go(client_co(&op));
    CHECK(cr >= 0);
    read_head(raw, head, sizeof(head));
    CHECK(tcp_done(raw, SOON) == 0);
    join(cr);
    CHECK(op.rc == -1 && op.err == EPIPE);
    check_closed(raw, ECONNRESET);
}

/* The server's answer, exactly; then each request it must refuse. */
static void test_server_handshake(void) {
    static const char *good =
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    int a, raw;
    tcp_pair(&a, &raw);
    CHECK(bsend(raw, good, strlen(good), SOON) == 0);
    /* A first frame behind the request, in the same write. */
    uint8_t fr[16];
    size_t n = frame(fr, 0x82, "hey", 3, key1, 0);
    CHECK(bsend(raw, fr, n, SOON) == 0);
    char res[16], host[32];
    int s = ws_attach_server(a, 0, res, sizeof(res), host, sizeof(host), SOON);
    CHECK(s >= 0);
    CHECK(strcmp(res, "/chat") == 0);
    CHECK(strcmp(host, "server.example.com") == 0);
    char head[1024];
    read_head(raw, head, sizeof(head));
    CHECK(strcmp(head, "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") == 0);
    char buf[8];
    CHECK(mrecv(s, buf, sizeof(buf), SOON) == 3);
    CHECK(memcmp(buf, "hey", 3) == 0);
    CHECK(hclose(s) == 0);
    raw_close(raw);

    static const struct {
        const char *what;
        const char *head;
        int err;   /* 0: attach succeeds */
    } requests[] = {
        {"no Host, any case", "GET / HTTP/1.1\r\nupgrade: WEBSOCKET\r\n"
            "connection: upgrade\r\n"
            "sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "SEC-WEBSOCKET-VERSION: 13\r\n\r\n", 0},
        {"POST", "POST / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"get", "get / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"command of 32", "GETGETGETGETGETGETGETGETGETGETGE / HTTP/1.1\r\n\r\n",
            EMSGSIZE},
        {"resource too long", "GET /0123456789abcdef HTTP/1.1\r\n\r\n",
            EMSGSIZE},
        {"host too long", "GET / HTTP/1.1\r\n"
            "Host: a-host-name-of-32-characters.xyz\r\n\r\n", EMSGSIZE},
        {"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", EPROTO},
        {"no Upgrade", "GET / HTTP/1.1\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"no Connection", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"no key", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"no version", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "\r\n", EPROTO},
        {"version 8", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 8\r\n\r\n", EPROTO},
        {"key of 15 bytes", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"key of 17 bytes", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"two keys", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"Connection list", "GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
            "Connection: keep-alive, Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", EPROTO},
        {"HTTP/1.0 accepted as §14 says", "GET / HTTP/1.0\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n", 0},
        {"no protocol", "GET /\r\n\r\n", EPROTO},
    };
    for(size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        tcp_pair(&a, &raw);
        CHECK(bsend(raw, requests[i].head, strlen(requests[i].head), SOON)
            == 0);
        strcpy(host, "untouched");
        errno = 0;
        s = ws_attach_server(a, 0, res, sizeof(res), host, 32, SOON);
        if((s < 0) != (requests[i].err != 0) ||
              (s < 0 && errno != requests[i].err))
            fprintf(stderr, "%s: %d, errno %d\n", requests[i].what, s, errno);
        if(requests[i].err) {
            CHECK(s == -1 && errno == requests[i].err);
            /* No HTTP error answer: the connection is just reset. */
            check_closed(raw, ECONNRESET);
            continue;
        }
        CHECK(s >= 0);
        CHECK(strcmp(host, "untouched") == 0);
        read_head(raw, head, sizeof(head));
        CHECK(strncmp(head, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
        CHECK(hclose(s) == 0);
        raw_close(raw);
    }

    /* The request does not come in time. */
    tcp_pair(&a, &raw);
    int64_t start = now();
    CHECK_ERR(ws_attach_server(a, 0, res, sizeof(res), host, sizeof(host),
        now() + 100), ETIMEDOUT);
    CHECK(now() - start >= 100);
    check_closed(raw, ECONNRESET);
}

/* ---- Real peers --------------------------------------------------------- */

/* tests/ws_peer.py in the source tree: make check says where that is
   ($srcdir); run by hand, from the source or a build folder in it. */
static const char *peer_script(void) {
    static char path[512];
    const char *dirs[] = {getenv("srcdir"), ".", ".."};
    for(int i = 0; i < 3; i++) {
        if(!dirs[i]) continue;
        snprintf(path, sizeof(path), "%s/tests/ws_peer.py", dirs[i]);
        if(access(path, R_OK) == 0) return path;
    }
    peer_fail("tests/ws_peer.py not found; run from the build folder or "
        "set srcdir%s%s", "", "");
    return NULL;
}

/* examples/ws_echo answers a python3-websockets client. */
static void test_python_client(void) {
    int port = peer_free_port();
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *echo[] = {"examples/ws_echo", p, NULL};
    pid_t pid = peer_start(echo, "tests/ws.tmp/ws_echo.log");
    peer_wait_tcp(port, 5000);
    char *client[] = {"/usr/bin/python3", (char *)peer_script(), "client", p,
        NULL};
    char out[4096];
    int rc = peer_run(client, out, sizeof(out), 20000,
        "tests/ws.tmp/python_client.log");
    if(rc != 0 || strcmp(out, "ok\n") != 0)
        fprintf(stderr, "python client: exit %d, output: %s\n", rc, out);
    CHECK(rc == 0 && strcmp(out, "ok\n") == 0);
    /* Still serving after all that. */
    CHECK(kill(pid, 0) == 0);
    peer_stop(pid);
}

static void exchange(int ws, int flags, const void *msg, size_t len) {
    static uint8_t in[200000];
    CHECK(ws_send(ws, flags, msg, len, SOON) == 0);
    int got;
    CHECK(ws_recv(ws, &got, in, sizeof(in), SOON) == (ssize_t)len);
    CHECK(got == (flags & WS_TEXT));
    CHECK(memcmp(in, msg, len) == 0);
}

/* Send a command to the python server, expect a text answer. */
static void command(int ws, const char *cmd, const char *answer) {
    char in[256];
    CHECK(ws_send(ws, WS_TEXT, cmd, strlen(cmd), SOON) == 0);
    int flags;
    ssize_t n = ws_recv(ws, &flags, in, sizeof(in) - 1, SOON);
    CHECK(n >= 0);
    in[n] = 0;
    if(strcmp(in, answer) != 0)
        fprintf(stderr, "%s: got \"%s\", expected \"%s\"\n", cmd, in, answer);
    CHECK(flags == WS_TEXT && strcmp(in, answer) == 0);
}

static int connect_python(int port) {
    struct ipaddr addr;
    CHECK(ipaddr_remote(&addr, "127.0.0.1", port, 0, SOON) == 0);
    int t = tcp_connect(&addr, SOON);
    CHECK(t >= 0);
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%d", port);
    int ws = ws_attach_client(t, 0, "/chat?room=1", host, SOON);
    CHECK(ws >= 0);
    return ws;
}

/* Our client against a python3-websockets server that pings every
   50 ms. */
static void test_python_server(void) {
    int port = peer_free_port();
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    char *server[] = {"/usr/bin/python3", (char *)peer_script(), "server", p,
        NULL};
    pid_t pid = peer_start(server, "tests/ws.tmp/python_server.log");
    peer_wait_tcp(port, 10000);

    int ws = connect_python(port);
    exchange(ws, WS_TEXT, "hello", 5);
    exchange(ws, WS_BINARY, "\x00\x01\x02\xff", 4);
    static uint8_t big[80 * 1024];
    fill(big, sizeof(big), 11);
    exchange(ws, WS_BINARY, big, sizeof(big));
    /* 80 kB sent from three elements, masked across them. */
    struct iolist l[3] = {{big, 1, &l[1], 0}, {big + 1, 40000, &l[2], 0},
        {big + 40001, sizeof(big) - 40001, NULL, 0}};
    CHECK(ws_sendl(ws, WS_BINARY, &l[0], &l[2], SOON) == 0);
    static uint8_t in[80 * 1024];
    int flags;
    CHECK(ws_recv(ws, &flags, in, sizeof(in), SOON) == (ssize_t)sizeof(big));
    CHECK(memcmp(in, big, sizeof(big)) == 0);
    command(ws, "path", "/chat?room=1");
    char host[32];
    snprintf(host, sizeof(host), "127.0.0.1:%d", port);
    command(ws, "host", host);
    command(ws, "fragments", "one two three");
    command(ws, "ping", "pinged");
    /* Several keepalive pings come while ws_recv waits: answered, or the
       server would drop the connection after its 1 s ping timeout. */
    command(ws, "later 1.5", "later");
    command(ws, "still", "still");
    /* The server closes; we answer with ws_detach. */
    CHECK(ws_send(ws, WS_TEXT, "close", 5, SOON) == 0);
    char reason[125];
    CHECK_ERR(ws_recv(ws, NULL, in, sizeof(in), SOON), EPIPE);
    int status;
    ssize_t n = ws_status(ws, &status, reason, sizeof(reason));
    CHECK(n == 15 && status == 4002 && memcmp(reason, "server says bye", 15)
        == 0);
    int t = ws_detach(ws, 4002, NULL, 0, SOON);
    CHECK(t >= 0);
    CHECK(tcp_close(t, SOON) == 0);

    /* We close; the server echoes our status and reason. */
    ws = connect_python(port);
    exchange(ws, WS_TEXT, "x", 1);
    CHECK(ws_done(ws, 4321, "client done", 11, SOON) == 0);
    CHECK_ERR(ws_recv(ws, NULL, in, sizeof(in), SOON), EPIPE);
    CHECK(ws_status(ws, &status, reason, sizeof(reason)) == 11);
    CHECK(status == 4321 && memcmp(reason, "client done", 11) == 0);
    t = ws_detach(ws, 0, NULL, 0, SOON);
    CHECK(t >= 0);
    CHECK(tcp_close(t, SOON) == 0);

    /* ws_detach straight away, with an answer still on its way. */
    ws = connect_python(port);
    CHECK(ws_send(ws, WS_TEXT, "dropped", 7, SOON) == 0);
    t = ws_detach(ws, 1000, "bye", 3, SOON);
    CHECK(t >= 0);
    CHECK(tcp_close(t, SOON) == 0);

    CHECK(kill(pid, 0) == 0);
    peer_stop(pid);
}

int main(void) {
    test_keys();
    test_attach_errors();
    test_storage();
    test_types();
    test_sizes();
    test_lists();
    test_list_errors();
    test_wire_send();
    test_fragments();
    test_bad_frames();
    test_pong_after_send();
    test_done_status();
    test_detach();
    test_blocking();
    test_buffers();
    test_small_stacks();
    test_handshake();
    test_client_handshake();
    test_server_handshake();
    peer_require_python("websockets", "python3-websockets");
    peer_dir("ws");
    test_python_client();
    test_python_server();
    return 0;
}
