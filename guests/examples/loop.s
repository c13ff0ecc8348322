; loop.s — a counting loop with calls, compares and conditional branches.
;
; Shows: only cmp/cmpi/tst set the flags, so a loop is  addi … / cmpi … / jl …;
; the result of `call` comes back in r1 and the library routines keep r8..r14, so the loop
; counter lives in r8 across calls. Prints "count N, square N*N" for N = 1..10, then the
; sum, then halts.
;
; Run:  toyvisor run guests/examples/loop.s

LIMIT = 10

start:
        li      sp, 0x8000
        li      r8, 1                   ; counter
        li      r9, 0                   ; running sum of the squares
.loop:  li      r1, msg_count
        call    puts
        mov     r1, r8
        call    putdec
        li      r1, msg_square
        call    puts
        mul     r10, r8, r8
        add     r9, r9, r10
        mov     r1, r10
        call    putdec
        call    putnl
        addi    r8, r8, 1
        cmpi    r8, LIMIT
        jle     .loop
        li      r1, msg_sum
        call    puts
        mov     r1, r9
        call    putdec                  ; 385
        call    putnl
        cli
        hlt

        .include "console.s"

msg_count:      .asciz  "count "
msg_square:     .asciz  ", square "
msg_sum:        .asciz  "sum of the squares: "
