; writes.s — the workload and its report, shared by dirty.s and its paravirtual port pv_dirty.s:
; included in `start` once paging is on and the parameters are read (r10 = spin iterations per
; write, r11 = hot pages, r12 = writes).
;
; Uses the macros each kernel defines before including this file:
;   WRITE_VIA     r1 = hot page r9's address: r1 = the address to write it through (clobbers r2..r6)
;   POWER_OFF     stop (does not return)

        ; the writes: r8 = k, r9 = page index, r13 = writes left
        li      r8, 0
        li      r9, 0
        mov     r13, r12
        li      r7, HOT_PA
.write: shli    r1, r9, 12
        add     r1, r1, r7
        WRITE_VIA
        andi    r2, r8, 1023
        shli    r2, r2, 2
        add     r1, r1, r2
        st      [r1], r8
        addi    r8, r8, 1
        addi    r9, r9, 1
        cmp     r9, r11
        jb      .same
        li      r9, 0
.same:  mov     r5, r10
.spin:  addi    r5, r5, -1
        cmpi    r5, 0
        jnz     .spin
        addi    r13, r13, -1
        cmpi    r13, 0
        jnz     .write
        ; the report
        li      r1, msg_head
        call    puts
        mov     r1, r12
        call    putdec
        li      r1, msg_over
        call    puts
        mov     r1, r11
        call    putdec
        li      r1, msg_sum
        call    puts
        li      r1, HOT_PA              ; checksum of the hot region
        shli    r2, r11, 12
        add     r2, r2, r1
        li      r3, 0
.sum:   ld      r4, [r1]
        add     r3, r3, r4
        addi    r1, r1, CHECK_STRIDE
        cmp     r1, r2
        jb      .sum
        mov     r1, r3
        call    puthex
        call    putnl
        POWER_OFF
