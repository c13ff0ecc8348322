; body.s — the compute loop and its report, shared by compute.s (ring 0) and pv.s (its
; paravirtual port): read the count, run the 7-instruction loop, print the checksums.
; Needs read_count (../count_parse.s) and the console routines; messages.s has its strings.

DEFAULT_ITERATIONS = 100000
MAX_ITERATIONS  = 100000000

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
