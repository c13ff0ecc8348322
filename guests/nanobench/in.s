; in — a ring-0 `in` from a device port (Adams & Agesen: "in", an I/O port read).
bench_in:
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  in      r1, PORT_CONSOLE_STATUS
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret
