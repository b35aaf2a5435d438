/*
 * alloc.h: the library's memory requests. Every malloc, calloc, realloc
 * and mmap the library makes goes through these. In the library they are
 * exactly those calls, inlined: nothing is added. The test build of the
 * library (tests/inject.mk, -DDILL_ALLOC_INJECT) links them to
 * tests/inject_alloc.c instead, which counts them and can make any one of
 * them fail, so that the tests can check every path a lack of memory
 * takes.
 */
#ifndef DILL_ALLOC_H_INCLUDED
#define DILL_ALLOC_H_INCLUDED

#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>

#if defined DILL_ALLOC_INJECT

void *dill_malloc(size_t size);
void *dill_calloc(size_t n, size_t size);
void *dill_realloc(void *ptr, size_t size);
void *dill_mmap(void *addr, size_t len, int prot, int flags, int fd,
    off_t off);

/* tlsbio.c reports an OpenSSL failure as EFAULT because OpenSSL's error
   queue named no cause it knows (no lack of memory among them). The test
   build counts these: when OpenSSL's own allocations are made to fail, an
   EFAULT is only what the library could know. */
void dill_inject_unnamed_openssl_failure(void);

#else

static inline void *dill_malloc(size_t size) {
    return malloc(size);
}

static inline void *dill_calloc(size_t n, size_t size) {
    return calloc(n, size);
}

static inline void *dill_realloc(void *ptr, size_t size) {
    return realloc(ptr, size);
}

static inline void *dill_mmap(void *addr, size_t len, int prot, int flags,
      int fd, off_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}

static inline void dill_inject_unnamed_openssl_failure(void) {
}

#endif

#endif
