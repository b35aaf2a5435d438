/*
 * switch.h: the context switch of this build (see switch_regs.h for the
 * choice and the formats). Included by cr.c only: some implementations
 * define their functions in top-level assembly.
 *
 * Each implementation provides:
 *   dill_switch_regs(from, to)  save the caller into from, resume to;
 *                               returns when from is resumed;
 *   dill_jump_regs(to)          resume to, saving nothing (noreturn);
 *   dill_regs_for_macro(r)      the buffer go() saves its launcher into,
 *                               with r marked as saved by the macro;
 *   dill_regs_macro_sp(r)       the stack pointer a context saved by
 *                               go() holds, or NULL where it cannot be
 *                               read (glibc mangles it in a sigjmp_buf).
 */
#ifndef DILL_SWITCH_H_INCLUDED
#define DILL_SWITCH_H_INCLUDED

#include "switch_regs.h"

#if defined DILL_SWITCH_X86_64
#include "switch_x86_64.h"
#elif defined DILL_SWITCH_I386
#include "switch_i386.h"
#elif defined DILL_SWITCH_NATIVE
#include "switch_native.h"
#else
#include "switch_fallback.h"
#endif

#endif
