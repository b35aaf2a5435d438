/*
 * msock.c: the message front end (msend, mrecv, msendl, mrecvl). It finds
 * the protocol behind a handle through dill_msock_type and checks the
 * arguments every protocol would otherwise check itself.
 */
#include "config.h"

#include <errno.h>

#include "ctx.h"
#include "libdillimpl.h"

static const int msock_type_id;
DILL_EXPORT const void *dill_msock_type = &msock_type_id;

static struct dill_msock_vfs *get(int s) {
    return dill_hquery_fast(s, dill_msock_type);
}

DILL_EXPORT int dill_msendl(int s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dill_msock_vfs *m = get(s);
    if(!m) return -1;
    if(!first || !last || last->iol_next) {
        errno = EINVAL;
        return -1;
    }
    return m->msendl(m, first, last, deadline);
}

DILL_EXPORT ssize_t dill_mrecvl(int s, struct dill_iolist *first,
      struct dill_iolist *last, int64_t deadline) {
    struct dill_msock_vfs *m = get(s);
    if(!m) return -1;
    /* Both NULL is allowed: receive the next message and drop it. */
    if((!first) != (!last) || (last && last->iol_next)) {
        errno = EINVAL;
        return -1;
    }
    return m->mrecvl(m, first, last, deadline);
}

DILL_EXPORT int dill_msend(int s, const void *buf, size_t len,
      int64_t deadline) {
    struct dill_msock_vfs *m = get(s);
    if(!m) return -1;
    struct dill_iolist iol = {(void *)buf, len, NULL, 0};
    return m->msendl(m, &iol, &iol, deadline);
}

DILL_EXPORT ssize_t dill_mrecv(int s, void *buf, size_t len,
      int64_t deadline) {
    struct dill_msock_vfs *m = get(s);
    if(!m) return -1;
    struct dill_iolist iol = {buf, len, NULL, 0};
    return m->mrecvl(m, &iol, &iol, deadline);
}
