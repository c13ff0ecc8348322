; user.s — the ring-3 worker threads of smpkernel (all PL3: code, data, stacks).
;
; Thread t (r1 = t at entry): reads the shared window, counts LOCKED_ITERS times under the ticket
; lock and UNLOCKED_ITERS times without a lock, sums the squares of its slice of 1..SUM_N, joins
; the others at a barrier; thread 0 then has the kernel remap the window (a TLB shootdown); after
; a second barrier every thread reads the window again and exits.

        .org    USER_BASE
user_thread:
        mov     r8, r1
        shli    r10, r8, 2                      ; r10 = 4*t: this thread's slot in the arrays
        li      r1, WINDOW                      ; read the window: generation 1, now in this CPU's TLB
        ld      r2, [r1]
        li      r3, window_before
        add     r3, r3, r10
        st      [r3], r2

        li      r9, LOCKED_ITERS                ; 1. a counter under the ticket lock
.locked:
        li      r1, ticket
        li      r4, yield
        call    ticket_lock
        li      r6, locked_counter
        ld      r7, [r6]
        addi    r7, r7, 1
        call    work                            ; the read-modify-write spans a few instructions
        st      [r6], r7
        li      r1, ticket
        call    ticket_unlock
        addi    r9, r9, -1
        cmpi    r9, 0
        jnz     .locked

        li      r9, UNLOCKED_ITERS              ; 2. the same without the lock: updates get lost
.unlocked:
        li      r6, unlocked_counter
        ld      r7, [r6]
        addi    r7, r7, 1
        call    work
        st      [r6], r7
        addi    r9, r9, -1
        cmpi    r9, 0
        jnz     .unlocked

        shli    r11, r8, SUM_SLICE_SHIFT        ; 3. squares of t*128+1 .. (t+1)*128
        addi    r11, r11, 1
        li      r12, 1 << SUM_SLICE_SHIFT
        add     r12, r12, r11
        li      r13, 0
.sum:   mul     r1, r11, r11
        add     r13, r13, r1
        addi    r11, r11, 1
        cmp     r11, r12
        jnz     .sum
        li      r1, partials
        add     r1, r1, r10
        st      [r1], r13
        li      r1, barrier                     ;    joined at a barrier
        li      r2, NTHREADS
        li      r4, yield
        call    barrier_wait

        cmpi    r8, 0                           ; 4. thread 0 moves the window
        jnz     .moved
        li      r1, SYS_PUTS
        li      r2, msg_remap
        int     0x80
        li      r1, SYS_REMAP
        int     0x80
.moved: li      r1, barrier
        li      r2, NTHREADS
        li      r4, yield
        call    barrier_wait
        li      r1, WINDOW
        ld      r2, [r1]
        li      r3, window_after
        add     r3, r3, r10
        st      [r3], r2

        li      r1, SYS_EXIT                    ; 5. done
        int     0x80

; Some arithmetic inside the read-modify-write (clobbers r5 only).
work:   xor     r5, r5, r7
        addi    r5, r5, 3
        shli    r5, r5, 1
        ret

; The locks and barriers (the kernel uses them too: ring 0 may run PL3 code).
        .include "smp.s"

; The spin loops' relax routine: give the CPU to another thread of this CPU.
yield:  li      r1, SYS_YIELD
        int     0x80
        ret

        .align  4
ticket:         .word 0, 0
barrier:        .word 0, 0
locked_counter: .word 0
unlocked_counter: .word 0
partials:       .space 4 * NTHREADS
window_before:  .space 4 * NTHREADS
window_after:   .space 4 * NTHREADS
msg_remap:      .asciz "thread 0: remapping the shared window\n"
