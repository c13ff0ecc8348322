; params.s — the console input "PERIOD HOT WRITES", read alike by dirty.s and its paravirtual port
; pv_dirty.s.
;
; Uses the macros each kernel defines before including this file:
;   READ_INPUT    r1 = input, r2 = INPUT_MAX: r1 = the bytes read into `input` (too many goes to
;                 params_bad); clobbers r2..r5
;   POWER_OFF     stop (does not return)

; read_params: r10 = spin iterations per write, r11 = hot pages, r12 = writes.  Bad input prints
; one "dirty: ..." line and stops.  Clobbers r1..r9.
read_params:
        li      r1, input
        li      r2, INPUT_MAX
        READ_INPUT
        li      r8, input
        add     r9, r8, r1
        call    next_number             ; PERIOD
        cmpi    r1, MIN_PERIOD
        jb      params_bad
        addi    r1, r1, -LOOP_COST
        li      r2, 3                   ; 3 instructions per spin iteration
        divu    r10, r1, r2
        cmpi    r10, 0
        jnz     .hot
        li      r10, 1
.hot:   call    next_number             ; HOT
        li      r2, MAX_HOT
        cmp     r1, r2
        ja      params_bad
        mov     r11, r1
        call    next_number             ; WRITES
        mov     r12, r1
        call    skip_blanks
        cmp     r8, r9
        jb      params_bad
        ret

params_bad:
        li      r1, msg_bad
        call    puts
        POWER_OFF

; next_number: the next word of the input as a decimal number from 1 to 10^9 (0 if it is not one).
next_number:
        call    skip_blanks
        li      r3, word
        call    take_word
        li      r1, word
        li      r2, 1000000000
        call    parse_dec
        cmpi    r1, 0
        jz      params_bad
        ret
