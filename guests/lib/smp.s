; smp.s — locks and barriers for the toyvisor multiprocessor (docs/multiprocessor.md), usable
; in any ring: they use only `xchg`, `xadd`, loads, stores and `pause`.
;
; Convention (see console.s): args r1..r4, result r1; r0 and r8..r14 preserved.
; Every spin loop runs `pause` on each iteration and, if r4 is not 0, calls the routine at r4
; every SPIN_RELAX iterations (a ring-3 thread passes a routine that yields its CPU, so that a
; lock holder or a late barrier arrival on the same CPU gets to run; pass 0 to just spin).
;
;   spin_lock(r1 = lock word, r4 = relax)      test-and-set lock (xchg); 0 = free.  clobbers: r2, r3
;   spin_unlock(r1 = lock word)                                                  clobbers: r2
;   ticket_lock(r1 = ticket lock, r4 = relax)  FIFO lock: two words, +0 next ticket, +4 now
;                                              serving (both 0 initially).         clobbers: r2, r3, r5
;   ticket_unlock(r1 = ticket lock)                                               clobbers: r2
;   barrier_wait(r1 = barrier, r2 = parties, r4 = relax)
;                                              two words, +0 arrived, +4 generation (both 0
;                                              initially); returns when `parties` callers of
;                                              this generation have arrived; reusable.
;                                                                                 clobbers: r2, r3, r5, r6
;   atomic_add(r1 = word, r2 = delta)          r1 = the old value (fetch-and-add). clobbers: nothing else

        SPIN_RELAX = 16

spin_lock:
        li      r3, 0                   ; spins since the last relax
.try:   li      r2, 1
        xchg    r2, [r1]
        cmpi    r2, 0
        jz      .done
.wait:  pause
        call    smp_relax_tick
        ld      r2, [r1]                ; spin on a plain load (test-and-test-and-set)
        cmpi    r2, 0
        jnz     .wait
        jmp     .try
.done:  ret

spin_unlock:
        li      r2, 0
        st      [r1], r2
        ret

ticket_lock:
        li      r5, 1
        xadd    r5, [r1]                ; r5 = my ticket
        li      r3, 0
.wait:  ld      r2, [r1 + 4]
        cmp     r2, r5
        jz      .done
        pause
        call    smp_relax_tick
        jmp     .wait
.done:  ret

ticket_unlock:
        ld      r2, [r1 + 4]            ; only the holder writes "now serving"
        addi    r2, r2, 1
        st      [r1 + 4], r2
        ret

barrier_wait:
        ld      r6, [r1 + 4]            ; the generation this call belongs to
        li      r5, 1
        xadd    r5, [r1]                ; arrivals before me
        addi    r5, r5, 1
        cmp     r5, r2
        jnz     .wait
        li      r5, 0                   ; the last one: reset, then open the next generation
        st      [r1], r5
        addi    r6, r6, 1
        st      [r1 + 4], r6
        ret
.wait:  li      r3, 0
.spin:  ld      r5, [r1 + 4]
        cmp     r5, r6
        jnz     .done
        pause
        call    smp_relax_tick
        jmp     .spin
.done:  ret

atomic_add:
        xadd    r2, [r1]
        mov     r1, r2
        ret

; smp_relax_tick(r3 = spin count, r4 = relax): count a spin; every SPIN_RELAX spins call r4
; (if not 0) with r1..r7 saved.  Internal to the routines above.
smp_relax_tick:
        addi    r3, r3, 1
        cmpi    r3, SPIN_RELAX
        jb      .done
        li      r3, 0
        cmpi    r4, 0
        jz      .done
        push    r1
        push    r2
        push    r3
        push    r4
        push    r5
        push    r6
        push    r7
        callr   r4
        pop     r7
        pop     r6
        pop     r5
        pop     r4
        pop     r3
        pop     r2
        pop     r1
.done:  ret
