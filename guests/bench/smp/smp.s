; smp.s — the multiprocessor compute loop: the iterations of the compute loop (compute/compute.s)
; split across every CPU of the machine.
;
; CPU 0 reads the iteration count n, gives CPU c the numbers i in its share of n..1 (CPU 0 also
; takes the remainder) and starts the others with start IPIs; each CPU runs the compute loop's
; 7 instructions per iteration over its share, adds its acc to a shared total with xadd, counts
; itself done and halts; CPU 0 waits for all (pause) and prints the total, the sum of n..1
; (mod 2^32), whatever the number of CPUs.
;
; Input (console): the iteration count, 1 to MAX_ITERATIONS (default DEFAULT_ITERATIONS).
; Output: "smp: <cpus> cpus, <n> iterations, acc 0x........", then halt.

DEFAULT_ITERATIONS = 100000
MAX_ITERATIONS  = 100000000
STACK_TOP       = 0x80000

start:
        li      sp, STACK_TOP
        li      r1, DEFAULT_ITERATIONS
        li      r2, MAX_ITERATIONS
        call    read_count
        li      r2, total_n
        st      [r2], r1
        in      r3, PORT_CPU_COUNT
        li      r2, ncpus
        st      [r2], r3
        li      r8, 1
.start: cmp     r8, r3
        jae     work
        out     PORT_IPI_DEST, r8
        li      r1, work
        out     PORT_CPU_START, r1
        addi    r8, r8, 1
        jmp     .start

; Every CPU counts i down from hi to lo+1: CPU 0 takes (0, share + rest], CPU c > 0 takes
; (rest + c*share, rest + (c+1)*share], where share = n / cpus and rest = n - cpus*share.
work:   li      r1, total_n
        ld      r1, [r1]
        li      r2, ncpus
        ld      r2, [r2]
        divu    r3, r1, r2              ; share
        mul     r6, r3, r2
        sub     r6, r1, r6              ; rest
        rdpid   r4
        li      r5, 0                   ; lo
        add     r8, r3, r6              ; hi
        cmpi    r4, 0
        jz      .range
        mul     r5, r3, r4
        add     r5, r5, r6
        add     r8, r5, r3
.range: li      r9, 0                   ; acc
        li      r10, 0                  ; x
        sub     r12, r8, r5             ; iterations of this CPU
        cmpi    r12, 0
        jz      .done
.loop:  add     r9, r9, r8
        xor     r10, r10, r9
        shli    r11, r10, 3
        add     r10, r10, r11
        addi    r8, r8, -1
        cmp     r8, r5
        jnz     .loop
.done:  li      r1, total_acc
        xadd    r9, [r1]
        li      r1, done
        li      r2, 1
        xadd    r2, [r1]
        rdpid   r4
        cmpi    r4, 0
        jz      .report
        cli
        hlt
.report:
        li      r1, done
        li      r2, ncpus
        ld      r2, [r2]
.wait:  ld      r3, [r1]
        cmp     r3, r2
        jz      .print
        pause
        jmp     .wait
.print: mov     r8, r2
        li      r1, msg_head
        call    puts
        mov     r1, r8
        call    putdec
        li      r1, msg_cpus
        call    puts
        li      r1, total_n
        ld      r1, [r1]
        call    putdec
        li      r1, msg_acc
        call    puts
        li      r1, total_acc
        ld      r1, [r1]
        call    puthex
        call    putnl
        cli
        hlt

        .include "../count.s"          ; with input.s and words.s
        .include "console.s"

msg_head:       .asciz  "smp: "
msg_cpus:       .asciz  " cpus, "
msg_acc:        .asciz  " iterations, acc "
        .align  4096                    ; the shared words on a page of their own (no code)
total_n:        .word   0
ncpus:          .word   0
total_acc:      .word   0
done:           .word   0
