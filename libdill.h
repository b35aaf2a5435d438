/*
 * libdill.h: the public API of this libdill 2.x replacement.
 *
 * Structured concurrency for C: coroutines launched with go(), grouped in
 * bundles, talking over channels, waiting on file descriptors and deadlines.
 * The launch macros at the bottom follow libdill's binary protocol exactly,
 * so programs built against the original header run on this library.
 */
#ifndef LIBDILL_H_INCLUDED
#define LIBDILL_H_INCLUDED

#include <errno.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#if defined __linux__
#include <alloca.h>
#endif

#if !defined __GNUC__ && !defined __clang__
#error "libdill needs GCC or clang: go() uses statement expressions and inline assembly"
#endif

/* ABI version, also the libtool -version-info (current:revision:age). */
#define DILL_VERSION_CURRENT 25
#define DILL_VERSION_REVISION 0
#define DILL_VERSION_AGE 5

#if (defined __GNUC__ && __GNUC__ < 4) || DILL_NO_EXPORTS
#define DILL_EXPORT
#else
#define DILL_EXPORT __attribute__((visibility("default")))
#endif

#if defined __arm__ || defined __thumb__
#define DILL_ALIGN __attribute__((aligned(__SIZEOF_POINTER__)))
#else
#define DILL_ALIGN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Handles ---------------------------------------------------------- */

DILL_EXPORT int dill_hown(int h);
DILL_EXPORT int dill_hclose(int h);

#if !defined DILL_DISABLE_RAW_NAMES
#define hown dill_hown
#define hclose dill_hclose
#endif

/* ---- Coroutines ------------------------------------------------------- */

/* Keeps a coroutine's body out of the launching function (see go(3)).
   GCC's interprocedural analysis would otherwise conclude that pointers
   passed to the coroutine do not escape, and miss writes the coroutine
   makes after it first blocks; noipa (GCC 8+) turns that analysis off. */
#if defined __GNUC__ && !defined __clang__ && __GNUC__ >= 8
#define dill_coroutine __attribute__((noinline, noipa))
#else
#define dill_coroutine __attribute__((noinline))
#endif

/* Written only by the portable stack switch so the compiler keeps it. */
DILL_EXPORT extern volatile void *dill_unoptimisable;

/* The launch protocol: go() calls dill_prologue, saves its own context into
   the buffer the library hands back, moves to the new stack, runs the
   expression and ends in dill_epilogue. */
DILL_EXPORT __attribute__((noinline)) int dill_prologue(sigjmp_buf **ctx,
    void **ptr, size_t len, int bndl, const char *file, int line);
DILL_EXPORT __attribute__((noinline)) void dill_epilogue(void);

#if defined __x86_64__ && !defined DILL_ARCH_FALLBACK
/* Save rbx, rbp, r12-r15, rsp and the resume address at the buffer in rdx.
   Yields 0 now, 1 when the library resumes it (with rdx = the buffer). */
#define dill_setjmp(ctx) ({ \
    int dill_ret__; \
    __asm__ volatile( \
        "leaq 1f(%%rip), %%rcx\n\t" \
        "xorq %%rax, %%rax\n\t" \
        "movq %%rbx, (%%rdx)\n\t" \
        "movq %%rbp, 8(%%rdx)\n\t" \
        "movq %%r12, 16(%%rdx)\n\t" \
        "movq %%r13, 24(%%rdx)\n\t" \
        "movq %%r14, 32(%%rdx)\n\t" \
        "movq %%r15, 40(%%rdx)\n\t" \
        "movq %%rsp, 48(%%rdx)\n\t" \
        "movq %%rcx, 56(%%rdx)\n\t" \
        "1:\n\t" \
        : "=a" (dill_ret__) \
        : "d" (ctx) \
        : "memory", "cc", "rcx", "rsi", "rdi", "r8", "r9", "r10", "r11", \
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", \
          "xmm15"); \
    dill_ret__; \
})
#define dill_longjmp(ctx) \
    __asm__ volatile( \
        "movq 48(%%rdx), %%rsp\n\t" \
        "movq 40(%%rdx), %%r15\n\t" \
        "movq 32(%%rdx), %%r14\n\t" \
        "movq 24(%%rdx), %%r13\n\t" \
        "movq 16(%%rdx), %%r12\n\t" \
        "movq 8(%%rdx), %%rbp\n\t" \
        "movq (%%rdx), %%rbx\n\t" \
        "movl $1, %%eax\n\t" \
        "jmp *56(%%rdx)\n\t" \
        : : "d" (ctx) : "memory")
/* The dummy alloca makes the frame use rbp, so locals stay reachable. */
#define dill_setsp(x) \
    __asm__ volatile("" : : "r" (alloca(sizeof(size_t)))); \
    __asm__ volatile("movq %0, %%rsp" : : "r" (x) : "memory")
#else
/* Portable path: a real sigjmp_buf, and a stack move by alloca, which only
   works when the new stack lies below the current one. */
#define dill_setjmp(ctx) sigsetjmp(ctx, 0)
#define dill_longjmp(ctx) siglongjmp(ctx, 1)
#define dill_setsp(x) \
    dill_unoptimisable = alloca((char *)alloca(sizeof(size_t)) - (char *)(x))
#endif

#define dill_go_(fn, ptr, len, bndl) \
    ({ \
        sigjmp_buf *dill_ctx__; \
        void *dill_stk__ = (ptr); \
        int dill_handle__ = dill_prologue(&dill_ctx__, &dill_stk__, (len), \
            (bndl), __FILE__, __LINE__); \
        if(dill_handle__ >= 0) { \
            if(!dill_setjmp(*dill_ctx__)) { \
                dill_setsp(dill_stk__); \
                fn; \
                dill_epilogue(); \
            } \
        } \
        dill_handle__; \
    })

#define dill_go(fn) dill_go_(fn, NULL, 0, -1)
#define dill_go_mem(fn, ptr, len) dill_go_(fn, ptr, len, -1)
#define dill_bundle_go(bndl, fn) dill_go_(fn, NULL, 0, bndl)
#define dill_bundle_go_mem(bndl, fn, ptr, len) dill_go_(fn, ptr, len, bndl)

struct dill_bundle_storage { char _[64]; } DILL_ALIGN;

DILL_EXPORT int dill_bundle(void);
DILL_EXPORT int dill_bundle_mem(struct dill_bundle_storage *mem);
DILL_EXPORT int dill_bundle_wait(int h, int64_t deadline);
DILL_EXPORT int dill_yield(void);

#if !defined DILL_DISABLE_RAW_NAMES
#define coroutine dill_coroutine
#define go dill_go
#define go_mem dill_go_mem
#define bundle_go dill_bundle_go
#define bundle_go_mem dill_bundle_go_mem
#define bundle_storage dill_bundle_storage
#define bundle dill_bundle
#define bundle_mem dill_bundle_mem
#define bundle_wait dill_bundle_wait
#define yield dill_yield
#endif

/* ---- Time and file descriptors ---------------------------------------- */

DILL_EXPORT int dill_fdclean(int fd);
DILL_EXPORT int dill_fdin(int fd, int64_t deadline);
DILL_EXPORT int dill_fdout(int fd, int64_t deadline);
DILL_EXPORT int64_t dill_now(void);
DILL_EXPORT int dill_msleep(int64_t deadline);

#if !defined DILL_DISABLE_RAW_NAMES
#define fdclean dill_fdclean
#define fdin dill_fdin
#define fdout dill_fdout
#define now dill_now
#define msleep dill_msleep
#endif

/* ---- Channels --------------------------------------------------------- */

#define DILL_CHSEND 1
#define DILL_CHRECV 2

struct dill_chclause {
    int op;
    int ch;
    void *val;
    size_t len;
};

struct dill_chstorage { char _[144]; } DILL_ALIGN;

DILL_EXPORT int dill_chmake(int chv[2]);
DILL_EXPORT int dill_chmake_mem(struct dill_chstorage *mem, int chv[2]);
DILL_EXPORT int dill_chsend(int ch, const void *val, size_t len,
    int64_t deadline);
DILL_EXPORT int dill_chrecv(int ch, void *val, size_t len, int64_t deadline);
DILL_EXPORT int dill_chdone(int ch);
DILL_EXPORT int dill_choose(struct dill_chclause *clauses, int nclauses,
    int64_t deadline);

#if !defined DILL_DISABLE_RAW_NAMES
#define CHSEND DILL_CHSEND
#define CHRECV DILL_CHRECV
#define chclause dill_chclause
#define chstorage dill_chstorage
#define chmake dill_chmake
#define chmake_mem dill_chmake_mem
#define chsend dill_chsend
#define chrecv dill_chrecv
#define chdone dill_chdone
#define choose dill_choose
#endif

#ifdef __cplusplus
}
#endif

#endif
