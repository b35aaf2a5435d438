/*
 * switch_i386.h: the context switch on i386, in the register format of the
 * launch macros (libdill.h, spec core.md 4.3): ebx, esi, edi, ebp, esp,
 * resume address. A context resumes with eax = 1 and edx = its buffer, which
 * is what a context saved by go() inside a user's program expects. Included
 * by cr.c only (through switch.h). Both functions take their arguments on
 * the stack (cdecl) and touch no global data, so they need no GOT and are
 * the same code with and without -fPIC.
 */
#ifndef DILL_SWITCH_I386_H_INCLUDED
#define DILL_SWITCH_I386_H_INCLUDED

/* Save the caller into from, resume to. Returns when from is resumed. */
void dill_switch_regs(dill_regs *from, dill_regs *to);
/* Resume to without saving anything (a finished coroutine). */
__attribute__((noreturn)) void dill_jump_regs(dill_regs *to);

/* As on x86-64, a context saved here is resumed with `ret`, keeping the
   CPU's return-stack predictor in step; one saved by go() (slot 6 is 0)
   is resumed with the `jmp` it expects. */
__asm__(
    ".pushsection .text\n"
    ".p2align 4\n"
    ".globl dill_switch_regs\n"
    ".hidden dill_switch_regs\n"
    ".type dill_switch_regs, @function\n"
    "dill_switch_regs:\n"
    "    movl 4(%esp), %eax\n"      /* from */
    "    movl 8(%esp), %edx\n"      /* to */
    "    movl (%esp), %ecx\n"       /* our return address resumes `from` */
    "    movl %ebx, (%eax)\n"
    "    movl %esi, 4(%eax)\n"
    "    movl %edi, 8(%eax)\n"
    "    movl %ebp, 12(%eax)\n"
    "    leal 4(%esp), %ebx\n"      /* the stack as it is after ret */
    "    movl %ebx, 16(%eax)\n"
    "    movl %ecx, 20(%eax)\n"
    "    movl $1, 24(%eax)\n"
    "    jmp 2f\n"
    ".size dill_switch_regs, .-dill_switch_regs\n"
    ".globl dill_jump_regs\n"
    ".hidden dill_jump_regs\n"
    ".type dill_jump_regs, @function\n"
    "dill_jump_regs:\n"
    "    movl 4(%esp), %edx\n"
    "2:\n"
    "    movl 12(%edx), %ebp\n"
    "    movl 8(%edx), %edi\n"
    "    movl 4(%edx), %esi\n"
    "    movl (%edx), %ebx\n"
    "    movl $1, %eax\n"
    "    cmpl $0, 24(%edx)\n"
    "    je 1f\n"
    /* Ours: the return address still sits just below the saved esp. */
    "    movl 16(%edx), %esp\n"
    "    subl $4, %esp\n"
    "    ret\n"
    "1:\n"
    "    movl 16(%edx), %esp\n"
    "    jmp *20(%edx)\n"
    ".size dill_jump_regs, .-dill_jump_regs\n"
    ".popsection\n");

static inline sigjmp_buf *dill_regs_for_macro(dill_regs *r) {
    r->slots[6] = 0;
    return (sigjmp_buf *)r;
}

static inline void *dill_regs_macro_sp(dill_regs *r) {
    return (void *)(uintptr_t)r->slots[4];
}

#endif
