; pick_next.s — the scheduler's choice, shared by smpkernel and its paravirtual port (guests/pvsmp).

; r1 = the next thread of this CPU (r13): round-robin over its run queue from the slot after the
; current one; its idle thread when none is runnable.  clobbers r1..r7
pick_next:
        ld      r2, [r13 + PC_NTHREADS]
        ld      r3, [r13 + PC_SLOT]
        li      r4, 0
.next:  cmp     r4, r2
        jz      .idle
        addi    r4, r4, 1
        add     r5, r3, r4
        remu    r5, r5, r2                              ; slot
        shli    r6, r5, 2
        add     r6, r6, r13
        ld      r1, [r6 + PC_RUNQ]                      ; thread
        shli    r6, r1, TCB_SHIFT
        li      r7, TCBS
        add     r6, r6, r7
        ld      r6, [r6 + TCB_STATE]
        cmpi    r6, RUNNABLE
        jnz     .next
        st      [r13 + PC_SLOT], r5
        ret
.idle:  rdpid   r1
        addi    r1, r1, IDLE_TCB
        ret
