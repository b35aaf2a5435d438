/*
 * switch_regs.h: which context switch this build uses, and the saved
 * registers of a suspended coroutine (dill_regs) in that switch's format.
 * Every format also holds what the launch macros of libdill.h write, since
 * a launching coroutine saves itself there before the library ever does:
 *
 *   x86-64, i386       the macros' own register slots, plus one slot that
 *                      says the library saved them (switch_x86_64.h,
 *                      switch_i386.h);
 *   aarch64, riscv64   the macros use sigsetjmp; the library saves the
 *                      callee-saved registers itself over the same bytes,
 *                      and a flag says which of the two is there
 *                      (switch_native.h);
 *   anything else, or  a sigjmp_buf, for the macros and the library alike
 *   DILL_ARCH_FALLBACK (switch_fallback.h).
 *
 * The implementation itself (switch.h) is for cr.c only.
 */
#ifndef DILL_SWITCH_REGS_H_INCLUDED
#define DILL_SWITCH_REGS_H_INCLUDED

#include <setjmp.h>
#include <stdint.h>

#if defined DILL_ARCH_FALLBACK
#define DILL_SWITCH_FALLBACK 1
#elif defined __x86_64__
#define DILL_SWITCH_X86_64 1
#elif defined __i386__
#define DILL_SWITCH_I386 1
#elif defined __aarch64__ && defined __LP64__
#define DILL_SWITCH_NATIVE 1
#define DILL_SWITCH_AARCH64 1
#elif defined __riscv && __riscv_xlen == 64 && \
    (!defined __riscv_flen || __riscv_flen == 64)
#define DILL_SWITCH_NATIVE 1
#define DILL_SWITCH_RISCV64 1
#else
#define DILL_SWITCH_FALLBACK 1
#endif

#if defined DILL_SWITCH_X86_64
/* rbx, rbp, r12-r15, rsp, resume address; slot 8: saved by the library. */
typedef struct { uint64_t slots[9]; } dill_regs;
#elif defined DILL_SWITCH_I386
/* ebx, esi, edi, ebp, esp, resume address; slot 6: saved by the library. */
typedef struct { uint32_t slots[7]; } dill_regs;
#elif defined DILL_SWITCH_NATIVE
/* The native slots overlay the sigjmp_buf: once a context saved by
   sigsetjmp has been resumed, its buffer is dead, and the next save of
   that coroutine is the library's. Sharing the bytes keeps the record,
   carved from every coroutine's stack, as small as the fallback's. */
#if defined DILL_SWITCH_AARCH64
#define DILL_NATIVE_SLOTS 21 /* x19-x28, fp, lr, sp, d8-d15 */
#else
#define DILL_NATIVE_SLOTS 26 /* s0-s11, ra, sp, fs0-fs11 */
#endif
typedef struct {
    uint64_t native; /* 1: the library saved it; 0: go()'s sigsetjmp did */
    union {
        sigjmp_buf jb;
        uint64_t slots[DILL_NATIVE_SLOTS];
    } u;
} dill_regs;
#else
typedef sigjmp_buf dill_regs;
#endif

#endif
