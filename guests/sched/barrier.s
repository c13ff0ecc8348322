; barrier.s — fine-grained synchronization: every iteration each vCPU does one round of work on
; its private data and meets the VM's other vCPUs at a spinning barrier; `work` iterations.

BAR = SHARED

start:  jmp     main

        .include "sched.s"

main:   SCHED_START
        li      r4, PARAMS
        ld      r9, [r4 + P_WORK]
        ld      r10, [r4 + P_VCPUS]
.iter:  cmpi    r9, 0
        jz      .done
        li      r1, 1
        call    work
        li      r1, BAR
        mov     r2, r10
        call    barrier
        addi    r9, r9, -1
        jmp     .iter
.done:  cli
        hlt
