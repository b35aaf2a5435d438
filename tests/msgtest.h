/*
 * tests/msgtest.h: what the message-layer tests (prefix, suffix, term)
 * share: connected socket pairs (IPC and TCP over loopback), the result of
 * a call made in a coroutine, a descriptor count, and an in-memory
 * bytestream handle for what a real socket cannot show: how many bytes a
 * layer consumed from the stream below, how many calls it made, what it
 * sent. The memstream's receives hand out the bytes given with
 * memstream_feed in whatever pieces are asked for and fail with EPIPE when
 * they run out (or with a chosen errno); its sends append to a growing
 * buffer (or fail with a chosen errno). Nothing ever blocks. Closing its handle only marks the object
 * closed, so a test can see that a layer closed the stack; memstream_free
 * frees it.
 */
#ifndef DILL_TESTS_MSGTEST_H
#define DILL_TESTS_MSGTEST_H

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "libdill.h"
#include "libdillimpl.h"
#include "check.h"

#define SOON (now() + 10000)

/* ---- Descriptors, pairs, results ------------------------------------------ */

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

/* What a call made in a coroutine returned. Volatile: the launcher reads
   it after the coroutine wrote it behind the compiler's back. */
struct result {
    int done;
    ssize_t rc;
    int err;
    int64_t when;
};

static void finish(volatile struct result *r, ssize_t rc) {
    r->err = errno;
    r->rc = rc;
    r->when = now();
    r->done = 1;
}

static void ipc_connected(int s[2]) {
    CHECK(ipc_pair(s) == 0);
}

coroutine static void tcp_connector(struct ipaddr addr,
      volatile struct result *r) {
    finish(r, tcp_connect(&addr, SOON));
}

/* Two ends of a TCP connection over loopback. */
static void tcp_connected(int s[2]) {
    struct ipaddr addr;
    CHECK(ipaddr_local(&addr, "127.0.0.1", 0, IPADDR_IPV4) == 0);
    int l = tcp_listen(&addr, 10);
    CHECK(l >= 0);
    struct result r = {0};
    int cr = go(tcp_connector(addr, &r));
    CHECK(cr >= 0);
    s[0] = tcp_accept(l, NULL, SOON);
    CHECK(s[0] >= 0);
    CHECK(bundle_wait(cr, SOON) == 0);
    CHECK(hclose(cr) == 0);
    CHECK(r.rc >= 0);
    s[1] = (int)r.rc;
    CHECK(hclose(l) == 0);
}

/* ---- The in-memory stream --------------------------------------------------- */

struct memstream {
    struct hvfs hvfs;
    struct bsock_vfs bvfs;
    uint8_t *in;       /* bytes still to hand out: in[pos..len) */
    size_t len;
    size_t pos;
    int fail_errno;    /* when not 0, receives fail with it */
    int send_errno;    /* when not 0, sends fail with it */
    uint8_t *out;      /* everything sent */
    size_t outlen;
    size_t outcap;
    int recv_calls;
    int send_calls;
    int closed;
};

static void *memstream_query(struct hvfs *hvfs, const void *type) {
    struct memstream *m = (struct memstream *)hvfs;
    if(type == bsock_type) return &m->bvfs;
    errno = ENOTSUP;
    return NULL;
}

static void memstream_close(struct hvfs *hvfs) {
    struct memstream *m = (struct memstream *)hvfs;
    CHECK(!m->closed);
    m->closed = 1;
}

static struct memstream *memstream_of(struct bsock_vfs *bvfs) {
    return (struct memstream *)((char *)bvfs -
        offsetof(struct memstream, bvfs));
}

static int memstream_bsendl(struct bsock_vfs *bvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)deadline;
    struct memstream *m = memstream_of(bvfs);
    m->send_calls++;
    if(m->send_errno) {
        errno = m->send_errno;
        return -1;
    }
    for(struct iolist *it = first; it; it = it->iol_next) {
        CHECK(it->iol_rsvd == 0);
        if(m->outlen + it->iol_len > m->outcap) {
            m->outcap = (m->outlen + it->iol_len) * 2 + 64;
            m->out = realloc(m->out, m->outcap);
            CHECK(m->out != NULL);
        }
        if(it->iol_len) memcpy(m->out + m->outlen, it->iol_base, it->iol_len);
        m->outlen += it->iol_len;
        if(it == last) CHECK(it->iol_next == NULL);
    }
    return 0;
}

static int memstream_brecvl(struct bsock_vfs *bvfs, struct iolist *first,
      struct iolist *last, int64_t deadline) {
    (void)last;
    (void)deadline;
    struct memstream *m = memstream_of(bvfs);
    m->recv_calls++;
    if(m->fail_errno) {
        errno = m->fail_errno;
        return -1;
    }
    for(struct iolist *it = first; it; it = it->iol_next) {
        CHECK(it->iol_rsvd == 0);
        if(m->len - m->pos < it->iol_len) {
            m->pos = m->len;
            errno = EPIPE;
            return -1;
        }
        if(it->iol_base) memcpy(it->iol_base, m->in + m->pos, it->iol_len);
        m->pos += it->iol_len;
    }
    return 0;
}

/* A new stream and its handle in *h. */
static struct memstream *memstream_make(int *h) {
    struct memstream *m = calloc(1, sizeof(*m));
    CHECK(m != NULL);
    m->hvfs.query = memstream_query;
    m->hvfs.close = memstream_close;
    m->bvfs.bsendl = memstream_bsendl;
    m->bvfs.brecvl = memstream_brecvl;
    *h = hmake(&m->hvfs);
    CHECK(*h >= 0);
    return m;
}

/* More bytes for the receiver. */
static void memstream_feed(struct memstream *m, const void *data, size_t len) {
    uint8_t *in = malloc(m->len - m->pos + len + 1);
    CHECK(in != NULL);
    if(m->in) memcpy(in, m->in + m->pos, m->len - m->pos);
    if(len) memcpy(in + m->len - m->pos, data, len);
    free(m->in);
    m->in = in;
    m->len = m->len - m->pos + len;
    m->pos = 0;
}

/* Bytes not handed out yet. */
static size_t memstream_left(const struct memstream *m) {
    return m->len - m->pos;
}

static void memstream_free(struct memstream *m) {
    CHECK(m->closed);
    free(m->in);
    free(m->out);
    free(m);
}

#endif
