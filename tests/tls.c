/*
 * tests/tls.c: TLS (sockets.md §18, with §3 for the bytestream rules, §20.20
 * and the TLS rows of §21). Covers tls_attach_client(_mem),
 * tls_attach_server(_mem), tls_done and tls_detach: our client and server
 * over ipc_pair and over TCP, storage at every offset 0..7, TLS over TLS,
 * a 2777 x 257-byte transfer each way at once (send while receive is
 * blocked on both ends), iolists with empty and NULL-base (skipped)
 * elements, a NULL base on send (EFAULT), malformed lists (EINVAL, then
 * sticky), the internal drain (brecvl with both ends NULL through the
 * vfs), tls_done then EPIPE on both sides, detach on both sides and then
 * plain bytes on the stream below (nothing read past the last record),
 * detach discarding data sent before the peer's close_notify, and every
 * errno: EINVAL (mem NULL, the socket closed), EBADF, ENOTSUP, EPROTO (a
 * UDP socket, a TCP listener), EFAULT (a certificate file that is no
 * certificate, a missing file, NULL names, a key of another certificate, a
 * peer sending garbage to our server and to our client, a record
 * corrupted on the way), ETIMEDOUT at the deadline (a TCP peer that
 * accepts and says nothing, to our client and to our server; a peer that
 * stops mid-handshake; deadline 0; tls_done and tls_detach honouring their
 * own deadline), ECANCELED (in the handshake, in brecv), EPIPE (peer gone
 * mid-handshake, after tls_done, the stream ending before close_notify in
 * detach), ECONNRESET (sticky after failures; a peer resetting during the
 * handshake), EBUSY, EBADF for a coroutine blocked in brecv when the handle
 * is closed, and errors of the stream below passed through. Real peers:
 * our client against `openssl s_server -rev` (TLS 1.3 and TLS 1.2), our
 * server against `openssl s_client` (both versions), a TLS 1.3 KeyUpdate
 * that s_server requests of us (answered by our next send), with a self-signed
 * certificate made by `openssl req`. ENOMEM is not produced (OpenSSL's
 * allocations cannot be failed from here). No descriptor leaks.
 *
 * Needs the openssl command (apt-get install openssl); fails saying so.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libdillimpl.h"
#include "check.h"
#include "peer.h"

/* A deadline for what must happen soon: a bug fails instead of hanging. */
#define SOON (now() + 10000)

static char cert[256], key[256], other_key[256], notcert[256];

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while((e = readdir(d)))
        if(e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void make_certs(void) {
    peer_require("openssl", "openssl");
    const char *dir = peer_dir("tls");
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(other_key, sizeof(other_key), "%s/other_key.pem", dir);
    snprintf(notcert, sizeof(notcert), "%s/notcert.pem", dir);
    char *req[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
        "-days", "2", "-subj", "/CN=localhost", NULL};
    CHECK(peer_run(req, NULL, 0, 30000, NULL) == 0);
    char *gen[] = {"openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-out", other_key, NULL};
    CHECK(peer_run(gen, NULL, 0, 30000, NULL) == 0);
    FILE *f = fopen(notcert, "w");
    CHECK(f != NULL);
    fputs("-----BEGIN CERTIFICATE-----\nthis is not one\n"
        "-----END CERTIFICATE-----\n", f);
    CHECK(fclose(f) == 0);
}

/* What a coroutine's call returned. */
struct res {
    int done;
    int rc;
    int err;
    int64_t when;
};

static void res_init(volatile struct res *r) {
    r->done = 0;
    r->rc = 99;
    r->err = 0;
    r->when = 0;
}

static void res_set(volatile struct res *r, int rc) {
    r->err = errno;
    r->rc = rc;
    r->when = now();
    r->done = 1;
}

static void make_addr(struct ipaddr *a, int port) {
    CHECK(ipaddr_local(a, "127.0.0.1", port, 0) == 0);
}

/* ---- Pairs -------------------------------------------------------------- */

coroutine static void server_attach(int s, struct tls_storage *mem,
      int64_t deadline, volatile struct res *r) {
    int h = mem ? tls_attach_server_mem(s, cert, key, mem, deadline) :
        tls_attach_server(s, cert, key, deadline);
    res_set(r, h);
}

coroutine static void client_attach(int s, int64_t deadline,
      volatile struct res *r) {
    res_set(r, tls_attach_client(s, deadline));
}

/* A TLS connection over the stream pair s: h[0] our client on s[0], h[1]
   our server on s[1]. */
static void tls_over(int s[2], int h[2], struct tls_storage *cmem,
      struct tls_storage *smem) {
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, server_attach(s[1], smem, SOON, &r)) == 0);
    h[0] = cmem ? tls_attach_client_mem(s[0], cmem, SOON) :
        tls_attach_client(s[0], SOON);
    CHECK(h[0] >= 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc >= 0);
    h[1] = r.rc;
}

static void tls_pair(int h[2]) {
    int s[2];
    CHECK(ipc_pair(s) == 0);
    tls_over(s, h, NULL, NULL);
}

/* ---- A bytestream made here, to put faults under TLS --------------------- */

/* It passes everything to a real socket unless told to: stall sends until
   the deadline, fail sends or receives with an errno, corrupt the next
   received byte. */
struct fake {
    struct hvfs hvfs;
    struct bsock_vfs bvfs;
    int u;
    int stall_send;
    int send_err;
    int recv_err;
    int corrupt;
};

static void *fake_query(struct hvfs *hvfs, const void *type) {
    struct fake *f = (struct fake *)hvfs;
    if(type == bsock_type) return &f->bvfs;
    errno = ENOTSUP;
    return NULL;
}

static void fake_close(struct hvfs *hvfs) {
    struct fake *f = (struct fake *)hvfs;
    hclose(f->u);
    free(f);
}

static int fake_bsendl(struct bsock_vfs *bvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct fake *f = (struct fake *)((char *)bvfs - offsetof(struct fake, bvfs));
    if(f->stall_send) {
        if(msleep(deadline) < 0) return -1;
        errno = ETIMEDOUT;
        return -1;
    }
    if(f->send_err) {
        errno = f->send_err;
        return -1;
    }
    return bsendl(f->u, first, last, deadline);
}

static int fake_brecvl(struct bsock_vfs *bvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    struct fake *f = (struct fake *)((char *)bvfs - offsetof(struct fake, bvfs));
    if(f->recv_err) {
        errno = f->recv_err;
        return -1;
    }
    int rc = brecvl(f->u, first, last, deadline);
    /* Record bodies only: a changed header would change the length. */
    if(rc == 0 && f->corrupt && first->iol_base && first->iol_len > 5) {
        ((uint8_t *)first->iol_base)[first->iol_len - 1] ^= 0x55;
        f->corrupt = 0;
    }
    return rc;
}

static int fake_make(int u, struct fake **out) {
    struct fake *f = calloc(1, sizeof(*f));
    CHECK(f != NULL);
    f->hvfs.query = fake_query;
    f->hvfs.close = fake_close;
    f->bvfs.bsendl = fake_bsendl;
    f->bvfs.brecvl = fake_brecvl;
    f->u = u;
    int h = hmake(&f->hvfs);
    CHECK(h >= 0);
    *out = f;
    return h;
}

/* Our client over a fake on h[0] (its control in *f), our server on h[1]. */
static void tls_fake_pair(int h[2], struct fake **f) {
    int s[2];
    CHECK(ipc_pair(s) == 0);
    s[0] = fake_make(s[0], f);
    tls_over(s, h, NULL, NULL);
}

/* ---- Data ---------------------------------------------------------------- */

static void test_basic(void) {
    int h[2];
    tls_pair(h);
    char buf[16];
    CHECK(bsend(h[0], "hello", 5, SOON) == 0);
    CHECK(brecv(h[1], buf, 5, SOON) == 0);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK(bsend(h[1], "world!", 6, SOON) == 0);
    CHECK(brecv(h[0], buf, 6, SOON) == 0);
    CHECK(memcmp(buf, "world!", 6) == 0);
    /* Zero bytes: nothing happens. */
    CHECK(bsend(h[0], NULL, 0, 0) == 0);
    CHECK(brecv(h[0], NULL, 0, 0) == 0);
    /* brecv(NULL) drops the bytes. */
    CHECK(bsend(h[0], "abcdef", 6, SOON) == 0);
    CHECK(brecv(h[1], NULL, 3, SOON) == 0);
    CHECK(brecv(h[1], buf, 3, SOON) == 0);
    CHECK(memcmp(buf, "def", 3) == 0);
    /* Our done: the peer reads to EPIPE, sticky; we can still receive. */
    CHECK(bsend(h[0], "last", 4, SOON) == 0);
    CHECK(tls_done(h[0], SOON) == 0);
    CHECK_ERR(tls_done(h[0], SOON), EPIPE);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), EPIPE);
    CHECK(brecv(h[1], buf, 4, SOON) == 0);
    CHECK(memcmp(buf, "last", 4) == 0);
    CHECK_ERR(brecv(h[1], buf, 1, SOON), EPIPE);
    CHECK_ERR(brecv(h[1], buf, 1, SOON), EPIPE);
    CHECK(bsend(h[1], "back", 4, SOON) == 0);
    CHECK(brecv(h[0], buf, 4, SOON) == 0);
    CHECK(memcmp(buf, "back", 4) == 0);
    /* A detach on the side that saw close_notify does not wait. */
    int u1 = tls_detach(h[1], SOON);
    CHECK(u1 >= 0);
    CHECK_ERR(bsend(h[1], "x", 1, SOON), EBADF);
    int u0 = tls_detach(h[0], SOON);
    CHECK(u0 >= 0);
    /* Plain bytes after both detached: nothing was read past the records. */
    CHECK(bsend(u0, "plain", 5, SOON) == 0);
    CHECK(brecv(u1, buf, 5, SOON) == 0);
    CHECK(memcmp(buf, "plain", 5) == 0);
    CHECK(bsend(u1, "PLAIN", 5, SOON) == 0);
    CHECK(brecv(u0, buf, 5, SOON) == 0);
    CHECK(memcmp(buf, "PLAIN", 5) == 0);
    CHECK(hclose(u0) == 0);
    CHECK(hclose(u1) == 0);
}

/* Detach on both sides at once, with data in flight from each. */
coroutine static void detacher(int h, volatile struct res *r) {
    res_set(r, tls_detach(h, SOON));
}

static void test_detach_both(void) {
    int h[2];
    tls_pair(h);
    /* Unread data is discarded by the other side's detach. */
    CHECK(bsend(h[0], "unread by the server", 20, SOON) == 0);
    CHECK(bsend(h[1], "unread by the client", 20, SOON) == 0);
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, detacher(h[1], &r)) == 0);
    int u0 = tls_detach(h[0], SOON);
    CHECK(u0 >= 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc >= 0);
    int u1 = r.rc;
    char buf[8];
    CHECK(bsend(u1, "after", 5, SOON) == 0);
    CHECK(brecv(u0, buf, 5, SOON) == 0);
    CHECK(memcmp(buf, "after", 5) == 0);
    CHECK(hclose(u0) == 0);
    CHECK(hclose(u1) == 0);
}

static void test_mem(void) {
    for(int off = 0; off < 8; off++) {
        char cstore[sizeof(struct tls_storage) + 8];
        char sstore[sizeof(struct tls_storage) + 8];
        memset(cstore, 0xAA, sizeof(cstore));
        memset(sstore, 0xAA, sizeof(sstore));
        int s[2], h[2];
        CHECK(ipc_pair(s) == 0);
        tls_over(s, h, (struct tls_storage *)(cstore + off),
            (struct tls_storage *)(sstore + off));
        char buf[3];
        CHECK(bsend(h[0], "abc", 3, SOON) == 0);
        CHECK(brecv(h[1], buf, 3, SOON) == 0);
        CHECK(memcmp(buf, "abc", 3) == 0);
        /* Nothing written outside the storage. */
        for(int i = 0; i < off; i++) CHECK(cstore[i] == (char)0xAA);
        for(size_t i = off + sizeof(struct tls_storage); i < sizeof(cstore);
              i++)
            CHECK(cstore[i] == (char)0xAA);
        CHECK(hclose(h[0]) == 0);
        CHECK(hclose(h[1]) == 0);
    }
}

/* Sender and receiver of the bulk transfer: 2777 blocks of 257 bytes. */
#define BLOCKS 2777
#define BLOCK 257

static void block_fill(uint8_t *buf, int i, int salt) {
    for(int j = 0; j < BLOCK; j++) buf[j] = (uint8_t)(i * 31 + j * 7 + salt);
}

coroutine static void bulk_send(int s, int salt, volatile struct res *r) {
    uint8_t buf[BLOCK];
    for(int i = 0; i < BLOCKS; i++) {
        block_fill(buf, i, salt);
        if(bsend(s, buf, BLOCK, SOON) < 0) {
            res_set(r, -1);
            return;
        }
    }
    res_set(r, 0);
}

coroutine static void bulk_recv(int s, int salt, volatile struct res *r) {
    uint8_t buf[BLOCK], want[BLOCK];
    for(int i = 0; i < BLOCKS; i++) {
        block_fill(want, i, salt);
        if(brecv(s, buf, BLOCK, SOON) < 0 || memcmp(buf, want, BLOCK) != 0) {
            res_set(r, -1);
            return;
        }
    }
    res_set(r, 0);
}

static void bulk(int h[2]) {
    volatile struct res r[4];
    for(int i = 0; i < 4; i++) res_init(&r[i]);
    int b = bundle();
    CHECK(b >= 0);
    CHECK(bundle_go(b, bulk_recv(h[1], 1, &r[0])) == 0);
    CHECK(bundle_go(b, bulk_recv(h[0], 2, &r[1])) == 0);
    CHECK(bundle_go(b, bulk_send(h[0], 1, &r[2])) == 0);
    CHECK(bundle_go(b, bulk_send(h[1], 2, &r[3])) == 0);
    CHECK(bundle_wait(b, now() + 60000) == 0);
    CHECK(hclose(b) == 0);
    for(int i = 0; i < 4; i++) CHECK(r[i].done && r[i].rc == 0);
}

static void test_bulk(void) {
    int h[2];
    tls_pair(h);
    bulk(h);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
}

coroutine static void tcp_acceptor(int l, volatile struct res *r) {
    res_set(r, tcp_accept(l, NULL, SOON));
}

/* A TCP connection on loopback: s[0] connected, s[1] accepted. */
static void tcp_pair(int s[2]) {
    struct ipaddr a;
    make_addr(&a, 0);
    int l = tcp_listen(&a, 10);
    CHECK(l >= 0);
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, tcp_acceptor(l, &r)) == 0);
    s[0] = tcp_connect(&a, SOON);
    CHECK(s[0] >= 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc >= 0);
    s[1] = r.rc;
    CHECK(hclose(l) == 0);
}

static void test_tcp(void) {
    int s[2], h[2];
    tcp_pair(s);
    tls_over(s, h, NULL, NULL);
    bulk(h);
    CHECK(tls_done(h[1], SOON) == 0);
    char c;
    CHECK_ERR(brecv(h[0], &c, 1, SOON), EPIPE);
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, detacher(h[1], &r)) == 0);
    int u0 = tls_detach(h[0], SOON);
    CHECK(u0 >= 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc >= 0);
    CHECK(bsend(u0, "tcp", 3, SOON) == 0);
    char buf[3];
    CHECK(brecv(r.rc, buf, 3, SOON) == 0);
    CHECK(memcmp(buf, "tcp", 3) == 0);
    CHECK(hclose(u0) == 0);
    CHECK(hclose(r.rc) == 0);
}

static void test_tls_over_tls(void) {
    int outer[2], inner[2];
    tls_pair(outer);
    tls_over(outer, inner, NULL, NULL);
    char buf[5];
    CHECK(bsend(inner[0], "deep!", 5, SOON) == 0);
    CHECK(brecv(inner[1], buf, 5, SOON) == 0);
    CHECK(memcmp(buf, "deep!", 5) == 0);
    /* Both inner sessions detached: the outer ones work on. */
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, detacher(inner[1], &r)) == 0);
    int o0 = tls_detach(inner[0], SOON);
    CHECK(o0 >= 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    int o1 = r.rc;
    CHECK(o1 >= 0);
    CHECK(bsend(o1, "outer", 5, SOON) == 0);
    CHECK(brecv(o0, buf, 5, SOON) == 0);
    CHECK(memcmp(buf, "outer", 5) == 0);
    /* Closing the outer handle closes the whole stack. */
    CHECK(hclose(o0) == 0);
    CHECK_ERR(brecv(o1, buf, 1, SOON), EPIPE);
    CHECK(hclose(o1) == 0);
}

static void test_iolists(void) {
    int h[2];
    tls_pair(h);
    char a[3] = "abc", c[4] = "defg";
    struct iolist i3 = {c, 4, NULL, 0};
    struct iolist i2 = {NULL, 0, &i3, 0};
    struct iolist i1 = {a, 3, &i2, 0};
    CHECK(bsendl(h[0], &i1, &i3, SOON) == 0);
    char x[2], y[3];
    /* Receive: 2 bytes, skip 2 (NULL base), an empty element, 3 bytes. */
    struct iolist r4 = {y, 3, NULL, 0};
    struct iolist r3 = {x, 0, &r4, 0};
    struct iolist r2 = {NULL, 2, &r3, 0};
    struct iolist r1 = {x, 2, &r2, 0};
    CHECK(brecvl(h[1], &r1, &r4, SOON) == 0);
    CHECK(memcmp(x, "ab", 2) == 0);
    CHECK(memcmp(y, "efg", 3) == 0);
    CHECK(i1.iol_rsvd == 0 && r1.iol_rsvd == 0 && r4.iol_rsvd == 0);
    /* Front-end errors leave the socket alone. */
    CHECK_ERR(brecvl(h[1], &r1, NULL, SOON), EINVAL);
    CHECK_ERR(brecvl(h[1], NULL, &r1, SOON), EINVAL);
    CHECK_ERR(bsendl(h[0], NULL, &i1, SOON), EINVAL);
    CHECK(bsend(h[0], "ok", 2, SOON) == 0);
    CHECK(brecv(h[1], x, 2, SOON) == 0);
    /* A loop found by the layer: EINVAL, then the direction is broken. */
    struct iolist l2 = {x, 1, NULL, 0};
    struct iolist l1 = {x, 1, &l2, 0};
    struct iolist lend = {x, 1, NULL, 0};
    l2.iol_next = &l1;
    CHECK_ERR(brecvl(h[1], &l1, &lend, SOON), EINVAL);
    CHECK(l1.iol_rsvd == 0 && l2.iol_rsvd == 0);
    CHECK_ERR(brecv(h[1], x, 1, SOON), ECONNRESET);
    CHECK_ERR(bsendl(h[0], &l1, &lend, SOON), EINVAL);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), ECONNRESET);
    /* The other directions still work. */
    CHECK(bsend(h[1], "rev", 3, SOON) == 0);
    CHECK(brecv(h[0], y, 3, SOON) == 0);
    CHECK(memcmp(y, "rev", 3) == 0);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);

    /* A NULL base on send is no memory: EFAULT, nothing sent, sticky. */
    tls_pair(h);
    struct iolist n2 = {NULL, 4, NULL, 0};
    struct iolist n1 = {a, 3, &n2, 0};
    CHECK_ERR(bsendl(h[0], &n1, &n2, SOON), EFAULT);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), ECONNRESET);
    CHECK(bsend(h[1], "fine", 4, SOON) == 0);
    CHECK(brecv(h[0], c, 4, SOON) == 0);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
}

/* brecvl with both ends NULL, only reachable through the vfs: drop all up
   to the peer's close_notify. */
static void test_drain(void) {
    int h[2];
    tls_pair(h);
    struct bsock_vfs *v = hquery(h[1], bsock_type);
    CHECK(v != NULL);
    CHECK(bsend(h[0], "dropped", 7, SOON) == 0);
    CHECK(tls_done(h[0], SOON) == 0);
    CHECK(v->brecvl(v, NULL, NULL, SOON) == 0);
    char c;
    CHECK_ERR(brecv(h[1], &c, 1, SOON), EPIPE);
    int u = tls_detach(h[1], SOON);
    CHECK(u >= 0);
    CHECK(hclose(u) == 0);
    CHECK(hclose(h[0]) == 0);
}

/* ---- Errors ------------------------------------------------------------- */

static void test_attach_errors(void) {
    int s[2];
    struct tls_storage mem;
    /* EINVAL: mem NULL; the socket is closed all the same. */
    CHECK(ipc_pair(s) == 0);
    CHECK_ERR(tls_attach_client_mem(s[0], NULL, SOON), EINVAL);
    CHECK_ERR(hclose(s[0]), EBADF);
    CHECK_ERR(tls_attach_server_mem(s[1], cert, key, NULL, SOON), EINVAL);
    CHECK_ERR(hclose(s[1]), EBADF);
    /* EBADF. */
    CHECK_ERR(tls_attach_client(-1, SOON), EBADF);
    CHECK_ERR(tls_attach_client_mem(12345, &mem, SOON), EBADF);
    CHECK_ERR(tls_attach_server(12345, cert, key, SOON), EBADF);
    CHECK_ERR(tls_attach_server_mem(-1, cert, key, &mem, SOON), EBADF);
    CHECK_ERR(tls_done(-1, SOON), EBADF);
    CHECK_ERR(tls_detach(12345, SOON), EBADF);
    /* EPROTO: not a bytestream (a UDP socket, a TCP listener); closed. */
    struct ipaddr a;
    make_addr(&a, 0);
    int u = udp_open(&a, NULL);
    CHECK(u >= 0);
    CHECK_ERR(tls_attach_client(u, SOON), EPROTO);
    CHECK_ERR(hclose(u), EBADF);
    make_addr(&a, 0); /* any port: udp_open wrote its own into a */
    int l = tcp_listen(&a, 1);
    CHECK(l >= 0);
    CHECK_ERR(tls_attach_server(l, cert, key, SOON), EPROTO);
    CHECK_ERR(hclose(l), EBADF);
    /* ENOTSUP: done and detach on something that is not TLS. */
    CHECK(ipc_pair(s) == 0);
    CHECK_ERR(tls_done(s[0], SOON), ENOTSUP);
    CHECK_ERR(tls_detach(s[0], SOON), ENOTSUP);
    CHECK(hclose(s[0]) == 0);
    CHECK(hclose(s[1]) == 0);
    /* EFAULT: certificates and keys OpenSSL refuses, before any I/O. */
    const char *bad[][2] = {
        {notcert, key}, {"tests/tls.tmp/missing.pem", key},
        {cert, "tests/tls.tmp/missing.pem"}, {cert, other_key},
        {NULL, key}, {cert, NULL}, {key, cert}};
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(ipc_pair(s) == 0);
        int64_t start = now();
        CHECK_ERR(tls_attach_server(s[1], bad[i][0], bad[i][1], SOON), EFAULT);
        CHECK(now() - start < 2000);
        CHECK_ERR(hclose(s[1]), EBADF);
        CHECK_ERR(tls_attach_server_mem(s[0], bad[i][0], bad[i][1], &mem,
            SOON), EFAULT);
        CHECK_ERR(hclose(s[0]), EBADF);
    }
}

/* A peer that reads what comes and says nothing, until told to stop. */
coroutine static void silent(int s) {
    char c;
    while(brecv(s, &c, 1, -1) == 0) {}
    hclose(s);
}

static void check_timeout(volatile struct res *r, int64_t deadline) {
    CHECK(r->done && r->rc == -1 && r->err == ETIMEDOUT);
    CHECK(r->when >= deadline && r->when < deadline + 1000);
}

static void test_handshake_timeouts(void) {
    /* Our client, a TCP peer that accepts and never answers. */
    int s[2];
    tcp_pair(s);
    int b = bundle();
    CHECK(bundle_go(b, silent(s[1])) == 0);
    int64_t deadline = now() + 300;
    volatile struct res r;
    res_init(&r);
    client_attach(s[0], deadline, &r);
    check_timeout(&r, deadline);
    CHECK(hclose(b) == 0);
    /* Our server, a TCP client that connects and never says hello. */
    tcp_pair(s);
    b = bundle();
    CHECK(bundle_go(b, silent(s[0])) == 0);
    deadline = now() + 300;
    res_init(&r);
    server_attach(s[1], NULL, deadline, &r);
    check_timeout(&r, deadline);
    CHECK(hclose(b) == 0);
    /* Deadline 0: a handshake always has to wait. */
    CHECK(ipc_pair(s) == 0);
    b = bundle();
    CHECK(bundle_go(b, silent(s[1])) == 0);
    int64_t start = now();
    CHECK_ERR(tls_attach_client(s[0], 0), ETIMEDOUT);
    CHECK(now() - start < 1000);
    CHECK(hclose(b) == 0);
}

/* Passes bytes from a to b, at most limit of them, then nothing more: a
   peer that stops mid-handshake. */
coroutine static void relay(int a, int b, size_t limit) {
    char c;
    size_t n = 0;
    while(brecv(a, &c, 1, -1) == 0) {
        if(n++ < limit && bsend(b, &c, 1, -1) < 0) break;
    }
}

static void test_stalled_handshake(void) {
    /* client <-> c[1] relay; relay c[0]... server: the server's answer is
       cut after 10 bytes, in the middle of its first record. */
    int c[2], d[2];
    CHECK(ipc_pair(c) == 0);
    CHECK(ipc_pair(d) == 0);
    int b = bundle();
    CHECK(bundle_go(b, relay(c[1], d[0], (size_t)-1)) == 0);
    CHECK(bundle_go(b, relay(d[0], c[1], 10)) == 0);
    volatile struct res rs, rc;
    res_init(&rs);
    res_init(&rc);
    int64_t deadline = now() + 400;
    CHECK(bundle_go(b, server_attach(d[1], NULL, deadline, &rs)) == 0);
    client_attach(c[0], deadline, &rc);
    check_timeout(&rc, deadline);
    CHECK(msleep(deadline + 100) == 0);
    check_timeout(&rs, deadline);
    CHECK(hclose(b) == 0);
    CHECK(hclose(c[1]) == 0);
    CHECK(hclose(d[0]) == 0);
}

/* A peer that answers with bytes that are not TLS, then waits. */
coroutine static void garbage(int s, int read_first) {
    char buf[64];
    if(read_first && brecv(s, buf, 5, SOON) < 0) return;
    const char *junk = "HTTP/1.1 400 Bad Request\r\n\r\nnot TLS at all, sorry\r\n";
    if(bsend(s, junk, strlen(junk), SOON) < 0) return;
    silent(s);
}

static void test_garbage(void) {
    int s[2];
    /* To our server. */
    CHECK(ipc_pair(s) == 0);
    int b = bundle();
    CHECK(bundle_go(b, garbage(s[0], 0)) == 0);
    int64_t start = now();
    CHECK_ERR(tls_attach_server(s[1], cert, key, now() + 5000), EFAULT);
    CHECK(now() - start < 1000);
    CHECK(hclose(b) == 0);
    /* To our client. */
    CHECK(ipc_pair(s) == 0);
    b = bundle();
    CHECK(bundle_go(b, garbage(s[1], 1)) == 0);
    start = now();
    CHECK_ERR(tls_attach_client(s[0], now() + 5000), EFAULT);
    CHECK(now() - start < 1000);
    CHECK(hclose(b) == 0);
}

/* A peer that reads the whole first record and goes away. */
coroutine static void hangup(int s) {
    uint8_t hdr[5];
    if(brecv(s, hdr, 5, SOON) < 0) return;
    if(brecv(s, NULL, (size_t)hdr[3] << 8 | hdr[4], SOON) < 0) return;
    hclose(s);
}

static void test_peer_gone(void) {
    int s[2];
    CHECK(ipc_pair(s) == 0);
    int b = bundle();
    CHECK(bundle_go(b, hangup(s[1])) == 0);
    CHECK_ERR(tls_attach_client(s[0], SOON), EPIPE);
    CHECK(hclose(b) == 0);
    /* TCP: hclose resets the connection (linger 0). */
    tcp_pair(s);
    b = bundle();
    CHECK(bundle_go(b, hangup(s[1])) == 0);
    CHECK_ERR(tls_attach_client(s[0], SOON), ECONNRESET);
    CHECK(hclose(b) == 0);
}

static void test_cancel(void) {
    /* In the handshake. */
    int s[2];
    CHECK(ipc_pair(s) == 0);
    int b = bundle();
    CHECK(bundle_go(b, silent(s[1])) == 0);
    volatile struct res r;
    res_init(&r);
    int cr = go(client_attach(s[0], -1, &r));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 50) == 0);
    CHECK(!r.done);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK(hclose(b) == 0);
}

coroutine static void receiver(int h, int64_t deadline, volatile struct res *r) {
    char buf[10];
    res_set(r, brecv(h, buf, sizeof(buf), deadline));
}

coroutine static void sender(int h, int64_t deadline, volatile struct res *r) {
    static char big[1 << 20];
    res_set(r, bsend(h, big, sizeof(big), deadline));
}

static void test_sticky(void) {
    int h[2];
    tls_pair(h);
    char buf[4];
    /* A receive that times out: ETIMEDOUT, then ECONNRESET; sending is
       not affected. */
    int64_t deadline = now() + 100;
    CHECK_ERR(brecv(h[0], buf, 4, deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK_ERR(brecv(h[0], buf, 4, SOON), ECONNRESET);
    CHECK(bsend(h[0], "send", 4, SOON) == 0);
    CHECK(brecv(h[1], buf, 4, SOON) == 0);
    CHECK(tls_done(h[0], SOON) == 0);
    /* Detach with a failed direction: ECONNRESET, the stack closed. */
    CHECK_ERR(tls_detach(h[0], SOON), ECONNRESET);
    CHECK_ERR(hclose(h[0]), EBADF);
    /* Our peer's stream ended without close_notify: EPIPE. */
    CHECK_ERR(brecv(h[1], buf, 1, SOON), EPIPE);
    CHECK(hclose(h[1]) == 0);

    /* Cancelled in brecv: ECANCELED, then ECONNRESET. */
    tls_pair(h);
    volatile struct res r;
    res_init(&r);
    int cr = go(receiver(h[0], -1, &r));
    CHECK(cr >= 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.done && r.rc == -1 && r.err == ECANCELED);
    CHECK_ERR(brecv(h[0], buf, 1, SOON), ECONNRESET);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);

    /* A send that times out (the peer does not read): ETIMEDOUT, then
       ECONNRESET from sends and tls_done, while receiving still works. */
    tls_pair(h);
    deadline = now() + 200;
    res_init(&r);
    sender(h[0], deadline, &r);
    CHECK(r.rc == -1 && r.err == ETIMEDOUT && r.when >= deadline);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), ECONNRESET);
    CHECK_ERR(tls_done(h[0], SOON), ECONNRESET);
    CHECK(bsend(h[1], "recv", 4, SOON) == 0);
    CHECK(brecv(h[0], buf, 4, SOON) == 0);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
}

static void test_busy(void) {
    int h[2];
    tls_pair(h);
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, receiver(h[0], SOON, &r)) == 0);
    CHECK(msleep(now() + 20) == 0);
    char buf[10];
    CHECK_ERR(brecv(h[0], buf, 1, SOON), EBUSY);
    CHECK_ERR(tls_detach(h[0], SOON), EBUSY);
    /* Sending while the receive waits. */
    CHECK(bsend(h[0], "ping", 4, SOON) == 0);
    CHECK(brecv(h[1], buf, 4, SOON) == 0);
    CHECK(bsend(h[1], "0123456789", 10, SOON) == 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(r.rc == 0);
    /* A send blocked on a peer that does not read: EBUSY for another
       send and for tls_done. */
    res_init(&r);
    CHECK(bundle_go(b, sender(h[0], -1, &r)) == 0);
    CHECK(msleep(now() + 50) == 0);
    CHECK(!r.done);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), EBUSY);
    CHECK_ERR(tls_done(h[0], SOON), EBUSY);
    CHECK_ERR(tls_detach(h[0], SOON), EBUSY);
    /* Closing the handle under the blocked send: EBADF at once. */
    CHECK(hclose(h[0]) == 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(r.rc == -1 && r.err == EBADF);
    CHECK(hclose(b) == 0);
    CHECK(hclose(h[1]) == 0);

    /* Closed under a blocked receive: EBADF. */
    tls_pair(h);
    res_init(&r);
    b = bundle();
    CHECK(bundle_go(b, receiver(h[1], -1, &r)) == 0);
    CHECK(msleep(now() + 20) == 0);
    CHECK(hclose(h[1]) == 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(r.rc == -1 && r.err == EBADF);
    CHECK(hclose(b) == 0);
    CHECK(hclose(h[0]) == 0);
}

static void test_done_detach_deadlines(void) {
    /* tls_detach waits for the peer's close_notify only until its own
       deadline (the last I/O had an infinite one). */
    int h[2];
    tls_pair(h);
    char buf[4];
    CHECK(bsend(h[0], "io", 2, -1) == 0);
    CHECK(brecv(h[1], buf, 2, -1) == 0);
    int64_t deadline = now() + 200;
    CHECK_ERR(tls_detach(h[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline && now() < deadline + 1000);
    CHECK_ERR(hclose(h[0]), EBADF);
    /* The peer got our close_notify before that. */
    CHECK_ERR(brecv(h[1], buf, 1, SOON), EPIPE);
    CHECK(hclose(h[1]) == 0);

    /* tls_done and tls_detach blocked in sending close_notify: their own
       deadline. */
    struct fake *f;
    tls_fake_pair(h, &f);
    f->stall_send = 1;
    deadline = now() + 150;
    CHECK_ERR(tls_done(h[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK_ERR(tls_done(h[0], SOON), ECONNRESET);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
    tls_fake_pair(h, &f);
    f->stall_send = 1;
    deadline = now() + 150;
    CHECK_ERR(tls_detach(h[0], deadline), ETIMEDOUT);
    CHECK(now() >= deadline);
    CHECK_ERR(hclose(h[0]), EBADF);
    CHECK(hclose(h[1]) == 0);

    /* Detach when the stream below ends before the peer's close_notify. */
    tls_pair(h);
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, detacher(h[0], &r)) == 0);
    CHECK(msleep(now() + 20) == 0);
    /* Read the close_notify first: a UNIX socket closed with unread data
       resets its peer. */
    CHECK_ERR(brecv(h[1], buf, 1, SOON), EPIPE);
    CHECK(hclose(h[1]) == 0);
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(r.rc == -1 && r.err == EPIPE);
    CHECK(hclose(b) == 0);
}

static void test_below_errors(void) {
    /* A corrupted record: EFAULT, then the session is broken both ways. */
    int h[2];
    struct fake *f;
    tls_fake_pair(h, &f);
    f->corrupt = 1;
    CHECK(bsend(h[1], "data", 4, SOON) == 0);
    char buf[4];
    CHECK_ERR(brecv(h[0], buf, 4, SOON), EFAULT);
    CHECK_ERR(brecv(h[0], buf, 4, SOON), ECONNRESET);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), ECONNRESET);
    CHECK_ERR(tls_detach(h[0], SOON), ECONNRESET);
    CHECK(hclose(h[1]) == 0);
    /* Errors of the stream below come through as they are. */
    tls_fake_pair(h, &f);
    f->recv_err = ENOMEM;
    f->send_err = ENETDOWN;
    CHECK_ERR(brecv(h[0], buf, 4, SOON), ENOMEM);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), ENETDOWN);
    CHECK_ERR(brecv(h[0], buf, 4, SOON), ECONNRESET);
    CHECK_ERR(bsend(h[0], "x", 1, SOON), ECONNRESET);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
    /* ... in the handshake too. */
    int s[2];
    CHECK(ipc_pair(s) == 0);
    s[0] = fake_make(s[0], &f);
    f->send_err = ENETDOWN;
    CHECK_ERR(tls_attach_client(s[0], SOON), ENETDOWN);
    CHECK(hclose(s[1]) == 0);
}

/* ---- Real peers ---------------------------------------------------------- */

static void test_s_server(const char *version) {
    peer_require("openssl", "openssl");
    int port = peer_free_port();
    char accept[32];
    snprintf(accept, sizeof(accept), "127.0.0.1:%d", port);
    char *argv[] = {"openssl", "s_server", "-accept", accept, "-cert", cert,
        "-key", key, "-rev", "-quiet", (char *)version, NULL};
    pid_t pid = peer_start(argv, "tests/tls.tmp/s_server.log");
    peer_wait_tcp(port, 10000);
    struct ipaddr a;
    make_addr(&a, port);
    int s = tcp_connect(&a, SOON);
    CHECK(s >= 0);
    s = tls_attach_client(s, SOON);
    CHECK(s >= 0);
    /* -rev answers each line reversed. */
    const char *line = "hello from libdill\n";
    CHECK(bsend(s, line, strlen(line), SOON) == 0);
    char buf[32];
    CHECK(brecv(s, buf, strlen(line), SOON) == 0);
    CHECK(memcmp(buf, "llidbil morf olleh\n", strlen(line)) == 0);
    char big[4001];
    memset(big, 'a', 2000);
    memset(big + 2000, 'b', 2000);
    big[4000] = '\n';
    CHECK(bsend(s, big, sizeof(big), SOON) == 0);
    char back[4001];
    CHECK(brecv(s, back, sizeof(back), SOON) == 0);
    CHECK(back[0] == 'b' && back[1999] == 'b' && back[2000] == 'a' &&
        back[3999] == 'a' && back[4000] == '\n');
    /* "CLOSE" makes it end the connection with close_notify. */
    CHECK(bsend(s, "CLOSE\n", 6, SOON) == 0);
    int rc = brecv(s, buf, 1, SOON);
    CHECK(rc == -1 && (errno == EPIPE));
    CHECK(hclose(s) == 0);
    peer_stop(pid);
}

/* Wait until the file at path contains text (looked at every 10 ms). */
static void wait_for_text(const char *path, const char *text, int64_t ms) {
    int64_t deadline = now() + ms;
    for(;;) {
        static char buf[65536];
        FILE *f = fopen(path, "r");
        if(f) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            buf[n] = 0;
            fclose(f);
            if(strstr(buf, text)) return;
        }
        CHECK(now() < deadline);
        CHECK(msleep(now() + 10) == 0);
    }
}

/* s_server asked (by a "K" line on its stdin) to send a TLS 1.3 KeyUpdate
   that requests ours: our receive takes it, our next send answers it
   before its data, and the data both ways after it decrypts. */
static void test_key_update(void) {
    const char *fifo = "tests/tls.tmp/stdin.fifo";
    const char *log = "tests/tls.tmp/s_server_ku.log";
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    /* Read-write: opening it neither waits for a reader nor gives EOF. */
    int in = open(fifo, O_RDWR);
    CHECK(in >= 0);
    int port = peer_free_port();
    char cmd[512];
    /* stdbuf: its messages (stdio) reach the log line by line, so that
       the test can wait for them. */
    snprintf(cmd, sizeof(cmd), "exec stdbuf -oL openssl s_server -accept "
        "127.0.0.1:%d -cert %s -key %s -tls1_3 < %s", port, cert, key, fifo);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    pid_t pid = peer_start(argv, log);
    peer_wait_tcp(port, 10000);
    struct ipaddr a;
    make_addr(&a, port);
    int s = tcp_connect(&a, SOON);
    CHECK(s >= 0);
    s = tls_attach_client(s, SOON);
    CHECK(s >= 0);
    CHECK(bsend(s, "first\n", 6, SOON) == 0);
    wait_for_text(log, "first\n", 10000);
    CHECK(write(in, "K\n", 2) == 2);
    wait_for_text(log, "SSL_do_handshake -> 1", 10000);
    CHECK(write(in, "hello\n", 6) == 6);
    char buf[6];
    CHECK(brecv(s, buf, 6, SOON) == 0);
    CHECK(memcmp(buf, "hello\n", 6) == 0);
    CHECK(bsend(s, "after\n", 6, SOON) == 0);
    wait_for_text(log, "after\n", 10000);
    CHECK(write(in, "bye!!\n", 6) == 6);
    CHECK(brecv(s, buf, 6, SOON) == 0);
    CHECK(memcmp(buf, "bye!!\n", 6) == 0);
    CHECK(hclose(s) == 0);
    peer_stop(pid);
    close(in);
}

coroutine static void our_server(int l, volatile struct res *r) {
    int s = tcp_accept(l, NULL, SOON);
    if(s < 0) goto fail;
    s = tls_attach_server(s, cert, key, SOON);
    if(s < 0) goto fail;
    char buf[5];
    if(brecv(s, buf, 5, SOON) < 0 || memcmp(buf, "ping\n", 5) != 0)
        goto fail;
    const char *answer = "pong from libdill\n";
    if(bsend(s, answer, strlen(answer), SOON) < 0) goto fail;
    if(tls_done(s, SOON) < 0) goto fail;
    /* s_client answers our close_notify with its own. */
    if(brecv(s, buf, 1, SOON) == 0 || errno != EPIPE) goto fail;
    int u = tls_detach(s, SOON);
    if(u < 0) goto fail;
    hclose(u);
    res_set(r, 0);
    return;
fail:
    res_set(r, -1);
}

static void test_s_client(const char *version) {
    peer_require("openssl", "openssl");
    struct ipaddr a;
    make_addr(&a, 0);
    int l = tcp_listen(&a, 10);
    CHECK(l >= 0);
    volatile struct res r;
    res_init(&r);
    int b = bundle();
    CHECK(bundle_go(b, our_server(l, &r)) == 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "printf 'ping\\n' | exec openssl s_client "
        "-connect 127.0.0.1:%d -quiet %s", ipaddr_port(&a), version);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char out[256];
    int status = peer_run(argv, out, sizeof(out), 20000,
        "tests/tls.tmp/s_client.log");
    CHECK(bundle_wait(b, SOON) == 0);
    CHECK(hclose(b) == 0);
    CHECK(r.rc == 0);
    CHECK(status == 0);
    CHECK(strcmp(out, "pong from libdill\n") == 0);
    CHECK(hclose(l) == 0);
}

int main(void) {
    make_certs();
    /* OpenSSL's first use opens and closes files of its own. */
    int h[2];
    tls_pair(h);
    CHECK(hclose(h[0]) == 0);
    CHECK(hclose(h[1]) == 0);
    int fds = count_fds();

    test_basic();
    test_detach_both();
    test_mem();
    test_bulk();
    test_tcp();
    test_tls_over_tls();
    test_iolists();
    test_drain();
    CHECK(count_fds() == fds);
    test_attach_errors();
    test_handshake_timeouts();
    test_stalled_handshake();
    test_garbage();
    test_peer_gone();
    test_cancel();
    test_sticky();
    test_busy();
    test_done_detach_deadlines();
    test_below_errors();
    CHECK(count_fds() == fds);
    test_s_server("-tls1_3");
    test_s_server("-tls1_2");
    test_s_client("-tls1_3");
    test_s_client("-tls1_2");
    test_key_update();
    CHECK(count_fds() == fds);
    return 0;
}
