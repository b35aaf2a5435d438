/*
 * tests/abi_launch.h: a second, independent implementation of the coroutine
 * launch sequence, written from spec sections 2 and 4.1-4.4 alone, for
 * x86-64, i386 and the sigjmp_buf format of every other architecture
 * (aarch64, riscv64, and DILL_ARCH_FALLBACK builds). It does not include
 * libdill.h: it declares the exported functions
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

/* Spec 4.3: the save sequence follows the architecture, and a library
   built with DILL_ARCH_FALLBACK expects sigjmp_buf contexts from every
   program (the test is then compiled with the same macro). */
#if defined __x86_64__ && !defined DILL_ARCH_FALLBACK
#define ABI_FORMAT "x86-64 register slots"
#define ABI_MOVE_BY_ALLOCA 0

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

#elif defined __i386__ && !defined DILL_ARCH_FALLBACK
#define ABI_FORMAT "i386 register slots"
#define ABI_MOVE_BY_ALLOCA 0

/* Spec 4.3, i386: six 4-byte slots at the buffer held in edx (ebx, esi,
   edi, ebp, esp, resume address as an absolute address). eax is 0 on the
   direct path; the library resumes at the address with eax = 1 and edx =
   the buffer. The address is found with a call/pop, so that the test
   links as a PIE without text relocations; the slot holds the same
   absolute address an absolute `movl $label` gives. ecx, which the
   sequence writes, is declared (spec 14). */
#define ABI_SAVE_CONTEXT(buf) __extension__ ({ \
    int abi_again_; \
    __asm__ volatile( \
        "call 6f\n" \
        "6:\n\t" \
        "popl %%ecx\n\t" \
        "leal 7f-6b(%%ecx), %%ecx\n\t" \
        "movl %%ecx, 20(%%edx)\n\t" \
        "movl %%ebx, 0(%%edx)\n\t" \
        "movl %%esi, 4(%%edx)\n\t" \
        "movl %%edi, 8(%%edx)\n\t" \
        "movl %%ebp, 12(%%edx)\n\t" \
        "movl %%esp, 16(%%edx)\n\t" \
        "xorl %%eax, %%eax\n" \
        "7:\n\t" \
        : "=a" (abi_again_) \
        : "d" (buf) \
        : "ecx", "cc", "memory"); \
    abi_again_; \
})

/* Spec 4.4, as on x86-64 with esp and ebp. */
#define ABI_MOVE_STACK(top) do { \
    void *volatile abi_dummy_ = alloca(sizeof(size_t)); \
    (void)abi_dummy_; \
    __asm__ volatile("movl %0, %%esp" : : "r" (top) : "memory"); \
} while(0)

#else
#define ABI_FORMAT "sigjmp_buf"
#define ABI_MOVE_BY_ALLOCA 1

/* Spec 4.3, every other architecture (aarch64, riscv64...) and
   DILL_ARCH_FALLBACK: a real sigjmp_buf, saved without the signal mask.
   glibc mangles pointers in it, so the library can only resume it with
   siglongjmp. */
#define ABI_SAVE_CONTEXT(buf) sigsetjmp(*(buf), 0)

/* Spec 4.4, fallback: allocate the distance from here down to the new
   stack, so that the stack pointer lands there; storing the result in
   dill_unoptimisable keeps the allocation. */
#define ABI_MOVE_STACK(top) do { \
    char *abi_here_ = alloca(sizeof(size_t)); \
    dill_unoptimisable = alloca((size_t)(abi_here_ - (char *)(top))); \
} while(0)

#endif

/* Spec 4.1: prologue; on failure its -1 (the call is not evaluated);
   otherwise save, move to the new stack, run the call, end in the
   epilogue; the launcher comes back through the saved context. */
#define ABI_LAUNCH(call, mem, memlen, bndl) __extension__ ({ \
    sigjmp_buf *abi_ctx_; \
    void *abi_top_ = (mem); \
    int abi_result_ = dill_prologue(&abi_ctx_, &abi_top_, (memlen), \
        (bndl), __FILE__, __LINE__); \
    if(abi_result_ >= 0) { \
        if(ABI_SAVE_CONTEXT(abi_ctx_) == 0) { \
            ABI_MOVE_STACK(abi_top_); \
            call; \
            dill_epilogue(); \
        } \
    } \
    abi_result_; \
})

#define ABI_GO(call) ABI_LAUNCH(call, NULL, 0, -1)
#define ABI_GO_MEM(call, mem, len) ABI_LAUNCH(call, mem, len, -1)
#define ABI_BUNDLE_GO(b, call) ABI_LAUNCH(call, NULL, 0, b)
#define ABI_BUNDLE_GO_MEM(b, call, mem, len) ABI_LAUNCH(call, mem, len, b)

#endif
