; divzero — `div` by zero; the #DE handler skips the faulting instruction (Adams & Agesen:
; "divzero", a faulting instruction whose handler returns past it).
bench_divzero:
        li      r11, 0
        li      r1, 1
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  div     r2, r1, r11             ; -> #DE, resumed after this instruction
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret

; #DE: the saved pc is the faulting div (one word); step over it.
de_handler:
        push    r1
        ld      r1, [sp + 8]            ; frame above our push: error code, pc, cs, flags, sp
        addi    r1, r1, 4
        st      [sp + 8], r1
        pop     r1
        iret
