/*
 * libdillimpl.h: the extension API, for code that defines its own handle
 * types (and, later, socket protocols) on top of libdill.
 */
#ifndef LIBDILLIMPL_H_INCLUDED
#define LIBDILLIMPL_H_INCLUDED

#include "libdill.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An object behind a handle embeds this table and passes its address to
   hmake(). The library keeps the pointer, not a copy. */
struct dill_hvfs {
    void *(*query)(struct dill_hvfs *vfs, const void *type);
    void (*close)(struct dill_hvfs *vfs);
};

DILL_EXPORT int dill_hmake(struct dill_hvfs *vfs);
DILL_EXPORT void *dill_hquery(int h, const void *type);

#if !defined DILL_DISABLE_RAW_NAMES
#define hvfs dill_hvfs
#define hmake dill_hmake
#define hquery dill_hquery
#endif


#if !defined DILL_DISABLE_SOCKETS

/* The interface a bytestream protocol answers for dill_bsock_type. */
DILL_EXPORT extern const void *dill_bsock_type;

struct dill_bsock_vfs {
    int (*bsendl)(struct dill_bsock_vfs *vfs, struct dill_iolist *first,
        struct dill_iolist *last, int64_t deadline);
    int (*brecvl)(struct dill_bsock_vfs *vfs, struct dill_iolist *first,
        struct dill_iolist *last, int64_t deadline);
};

/* The interface a message protocol answers for dill_msock_type. */
DILL_EXPORT extern const void *dill_msock_type;

struct dill_msock_vfs {
    int (*msendl)(struct dill_msock_vfs *vfs, struct dill_iolist *first,
        struct dill_iolist *last, int64_t deadline);
    ssize_t (*mrecvl)(struct dill_msock_vfs *vfs, struct dill_iolist *first,
        struct dill_iolist *last, int64_t deadline);
};

#if !defined DILL_DISABLE_RAW_NAMES
#define bsock_vfs dill_bsock_vfs
#define bsock_type dill_bsock_type
#define msock_vfs dill_msock_vfs
#define msock_type dill_msock_type
#endif

#endif /* !DILL_DISABLE_SOCKETS */

#ifdef __cplusplus
}
#endif

#endif
