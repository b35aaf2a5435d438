/*
 * switch_aarch64.h: dill_switch_regs and dill_jump_regs for aarch64 (see
 * switch_native.h). AAPCS64 makes x19-x28, the frame pointer x29, the link
 * register x30, sp and the low halves of v8-v15 (d8-d15) callee-saved;
 * those 21 registers are all that a switch from C code has to keep. Slots,
 * from byte 8 of dill_regs: x19-x28, x29, x30, sp, d8-d15.
 */
#ifndef DILL_SWITCH_AARCH64_H_INCLUDED
#define DILL_SWITCH_AARCH64_H_INCLUDED

_Static_assert(DILL_NATIVE_SLOTS == 21, "slots of switch_aarch64.h");

__asm__(
    ".pushsection .text\n"
    ".p2align 4\n"
    ".globl dill_switch_regs\n"
    ".hidden dill_switch_regs\n"
    ".type dill_switch_regs, %function\n"
    "dill_switch_regs:\n"
    "    stp x19, x20, [x0, #8]\n"
    "    stp x21, x22, [x0, #24]\n"
    "    stp x23, x24, [x0, #40]\n"
    "    stp x25, x26, [x0, #56]\n"
    "    stp x27, x28, [x0, #72]\n"
    "    stp x29, x30, [x0, #88]\n"
    "    mov x9, sp\n"
    "    str x9, [x0, #104]\n"
    "    stp d8, d9, [x0, #112]\n"
    "    stp d10, d11, [x0, #128]\n"
    "    stp d12, d13, [x0, #144]\n"
    "    stp d14, d15, [x0, #160]\n"
    "    mov x9, #1\n"
    "    str x9, [x0]\n"
    "    mov x0, x1\n"
    /* Falls through into dill_jump_regs. */
    ".size dill_switch_regs, .-dill_switch_regs\n"
    ".globl dill_jump_regs\n"
    ".hidden dill_jump_regs\n"
    ".type dill_jump_regs, %function\n"
    "dill_jump_regs:\n"
    "    ldr x9, [x0]\n"
    "    cbz x9, 1f\n"
    "    ldp x19, x20, [x0, #8]\n"
    "    ldp x21, x22, [x0, #24]\n"
    "    ldp x23, x24, [x0, #40]\n"
    "    ldp x25, x26, [x0, #56]\n"
    "    ldp x27, x28, [x0, #72]\n"
    "    ldp x29, x30, [x0, #88]\n"
    "    ldr x9, [x0, #104]\n"
    "    mov sp, x9\n"
    "    ldp d8, d9, [x0, #112]\n"
    "    ldp d10, d11, [x0, #128]\n"
    "    ldp d12, d13, [x0, #144]\n"
    "    ldp d14, d15, [x0, #160]\n"
    "    ret\n"
    /* Saved by go(): its sigjmp_buf starts at byte 8. */
    "1:\n"
    "    add x0, x0, #8\n"
    "    mov w1, #1\n"
    "    b siglongjmp\n"
    ".size dill_jump_regs, .-dill_jump_regs\n"
    ".popsection\n");

#endif
