/*
 * bsock.c: the bytestream front end (bsend, brecv, bsendl, brecvl). It
 * finds the protocol behind a handle through dill_bsock_type and checks
 * the arguments every protocol would otherwise check itself.
 */
#include "config.h"

#include <errno.h>

#include "ctx.h"
#include "libdillimpl.h"

static const int bsock_type_id;
DILL_EXPORT const void *dill_bsock_type = &bsock_type_id;

static struct dill_bsock_vfs *get(int s) {
    return dill_hquery_fast(s, dill_bsock_type);
}

DILL_EXPORT int dill_bsendl(int s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dill_bsock_vfs *b = get(s);
    if(!b) return -1;
    if(!first || !last || last->iol_next) {
        errno = EINVAL;
        return -1;
    }
    return b->bsendl(b, first, last, deadline);
}

DILL_EXPORT int dill_brecvl(int s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dill_bsock_vfs *b = get(s);
    if(!b) return -1;
    /* Both NULL means "drain to the end" inside the library only. */
    if(!first || !last || last->iol_next) {
        errno = EINVAL;
        return -1;
    }
    return b->brecvl(b, first, last, deadline);
}

DILL_HOT DILL_EXPORT int dill_bsend(int s, const void *buf, size_t len,
      int64_t deadline) {
    struct dill_bsock_vfs *b = get(s);
    if(!b) return -1;
    struct dill_iolist iol = {(void *)buf, len, NULL, 0};
    return b->bsendl(b, &iol, &iol, deadline);
}

DILL_HOT DILL_EXPORT int dill_brecv(int s, void *buf, size_t len, int64_t deadline) {
    struct dill_bsock_vfs *b = get(s);
    if(!b) return -1;
    struct dill_iolist iol = {buf, len, NULL, 0};
    return b->brecvl(b, &iol, &iol, deadline);
}
