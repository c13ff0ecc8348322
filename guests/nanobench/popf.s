; popf — the POPF/PUSHF test (not an Adams & Agesen nanobenchmark: it is their example of why
; x86 is not classically virtualizable). In ring 0: cli, push a flags value with IF = 1, popf,
; pushf. Natively IF is then 1. A trap-and-emulate VMM that runs the kernel deprivileged would
; have popf silently keep IF = 0 (no trap), which is why the observed value is returned.
; Returns r1 = ticks, r2 = IF as seen by the last pushf (0 or 1).
; (IF is 1 for a few instructions of each iteration; no interrupt source is enabled.)
bench_popf:
        li      r3, FLAG_IF
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  cli
        push    r3
        popf                            ; IF := 1 (in ring 0)
        pushf
        pop     r1                      ; the flags as the CPU now has them
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        cli
        andi    r2, r1, FLAG_IF
        shri    r2, r2, 9               ; FLAG_IF is bit 9
        sub     r1, r9, r8
        ret
