/*
 * fuzz/memsock.h: an in-memory bytestream handle for fuzz targets. Its
 * receives hand out the fuzzer's input, in whatever pieces the protocol
 * above asks for, and fail with EPIPE once the input is used up; its sends
 * succeed and are thrown away (counted). Nothing ever blocks, so a target
 * runs a whole protocol exchange in the main coroutine.
 *
 *     int s = memsock_make(data, size);
 *     int h = http_attach(s);    ... parse until an error ...
 *     hclose(h);
 */
#ifndef DILL_FUZZ_MEMSOCK_H
#define DILL_FUZZ_MEMSOCK_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libdillimpl.h"

struct memsock {
    struct dill_hvfs hvfs;
    struct dill_bsock_vfs bvfs;
    const uint8_t *data;
    size_t len;
    size_t pos;
    size_t sent;
};

static void *memsock_query(struct dill_hvfs *hvfs, const void *type) {
    struct memsock *m = (struct memsock *)hvfs;
    if(type == dill_bsock_type) return &m->bvfs;
    errno = ENOTSUP;
    return NULL;
}

static void memsock_close(struct dill_hvfs *hvfs) {
    free(hvfs);
}

static int memsock_bsendl(struct dill_bsock_vfs *bvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    (void)last;
    (void)deadline;
    struct memsock *m = (struct memsock *)((char *)bvfs -
        offsetof(struct memsock, bvfs));
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        /* Touch every byte, so that a sanitizer sees bad buffers. */
        volatile uint8_t sink = 0;
        for(size_t i = 0; i < it->iol_len; i++)
            sink ^= ((const uint8_t *)it->iol_base)[i];
        (void)sink;
        m->sent += it->iol_len;
    }
    return 0;
}

static int memsock_brecvl(struct dill_bsock_vfs *bvfs,
      struct dill_iolist *first, struct dill_iolist *last, int64_t deadline) {
    (void)last;
    (void)deadline;
    struct memsock *m = (struct memsock *)((char *)bvfs -
        offsetof(struct memsock, bvfs));
    for(struct dill_iolist *it = first; it; it = it->iol_next) {
        if(m->len - m->pos < it->iol_len) {
            m->pos = m->len;
            errno = EPIPE;
            return -1;
        }
        if(it->iol_base) memcpy(it->iol_base, m->data + m->pos, it->iol_len);
        m->pos += it->iol_len;
    }
    return 0;
}

/* A bytestream handle whose peer sends exactly data[0..len). */
static int memsock_make(const uint8_t *data, size_t len) {
    struct memsock *m = calloc(1, sizeof(*m));
    if(!m) abort();
    m->hvfs.query = memsock_query;
    m->hvfs.close = memsock_close;
    m->bvfs.bsendl = memsock_bsendl;
    m->bvfs.brecvl = memsock_brecvl;
    m->data = data;
    m->len = len;
    int h = dill_hmake(&m->hvfs);
    if(h < 0) abort();
    return h;
}

#endif
