; cr8wr — a privileged control-register write in ring 0 (Adams & Agesen: "cr8wr", a write of
; the x86-64 task-priority register cr8). Here: ksp1, which nothing uses (harmless).
bench_cr8wr:
        li      r1, 0
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  mtcr    ksp1, r1
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret
