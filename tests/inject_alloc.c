/*
 * tests/inject_alloc.c: the allocation calls of the library's test build
 * (alloc.h with DILL_ALLOC_INJECT; see tests/inject.mk). Every call is
 * counted. Once armed with n, the n-th call from then on fails the way
 * the real one fails for lack of memory (NULL, or MAP_FAILED for mmap,
 * with errno ENOMEM); the calls after it succeed again.
 */
#include "config.h"

#include <errno.h>

#include "alloc.h"
#include "inject.h"

static long countdown; /* calls left until the failure; 0: none armed */
static long failures;  /* failures injected since the process started */

void dill_inject_arm(long n) {
    __atomic_store_n(&countdown, n > 0 ? n : 0, __ATOMIC_SEQ_CST);
}

long dill_inject_failures(void) {
    return __atomic_load_n(&failures, __ATOMIC_SEQ_CST);
}

/* Whether this call is the one to fail. */
static int fail_now(void) {
    if(__atomic_load_n(&countdown, __ATOMIC_SEQ_CST) <= 0) return 0;
    if(__atomic_sub_fetch(&countdown, 1, __ATOMIC_SEQ_CST) != 0) return 0;
    __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    errno = ENOMEM;
    return 1;
}

void *dill_malloc(size_t size) {
    return fail_now() ? NULL : malloc(size);
}

void *dill_calloc(size_t n, size_t size) {
    return fail_now() ? NULL : calloc(n, size);
}

void *dill_realloc(void *ptr, size_t size) {
    return fail_now() ? NULL : realloc(ptr, size);
}

void *dill_mmap(void *addr, size_t len, int prot, int flags, int fd,
      off_t off) {
    return fail_now() ? MAP_FAILED : mmap(addr, len, prot, flags, fd, off);
}
