; call/ret — a call of an empty function (Adams & Agesen: "call/ret", the baseline that no
; VMM should slow down).
bench_callret:
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  call    empty_function
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret

empty_function:
        ret
