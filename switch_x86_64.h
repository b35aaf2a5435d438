/*
 * switch_x86_64.h: the context switch on x86-64, in the register format of
 * the launch macros (libdill.h): rbx, rbp, r12-r15, rsp, resume address.
 * A context resumes with rax = 1 and rdx = its buffer, which is what a
 * context saved by go() inside a user's program expects. Included by cr.c
 * only (through switch.h); the two functions follow the C calling
 * convention, so the compiler saves everything else itself.
 */
#ifndef DILL_SWITCH_X86_64_H_INCLUDED
#define DILL_SWITCH_X86_64_H_INCLUDED

/* Save the caller into from, resume to. Returns when from is resumed. */
void dill_switch_regs(dill_regs *from, dill_regs *to);
/* Resume to without saving anything (a finished coroutine). */
__attribute__((noreturn)) void dill_jump_regs(dill_regs *to);

/* A context saved here is resumed with `ret`, so the CPU's return-stack
   predictor stays in step with the real call chains; one saved by go() in
   a user's program (slot 8 is 0) is resumed with the `jmp` it expects. */
__asm__(
    ".pushsection .text\n"
    ".p2align 4\n"
    ".globl dill_switch_regs\n"
    ".hidden dill_switch_regs\n"
    ".type dill_switch_regs, @function\n"
    "dill_switch_regs:\n"
    "    movq (%rsp), %rcx\n"       /* our return address resumes `from` */
    "    leaq 8(%rsp), %rax\n"      /* and the stack as it is after ret */
    "    movq %rbx, (%rdi)\n"
    "    movq %rbp, 8(%rdi)\n"
    "    movq %r12, 16(%rdi)\n"
    "    movq %r13, 24(%rdi)\n"
    "    movq %r14, 32(%rdi)\n"
    "    movq %r15, 40(%rdi)\n"
    "    movq %rax, 48(%rdi)\n"
    "    movq %rcx, 56(%rdi)\n"
    "    movq $1, 64(%rdi)\n"
    "    movq %rsi, %rdi\n"
    ".size dill_switch_regs, .-dill_switch_regs\n"
    ".globl dill_jump_regs\n"
    ".hidden dill_jump_regs\n"
    ".type dill_jump_regs, @function\n"
    "dill_jump_regs:\n"
    "    movq %rdi, %rdx\n"
    "    movq 40(%rdx), %r15\n"
    "    movq 32(%rdx), %r14\n"
    "    movq 24(%rdx), %r13\n"
    "    movq 16(%rdx), %r12\n"
    "    movq 8(%rdx), %rbp\n"
    "    movq (%rdx), %rbx\n"
    "    movl $1, %eax\n"
    "    cmpq $0, 64(%rdx)\n"
    "    je 1f\n"
    /* Ours: the return address still sits just below the saved rsp. */
    "    movq 48(%rdx), %rsp\n"
    "    subq $8, %rsp\n"
    "    ret\n"
    "1:\n"
    "    movq 48(%rdx), %rsp\n"
    "    jmpq *56(%rdx)\n"
    ".size dill_jump_regs, .-dill_jump_regs\n"
    ".popsection\n");

static inline sigjmp_buf *dill_regs_for_macro(dill_regs *r) {
    r->slots[8] = 0;
    return (sigjmp_buf *)r;
}

static inline void *dill_regs_macro_sp(dill_regs *r) {
    return (void *)r->slots[6];
}

#endif
