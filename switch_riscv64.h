/*
 * switch_riscv64.h: dill_switch_regs and dill_jump_regs for riscv64 (see
 * switch_native.h). The RISC-V psABI makes s0-s11, ra, sp and, with a
 * double-precision FPU (lp64d), fs0-fs11 callee-saved; those are all that
 * a switch from C code has to keep. Slots, from byte 8 of dill_regs:
 * s0-s11, ra, sp, fs0-fs11 (left unused without an FPU).
 */
#ifndef DILL_SWITCH_RISCV64_H_INCLUDED
#define DILL_SWITCH_RISCV64_H_INCLUDED

_Static_assert(DILL_NATIVE_SLOTS == 26, "slots of switch_riscv64.h");

#if defined __riscv_flen
#define DILL_RISCV_FSAVE_ \
    "    fsd fs0, 120(a0)\n" \
    "    fsd fs1, 128(a0)\n" \
    "    fsd fs2, 136(a0)\n" \
    "    fsd fs3, 144(a0)\n" \
    "    fsd fs4, 152(a0)\n" \
    "    fsd fs5, 160(a0)\n" \
    "    fsd fs6, 168(a0)\n" \
    "    fsd fs7, 176(a0)\n" \
    "    fsd fs8, 184(a0)\n" \
    "    fsd fs9, 192(a0)\n" \
    "    fsd fs10, 200(a0)\n" \
    "    fsd fs11, 208(a0)\n"
#define DILL_RISCV_FLOAD_ \
    "    fld fs0, 120(a0)\n" \
    "    fld fs1, 128(a0)\n" \
    "    fld fs2, 136(a0)\n" \
    "    fld fs3, 144(a0)\n" \
    "    fld fs4, 152(a0)\n" \
    "    fld fs5, 160(a0)\n" \
    "    fld fs6, 168(a0)\n" \
    "    fld fs7, 176(a0)\n" \
    "    fld fs8, 184(a0)\n" \
    "    fld fs9, 192(a0)\n" \
    "    fld fs10, 200(a0)\n" \
    "    fld fs11, 208(a0)\n"
#else
#define DILL_RISCV_FSAVE_
#define DILL_RISCV_FLOAD_
#endif

__asm__(
    ".pushsection .text\n"
    ".p2align 2\n"
    ".globl dill_switch_regs\n"
    ".hidden dill_switch_regs\n"
    ".type dill_switch_regs, @function\n"
    "dill_switch_regs:\n"
    "    sd s0, 8(a0)\n"
    "    sd s1, 16(a0)\n"
    "    sd s2, 24(a0)\n"
    "    sd s3, 32(a0)\n"
    "    sd s4, 40(a0)\n"
    "    sd s5, 48(a0)\n"
    "    sd s6, 56(a0)\n"
    "    sd s7, 64(a0)\n"
    "    sd s8, 72(a0)\n"
    "    sd s9, 80(a0)\n"
    "    sd s10, 88(a0)\n"
    "    sd s11, 96(a0)\n"
    "    sd ra, 104(a0)\n"
    "    sd sp, 112(a0)\n"
    DILL_RISCV_FSAVE_
    "    li t0, 1\n"
    "    sd t0, 0(a0)\n"
    "    mv a0, a1\n"
    /* Falls through into dill_jump_regs. */
    ".size dill_switch_regs, .-dill_switch_regs\n"
    ".globl dill_jump_regs\n"
    ".hidden dill_jump_regs\n"
    ".type dill_jump_regs, @function\n"
    "dill_jump_regs:\n"
    "    ld t0, 0(a0)\n"
    "    beqz t0, 1f\n"
    "    ld s0, 8(a0)\n"
    "    ld s1, 16(a0)\n"
    "    ld s2, 24(a0)\n"
    "    ld s3, 32(a0)\n"
    "    ld s4, 40(a0)\n"
    "    ld s5, 48(a0)\n"
    "    ld s6, 56(a0)\n"
    "    ld s7, 64(a0)\n"
    "    ld s8, 72(a0)\n"
    "    ld s9, 80(a0)\n"
    "    ld s10, 88(a0)\n"
    "    ld s11, 96(a0)\n"
    "    ld ra, 104(a0)\n"
    "    ld sp, 112(a0)\n"
    DILL_RISCV_FLOAD_
    "    ret\n"
    /* Saved by go(): its sigjmp_buf starts at byte 8. */
    "1:\n"
    "    addi a0, a0, 8\n"
    "    li a1, 1\n"
    "    tail siglongjmp\n"
    ".size dill_jump_regs, .-dill_jump_regs\n"
    ".popsection\n");

#endif
