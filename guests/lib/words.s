; words.s — splitting a line of text into words and reading decimal numbers.
;
; Used by guests that take parameters as console input (nanobench, ptbench). Library calling
; convention (guests/README.md): arguments in r1..r4, result in r1.

; skip_blanks(r8 = cursor, r9 = end): advance r8 past spaces, tabs, CRs and LFs.
; Clobbers r1, r2.
skip_blanks:
.loop:  cmp     r8, r9
        jae     .done
        ldb     r1, [r8]
        call    is_blank
        cmpi    r2, 0
        jz      .done
        addi    r8, r8, 1
        jmp     .loop
.done:  ret

; take_word(r8 = cursor, r9 = end, r3 = destination): copy the bytes up to the next blank (or the
; end) to the destination, NUL-terminated, and advance r8 past them. The caller makes the
; destination large enough (the whole input fits). Clobbers r1..r3.
take_word:
.loop:  cmp     r8, r9
        jae     .done
        ldb     r1, [r8]
        call    is_blank
        cmpi    r2, 0
        jnz     .done
        stb     [r3], r1
        addi    r3, r3, 1
        addi    r8, r8, 1
        jmp     .loop
.done:  li      r1, 0
        stb     [r3], r1
        ret

; is_blank(r1 = byte): r2 = 1 for space, tab, CR or LF, else 0.
is_blank:
        li      r2, 1
        cmpi    r1, ' '
        jz      .yes
        cmpi    r1, '\t'
        jz      .yes
        cmpi    r1, '\r'
        jz      .yes
        cmpi    r1, '\n'
        jz      .yes
        li      r2, 0
.yes:   ret

; parse_dec(r1 = NUL-terminated string, r2 = maximum): r1 = its value if it is a decimal number
; from 1 to the maximum (leading zeros allowed), else 0. Clobbers r1..r4.
parse_dec:
        push    r5
        mov     r5, r2
        mov     r2, r1
        li      r1, 0
        ldb     r3, [r2]
        cmpi    r3, 0
        jz      .bad                    ; empty
.loop:  ldb     r3, [r2]
        cmpi    r3, 0
        jz      .end
        addi    r3, r3, -'0'
        cmpi    r3, 9
        ja      .bad                    ; not a digit (unsigned: below '0' wraps around)
        li      r4, 10
        mul     r1, r1, r4
        add     r1, r1, r3
        cmp     r1, r5
        ja      .bad
        addi    r2, r2, 1
        jmp     .loop
.end:   pop     r5
        ret                             ; "0" gives 0: not a valid number either
.bad:   li      r1, 0
        pop     r5
        ret

; streq(r1, r2 = NUL-terminated strings): r1 = 1 if equal, else 0. Clobbers r1..r4.
streq:
.loop:  ldb     r3, [r1]
        ldb     r4, [r2]
        cmp     r3, r4
        jnz     .no
        cmpi    r3, 0
        jz      .yes
        addi    r1, r1, 1
        addi    r2, r2, 1
        jmp     .loop
.yes:   li      r1, 1
        ret
.no:    li      r1, 0
        ret
