/*
 * tests/abi_launch.h: a second, independent implementation of the coroutine
 * launch sequence, written from spec sections 2 and 4.1-4.4 alone, for
 * x86-64. It does not include libdill.h: it declares the exported functions
 * itself and does its own register save and stack switch, the way a
 * program compiled against the original header does. tests/abi.c uses it
 * to show that the library accepts that sequence.
 */
#ifndef ABI_LAUNCH_H
#define ABI_LAUNCH_H

#include <alloca.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* Spec 2: the exported symbols, with the original's types. */
extern volatile void *dill_unoptimisable;
__attribute__((noinline)) int dill_prologue(sigjmp_buf **ctx, void **ptr,
    size_t len, int bndl, const char *file, int line);
__attribute__((noinline)) void dill_epilogue(void);
int dill_hclose(int h);
int dill_bundle(void);
int dill_bundle_wait(int h, int64_t deadline);
int dill_yield(void);
int64_t dill_now(void);
int dill_msleep(int64_t deadline);
int dill_chmake(int chv[2]);
int dill_chsend(int ch, const void *val, size_t len, int64_t deadline);
int dill_chrecv(int ch, void *val, size_t len, int64_t deadline);
int dill_chdone(int ch);

/* Spec 4.6: keeps the body a real call on the new stack. */
#define ABI_COROUTINE __attribute__((noinline))

/* A library built with DILL_ARCH_FALLBACK expects sigjmp_buf contexts
   from every program, so the x86-64 sequence does not apply to it. */
#if defined __x86_64__ && !defined DILL_ARCH_FALLBACK
#define ABI_SUPPORTED 1

/* Spec 4.3, x86-64: eight 8-byte slots at the buffer held in rdx (rbx, rbp,
   r12, r13, r14, r15, rsp, resume address). The resume address is the
   label right after the sequence; on the direct path rax is 0, and the
   library comes back to the label with rax = 1 and rdx = the buffer. Only
   the registers the spec lists are declared clobbered. */
#define ABI_SAVE_CONTEXT(buf) __extension__ ({ \
    long abi_again_; \
    __asm__ volatile( \
        "leaq 7f(%%rip), %%rcx\n\t" \
        "movq %%rbx, 0(%%rdx)\n\t" \
        "movq %%rbp, 8(%%rdx)\n\t" \
        "movq %%r12, 16(%%rdx)\n\t" \
        "movq %%r13, 24(%%rdx)\n\t" \
        "movq %%r14, 32(%%rdx)\n\t" \
        "movq %%r15, 40(%%rdx)\n\t" \
        "movq %%rsp, 48(%%rdx)\n\t" \
        "movq %%rcx, 56(%%rdx)\n\t" \
        "xorl %%eax, %%eax\n" \
        "7:\n\t" \
        : "=a" (abi_again_) \
        : "d" (buf) \
        : "rcx", "rsi", "rdi", "r8", "r9", "r10", "r11", "cc", "memory"); \
    abi_again_; \
})

/* Spec 4.4: a small dummy alloca makes the function keep its locals at
   fixed offsets from rbp; then rsp takes the value the prologue returned,
   unchanged. */
#define ABI_MOVE_STACK(top) do { \
    void *volatile abi_dummy_ = alloca(sizeof(size_t)); \
    (void)abi_dummy_; \
    __asm__ volatile("movq %0, %%rsp" : : "r" (top) : "memory"); \
} while(0)

/* Spec 4.1: prologue; on failure its -1 (the call is not evaluated);
   otherwise save, move to the new stack, run the call, end in the
   epilogue; the launcher comes back through the saved context. */
#define ABI_LAUNCH(call, mem, memlen, bndl) __extension__ ({ \
    sigjmp_buf *abi_ctx_; \
    void *abi_top_ = (mem); \
    int abi_result_ = dill_prologue(&abi_ctx_, &abi_top_, (memlen), \
        (bndl), __FILE__, __LINE__); \
    if(abi_result_ >= 0 && ABI_SAVE_CONTEXT(abi_ctx_) == 0) { \
        ABI_MOVE_STACK(abi_top_); \
        call; \
        dill_epilogue(); \
    } \
    abi_result_; \
})

#define ABI_GO(call) ABI_LAUNCH(call, NULL, 0, -1)
#define ABI_GO_MEM(call, mem, len) ABI_LAUNCH(call, mem, len, -1)
#define ABI_BUNDLE_GO(b, call) ABI_LAUNCH(call, NULL, 0, b)
#define ABI_BUNDLE_GO_MEM(b, call, mem, len) ABI_LAUNCH(call, mem, len, b)

#else
#define ABI_SUPPORTED 0
#endif

#endif
