; regs.s — saving and restoring the registers r2..r14 on the stack, for the trap and switch
; paths of the kernels (the registers below r2 differ per kernel: the vector, the saved r1).
; PUSH_R2_R14 pushes r2 first, so r14 ends lowest; POP_R14_R2 undoes it.  Included by a kernel
; and by a library it includes, hence `.once`.

        .once

        .macro PUSH_R2_R14
        push    r2
        push    r3
        push    r4
        push    r5
        push    r6
        push    r7
        push    r8
        push    r9
        push    r10
        push    r11
        push    r12
        push    r13
        push    r14
        .endm

        .macro POP_R14_R2
        pop     r14
        pop     r13
        pop     r12
        pop     r11
        pop     r10
        pop     r9
        pop     r8
        pop     r7
        pop     r6
        pop     r5
        pop     r4
        pop     r3
        pop     r2
        .endm
