/*
 * bundle.h: bundles, the handles that own coroutines. cr.c uses these to
 * launch coroutines into a bundle and to retire them.
 */
#ifndef DILL_BUNDLE_H_INCLUDED
#define DILL_BUNDLE_H_INCLUDED

#include <stddef.h>

#include "cr.h"

/* Bytes of caller memory a bundle takes in go_mem. */
#define DILL_BUNDLE_AREA 64

/* A new bundle, in caller memory when mem is not NULL (any alignment, 64
   bytes). Returns its handle, or -1 and errno. */
int dill_bundle_new(void *mem);

/* The bundle behind handle h; NULL and EBADF/ENOTSUP. */
struct dill_bundle *dill_bundle_get(int h);

/* Add a new coroutine at the end of a bundle. */
void dill_bundle_add(struct dill_bundle *b, struct dill_cr *cr);

/* A member returned normally: take it out, wake waiters if it was the last. */
void dill_bundle_retire(struct dill_cr *cr);

/* Free the cache of unused bundle objects (thread exit). */
struct dill_ctx;
void dill_bundles_term(struct dill_ctx *ctx);

#endif
