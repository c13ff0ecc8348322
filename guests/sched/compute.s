; compute.s — an independent CPU-bound thread per vCPU: `work` rounds over its private data,
; then it halts.  Used by tanenbaum.toml (the seed's gangs) and independent.toml.

start:  jmp     main

        .include "sched.s"

main:   SCHED_START
        li      r4, PARAMS
        ld      r1, [r4 + P_WORK]
        call    work
        cli
        hlt
