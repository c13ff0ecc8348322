; compute.s — the compute loop: register arithmetic only (ring 0, paging off, no loads/stores).
;
; Each iteration is 7 instructions:  acc += i;  x ^= acc;  t = x << 3;  x += t;  i -= 1;
; compare;  branch.  toyvisor.tools.bench runs the same arithmetic as a plain Python `while`
; loop (one statement per instruction, the `while` test standing for cmpi + jnz) to measure the
; ceiling a Python-hosted CPU can approach, and checks that it gets the checksum printed here.
;
; Input (console): the iteration count, 1 to MAX_ITERATIONS (default DEFAULT_ITERATIONS).
; Output: "compute: <n> iterations, acc 0x........, x 0x........", then halt.
; Instructions retired: 7 per iteration plus a fixed start-up and report (deterministic).

DEFAULT_ITERATIONS = 100000
MAX_ITERATIONS  = 100000000
STACK_TOP       = 0x80000

start:
        li      sp, STACK_TOP
        li      r1, DEFAULT_ITERATIONS
        li      r2, MAX_ITERATIONS
        call    read_count
        mov     r12, r1                 ; n, for the report
        mov     r8, r1                  ; i counts down from n
        li      r9, 0                   ; acc
        li      r10, 0                  ; x
.loop:  add     r9, r9, r8
        xor     r10, r10, r9
        shli    r11, r10, 3
        add     r10, r10, r11
        addi    r8, r8, -1
        cmpi    r8, 0
        jnz     .loop
        li      r1, msg_head
        call    puts
        mov     r1, r12
        call    putdec
        li      r1, msg_acc
        call    puts
        mov     r1, r9
        call    puthex
        li      r1, msg_x
        call    puts
        mov     r1, r10
        call    puthex
        call    putnl
        cli
        hlt

        .include "../count.s"          ; with input.s and words.s
        .include "console.s"

msg_head:       .asciz  "compute: "
msg_acc:        .asciz  " iterations, acc "
msg_x:          .asciz  ", x "
