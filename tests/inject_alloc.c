/*
 * tests/inject_alloc.c: the allocation calls of the library's test build
 * (alloc.h with DILL_ALLOC_INJECT; see tests/inject.mk). Every call is
 * counted. Once armed with n, the n-th call from then on fails the way
 * the real one fails for lack of memory (NULL, or MAP_FAILED for mmap,
 * with errno ENOMEM); the calls after it succeed again.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

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

/* The start of the program's image (the linker's), so that the places
   printed mean something to addr2line in a position-independent one. */
extern char __executable_start;

/* Whether this call, made from where, is the one to fail. INJECT_TRACE
   set prints where each failure is injected (addr2line -f -e PROGRAM). */
static int fail_now(void *where) {
    if(__atomic_load_n(&countdown, __ATOMIC_SEQ_CST) <= 0) return 0;
    if(__atomic_sub_fetch(&countdown, 1, __ATOMIC_SEQ_CST) != 0) return 0;
    __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    if(getenv("INJECT_TRACE"))
        fprintf(stderr, "inject: failing at 0x%lx\n",
            (unsigned long)((char *)where - &__executable_start));
    errno = ENOMEM;
    return 1;
}

#define CALLER __builtin_return_address(0)

void *dill_malloc(size_t size) {
    return fail_now(CALLER) ? NULL : malloc(size);
}

void *dill_calloc(size_t n, size_t size) {
    return fail_now(CALLER) ? NULL : calloc(n, size);
}

void *dill_realloc(void *ptr, size_t size) {
    return fail_now(CALLER) ? NULL : realloc(ptr, size);
}

void *dill_mmap(void *addr, size_t len, int prot, int flags, int fd,
      off_t off) {
    return fail_now(CALLER) ? MAP_FAILED :
        mmap(addr, len, prot, flags, fd, off);
}
