/*
 * switch_fallback.h: the portable context switch, sigsetjmp/siglongjmp
 * without the signal mask, the format the launch macros use on every
 * architecture but x86-64 (and with DILL_ARCH_FALLBACK). Included by cr.c
 * only. The library is built without _FORTIFY_SOURCE, whose longjmp check
 * would refuse to jump between stacks.
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

#endif
