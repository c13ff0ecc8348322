; cpl — `rdcs` in the kernel (not an Adams & Agesen nanobenchmark: the ring-aliasing leak).
; Natively the kernel reads CPL 0; a VMM that runs the kernel in ring 1 or 3 cannot hide its
; ring from rdcs, which does not trap. Returns r1 = ticks, r2 = the CPL the last rdcs saw.
bench_cpl:
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  rdcs    r2
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        andi    r2, r2, 3
        sub     r1, r9, r8
        ret
