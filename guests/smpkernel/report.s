; report.s — smpkernel's end-of-run report, shared with its paravirtual port (guests/pvsmp):
; the same answers from the same data.  The including kernel defines the data (locked_counter,
; unlocked_counter, partials, window_before/after in user.s; resched_ipis, shootdowns) and the
; msg_* strings, and the console routines (console.s or pv_console.s).
;
;   report()               print the results (CPU 0, after the last thread exited)
;   count_generations(r1)  "N at generation 1, M at generation 2" for NTHREADS words at r1

report:
        li      r1, msg_locked
        call    puts
        li      r1, locked_counter
        ld      r1, [r1]
        call    putdec
        li      r1, msg_expected
        call    puts
        li      r1, NTHREADS * LOCKED_ITERS
        call    putdec
        li      r1, msg_close
        call    puts
        li      r1, msg_unlocked
        call    puts
        li      r1, unlocked_counter
        ld      r1, [r1]
        mov     r8, r1
        call    putdec
        li      r1, msg_lost
        call    puts
        li      r1, NTHREADS * UNLOCKED_ITERS
        sub     r1, r1, r8
        call    putdec
        li      r1, msg_lost_end
        call    puts
        li      r1, msg_sum                             ; the threads' partial sums...
        call    puts
        li      r8, 0
        li      r9, 0
        li      r10, partials
.sum:   cmpi    r9, NTHREADS
        jz      .summed
        shli    r1, r9, 2
        add     r1, r1, r10
        ld      r1, [r1]
        add     r8, r8, r1
        addi    r9, r9, 1
        jmp     .sum
.summed:
        mov     r1, r8
        call    putdec
        li      r1, msg_expected
        call    puts
        li      r9, 0                                   ; ...and the sum done sequentially
        li      r10, 1
.seq:   mul     r1, r10, r10
        add     r9, r9, r1
        addi    r10, r10, 1
        li      r1, SUM_N
        cmp     r10, r1
        jbe     .seq
        mov     r1, r9
        call    putdec
        li      r1, msg_close
        call    puts
        li      r1, msg_window                          ; what the threads read in the window
        call    puts
        li      r1, window_before
        call    count_generations
        li      r1, msg_window_after
        call    puts
        li      r1, window_after
        call    count_generations
        call    putnl
        li      r1, msg_ipis
        call    puts
        li      r1, resched_ipis
        ld      r1, [r1]
        call    putdec
        li      r1, msg_shootdowns
        call    puts
        li      r1, shootdowns
        ld      r1, [r1]
        call    putdec
        li      r1, msg_done
        call    puts
        ret

; Print "N at generation 1, M at generation 2" for the NTHREADS words at r1.  clobbers r1..r7
count_generations:
        li      r6, 0                                   ; generation 1
        li      r7, 0                                   ; generation 2
        li      r2, 0
.loop:  cmpi    r2, NTHREADS
        jz      .print
        shli    r3, r2, 2
        add     r3, r3, r1
        ld      r3, [r3]
        cmpi    r3, 1
        jnz     .two
        addi    r6, r6, 1
        jmp     .count
.two:   addi    r7, r7, 1
.count: addi    r2, r2, 1
        jmp     .loop
.print: mov     r1, r6
        push    r7
        call    putdec
        li      r1, msg_gen1
        call    puts
        pop     r1
        call    putdec
        li      r1, msg_gen2
        call    puts
        ret
