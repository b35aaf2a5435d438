/*
 * tests/inject_alloc.c: the allocation calls of the library's test build
 * (alloc.h with DILL_ALLOC_INJECT; see tests/inject.mk). Every call is
 * counted. Once armed with n, the n-th call from then on fails the way
 * the real one fails for lack of memory (NULL, or MAP_FAILED for mmap,
 * with errno ENOMEM); the calls after it succeed again.
 *
 * With --enable-tls, OpenSSL's own allocations come here too: a
 * constructor hands OpenSSL our functions (CRYPTO_set_mem_functions)
 * before the program can make any OpenSSL call. They have a countdown of
 * their own, so that a test can go through the library's points and
 * OpenSSL's far more numerous ones separately.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#if defined HAVE_TLS
#include <openssl/crypto.h>
#endif

#include "alloc.h"
#include "inject.h"

/* A countdown of calls left until the failure; 0: none armed. */
struct point_set {
    long countdown;
    long calls;
};

static struct point_set library;  /* dill_malloc and the others */
static struct point_set openssl;  /* CRYPTO_malloc and the others */
static long failures;  /* failures injected since the process started */
static long unnamed;   /* OpenSSL failures reported as EFAULT (alloc.h) */

void dill_inject_arm(long n) {
    __atomic_store_n(&library.countdown, n > 0 ? n : 0, __ATOMIC_SEQ_CST);
}

void dill_inject_arm_openssl(long n) {
    __atomic_store_n(&openssl.countdown, n > 0 ? n : 0, __ATOMIC_SEQ_CST);
}

long dill_inject_failures(void) {
    return __atomic_load_n(&failures, __ATOMIC_SEQ_CST);
}

void dill_inject_unnamed_openssl_failure(void) {
    __atomic_add_fetch(&unnamed, 1, __ATOMIC_SEQ_CST);
}

long dill_inject_openssl_unnamed(void) {
    return __atomic_load_n(&unnamed, __ATOMIC_SEQ_CST);
}

long dill_inject_openssl_calls(void) {
    return __atomic_load_n(&openssl.calls, __ATOMIC_SEQ_CST);
}

/* Whether this call of the set is the one to fail. */
static int fail_now(struct point_set *set) {
    __atomic_add_fetch(&set->calls, 1, __ATOMIC_SEQ_CST);
    if(__atomic_load_n(&set->countdown, __ATOMIC_SEQ_CST) <= 0) return 0;
    if(__atomic_sub_fetch(&set->countdown, 1, __ATOMIC_SEQ_CST) != 0)
        return 0;
    __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
    errno = ENOMEM;
    return 1;
}

/* The start of the program's image (the linker's), so that the places
   printed mean something to addr2line in a position-independent one. */
extern char __executable_start;

/* INJECT_TRACE set prints where each failure of the library is injected
   (addr2line -f -e PROGRAM ADDRESS). */
static int library_fails_now(void *where) {
    if(!fail_now(&library)) return 0;
    if(getenv("INJECT_TRACE"))
        fprintf(stderr, "inject: failing at 0x%lx\n",
            (unsigned long)((char *)where - &__executable_start));
    return 1;
}

#define CALLER __builtin_return_address(0)

void *dill_malloc(size_t size) {
    return library_fails_now(CALLER) ? NULL : malloc(size);
}

void *dill_calloc(size_t n, size_t size) {
    return library_fails_now(CALLER) ? NULL : calloc(n, size);
}

void *dill_realloc(void *ptr, size_t size) {
    return library_fails_now(CALLER) ? NULL : realloc(ptr, size);
}

void *dill_mmap(void *addr, size_t len, int prot, int flags, int fd,
      off_t off) {
    return library_fails_now(CALLER) ? MAP_FAILED :
        mmap(addr, len, prot, flags, fd, off);
}

#if defined HAVE_TLS

/* OpenSSL names the source line of each allocation (unless it was built
   without file names): INJECT_TRACE prints it. */
static int openssl_fails_now(const char *file, int line) {
    if(!fail_now(&openssl)) return 0;
    if(getenv("INJECT_TRACE"))
        fprintf(stderr, "inject: failing OpenSSL's allocation at %s:%d\n",
            file ? file : "?", line);
    return 1;
}

static void *openssl_malloc(size_t size, const char *file, int line) {
    return openssl_fails_now(file, line) ? NULL : malloc(size);
}

/* OpenSSL calls this with size 0 to free (CRYPTO_realloc): that cannot
   fail. */
static void *openssl_realloc(void *ptr, size_t size, const char *file,
      int line) {
    if(size == 0) {
        free(ptr);
        return NULL;
    }
    return openssl_fails_now(file, line) ? NULL : realloc(ptr, size);
}

static void openssl_free(void *ptr, const char *file, int line) {
    (void)file;
    (void)line;
    free(ptr);
}

/* OpenSSL accepts other functions only before its first allocation: a
   constructor of the test program runs before main, so before anything
   could call OpenSSL (OpenSSL's own constructors allocate nothing). */
__attribute__((constructor)) static void route_openssl(void) {
    if(!CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc,
          openssl_free)) {
        fprintf(stderr, "inject: CRYPTO_set_mem_functions refused: OpenSSL "
            "allocated before the program started\n");
        abort();
    }
}

#endif
