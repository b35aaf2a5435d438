/*
 * switch_native.h: the context switch where the launch macros save with
 * sigsetjmp (aarch64, riscv64: libdill.h's portable go(), which a program
 * compiled against the original header contains), but the library can
 * switch in a few instructions itself.
 *
 * A program's sigjmp_buf cannot be read or written by us: glibc mangles the
 * stack pointer and the return address in it with a per-process secret. So
 * a context that go() saved (the launcher of a coroutine) is resumed once
 * through siglongjmp, and every context the library saves (yield, blocking
 * calls) holds only the registers the platform ABI makes callee-saved, in
 * slots over the same bytes (switch_regs.h), resumed with a plain return.
 * regs->native tells the two apart. Included by cr.c only (switch.h).
 */
#ifndef DILL_SWITCH_NATIVE_H_INCLUDED
#define DILL_SWITCH_NATIVE_H_INCLUDED

#include <setjmp.h>
#include <stddef.h>

/* The assembly below uses these offsets. */
_Static_assert(offsetof(dill_regs, native) == 0, "flag at offset 0");
_Static_assert(offsetof(dill_regs, u) == 8, "slots at offset 8");
_Static_assert(sizeof(((dill_regs *)0)->u.slots) <= sizeof(sigjmp_buf),
    "the native slots fit in the sigjmp_buf");

/* Save the caller into from, resume to. Returns when from is resumed. */
void dill_switch_regs(dill_regs *from, dill_regs *to);
/* Resume to without saving anything (a finished coroutine). A context
   saved by go() is handed to siglongjmp(&to->u.jb, 1). */
__attribute__((noreturn)) void dill_jump_regs(dill_regs *to);

#if defined DILL_SWITCH_AARCH64
#include "switch_aarch64.h"
#else
#include "switch_riscv64.h"
#endif

static inline sigjmp_buf *dill_regs_for_macro(dill_regs *r) {
    r->native = 0;
    return &r->u.jb;
}

/* Mangled by glibc in the sigjmp_buf. */
static inline void *dill_regs_macro_sp(dill_regs *r) {
    (void)r;
    return NULL;
}

#endif
