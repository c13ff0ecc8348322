; touch.s — touch_pages(): after the switch to the new address space, write a tag to every one
; of the param_n mapped pages (USER_BASE + i*4 KiB), then read them all back and count those
; that still hold their own tag (a wrong or aliased mapping shows up as a smaller count) into
; res_touched. Memory only (shared by ptbench.s and pv.s). Clobbers r1..r7.
;
; tag(i) = i * TAG_MUL + TAG_ADD, at offset (i * 4) mod 4096 of page i.

TAG_MUL         = 0x9E3779B1
TAG_ADD         = 0x7F4A7C15

touch_pages:
        li      r1, param_n
        ld      r7, [r1]                ; N
        li      r2, TAG_MUL
        li      r3, 0                   ; i
        li      r4, USER_BASE           ; page i
.write: cmp     r3, r7
        jae     .read
        mul     r5, r3, r2
        li      r6, TAG_ADD
        add     r5, r5, r6
        shli    r6, r3, 2
        andi    r6, r6, 0xFFC
        add     r6, r6, r4
        st      [r6], r5
        addi    r3, r3, 1
        li      r6, PAGE_SIZE
        add     r4, r4, r6
        jmp     .write
.read:  li      r1, 0                   ; matches
        li      r3, 0
        li      r4, USER_BASE
.check: cmp     r3, r7
        jae     .done
        mul     r5, r3, r2
        li      r6, TAG_ADD
        add     r5, r5, r6
        shli    r6, r3, 2
        andi    r6, r6, 0xFFC
        add     r6, r6, r4
        ld      r6, [r6]
        cmp     r6, r5
        jnz     .next
        addi    r1, r1, 1
.next:  addi    r3, r3, 1
        li      r6, PAGE_SIZE
        add     r4, r4, r6
        jmp     .check
.done:  li      r2, res_touched
        st      [r2], r1
        ret
