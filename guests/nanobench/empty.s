; empty — the bare loop (addi / cmpi / jnz), for subtracting the loop overhead from the others.
bench_empty:
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret
