/*
 * tests/check.h: the one assertion every test uses. CHECK(expr) prints the
 * file, line, expression and errno of a failed check and exits with 1.
 */
#ifndef DILL_TESTS_CHECK_H
#define DILL_TESTS_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(expr) \
    do { \
        if(!(expr)) { \
            int check_errno__ = errno; \
            fprintf(stderr, "%s:%d: CHECK(%s) failed (errno %d: %s)\n", \
                __FILE__, __LINE__, #expr, check_errno__, \
                strerror(check_errno__)); \
            exit(1); \
        } \
    } while(0)

/* The small caller-memory stack (go_mem) the tests rely on: 4 KiB, and
   8 KiB under AddressSanitizer, whose runtime uses about 4 KiB of every
   coroutine's stack at each switch (see go_mem(3)). */
#if defined __SANITIZE_ADDRESS__
#define UNDER_ASAN 1
#elif defined __has_feature
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined UNDER_ASAN
#define SMALL_STACK 8192
#else
#define SMALL_STACK 4096
#endif

/* A call that must fail with exactly this errno. */
#define CHECK_ERR(expr, err) \
    do { \
        errno = 0; \
        CHECK((expr) == -1 && errno == (err)); \
    } while(0)

#endif
