; locks.s — lock-heavy: `work` times each vCPU takes the VM's one spinlock, runs a critical
; section of CS_ROUNDS rounds of work on the shared counter's page (long enough to be preempted
; inside), releases it and works OUT_ROUNDS rounds outside.

LOCK = SHARED
COUNTER = SHARED + 4
CS_ROUNDS = 4
OUT_ROUNDS = 1

start:  jmp     main

        .include "sched.s"

main:   SCHED_START
        li      r4, PARAMS
        ld      r9, [r4 + P_WORK]
.iter:  cmpi    r9, 0
        jz      .done
        li      r1, LOCK
        call    spin_lock
        li      r1, CS_ROUNDS
        call    work
        li      r4, COUNTER
        ld      r5, [r4]
        addi    r5, r5, 1
        st      [r4], r5
        li      r1, LOCK
        call    spin_unlock
        li      r1, OUT_ROUNDS
        call    work
        addi    r9, r9, -1
        jmp     .iter
.done:  cli
        hlt
