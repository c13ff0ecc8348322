; switch.s — the thread switch, shared by smpkernel and its paravirtual port (guests/pvsmp).
;
; Uses the macro each kernel defines before including this file:
;   SET_KSTACK    r2 = the next thread's TCB: make its kernel stack the one the next entry from
;                 ring 3 lands on; clobbers r1, r3
; and falls through to the including kernel's `resume` (placed right after the include), which
; pops the registers its trap entry saved.

; Switch from the current thread to thread r1 (its saved sp and kernel stack), then resume it.
switch:
        ld      r2, [r13 + PC_CURRENT]
        cmp     r2, r1
        jz      resume
        shli    r2, r2, TCB_SHIFT
        li      r3, TCBS
        add     r2, r2, r3
        st      [r2 + TCB_KSP], sp
        st      [r13 + PC_CURRENT], r1
        li      r2, switches
        li      r3, 1
        xadd    r3, [r2]
        shli    r2, r1, TCB_SHIFT
        li      r3, TCBS
        add     r2, r2, r3
        ld      sp, [r2 + TCB_KSP]
        SET_KSTACK
