/*
 * switch_fallback.h: the portable context switch, sigsetjmp/siglongjmp
 * without the signal mask, for the architectures without a switch of their
 * own and for DILL_ARCH_FALLBACK builds, where the launch macros save a
 * sigjmp_buf too. Included by cr.c only (through switch.h). The library
 * is built without _FORTIFY_SOURCE, whose longjmp check would refuse to
 * jump between stacks.
 */
#ifndef DILL_SWITCH_FALLBACK_H_INCLUDED
#define DILL_SWITCH_FALLBACK_H_INCLUDED

#include <setjmp.h>

static inline void dill_switch_regs(dill_regs *from, dill_regs *to) {
    if(!sigsetjmp(*from, 0)) siglongjmp(*to, 1);
}

__attribute__((noreturn)) static inline void dill_jump_regs(dill_regs *to) {
    siglongjmp(*to, 1);
}

static inline sigjmp_buf *dill_regs_for_macro(dill_regs *r) {
    return r;
}

/* glibc mangles the stack pointer in a jmp_buf. */
static inline void *dill_regs_macro_sp(dill_regs *r) {
    (void)r;
    return NULL;
}

#endif
