; console.s — console output for ring-0 code (uses the privileged `out` to PORT_CONSOLE_DATA).
;
; Calling convention for every guests/lib routine:
;   arguments in r1..r4, result (if any) in r1, return address on the stack (`call`/`ret`),
;   sp = r15 must point at a usable stack. A routine clobbers only the registers listed for it;
;   r0 and r8..r14 are always preserved.
;
; Routines here:
;   putc(r1 = byte)                 print one byte.                          clobbers: nothing
;   puts(r1 = string)               print a NUL-terminated string.           clobbers: r1, r2
;   putsn(r1 = buf, r2 = len)       print len bytes from buf.                clobbers: r1, r3, r4
;   puthex(r1 = value)              print "0x" and 8 lowercase hex digits.   clobbers: r1, r2, r3
;   putdec(r1 = value)              print value as unsigned decimal.         clobbers: r1..r5
;   putdec_s(r1 = value)            print value as signed decimal.           clobbers: r1..r5
;   putnl()                         print "\n".                               clobbers: r1
;
; Only ring 0 may use these (`out` is privileged); ring-3 code must go through a syscall.

putc:
        out     PORT_CONSOLE_DATA, r1
        ret

putnl:
        li      r1, '\n'
        out     PORT_CONSOLE_DATA, r1
        ret

puts:
        mov     r2, r1
.loop:  ldb     r1, [r2]
        cmpi    r1, 0
        jz      .done
        out     PORT_CONSOLE_DATA, r1
        addi    r2, r2, 1
        jmp     .loop
.done:  ret

putsn:
        mov     r3, r1
        add     r4, r1, r2              ; r4 = end
.loop:  cmp     r3, r4
        jae     .done
        ldb     r1, [r3]
        out     PORT_CONSOLE_DATA, r1
        addi    r3, r3, 1
        jmp     .loop
.done:  ret

puthex:
        mov     r2, r1
        li      r1, '0'
        out     PORT_CONSOLE_DATA, r1
        li      r1, 'x'
        out     PORT_CONSOLE_DATA, r1
        li      r3, 28                  ; shift of the most significant nibble
.loop:  shr     r1, r2, r3
        andi    r1, r1, 0xF
        cmpi    r1, 10
        jb      .digit
        addi    r1, r1, 'a' - 10
        jmp     .emit
.digit: addi    r1, r1, '0'
.emit:  out     PORT_CONSOLE_DATA, r1
        addi    r3, r3, -4
        cmpi    r3, 0
        jge     .loop
        ret

putdec:
        mov     r2, r1
        li      r4, 10
        li      r5, 0                   ; number of digits pushed
.div:   remu    r3, r2, r4
        divu    r2, r2, r4
        addi    r3, r3, '0'
        push    r3
        addi    r5, r5, 1
        cmpi    r2, 0
        jnz     .div
.emit:  pop     r1
        out     PORT_CONSOLE_DATA, r1
        addi    r5, r5, -1
        cmpi    r5, 0
        jnz     .emit
        ret

putdec_s:
        cmpi    r1, 0
        jge     putdec
        mov     r2, r1
        li      r1, '-'
        out     PORT_CONSOLE_DATA, r1
        neg     r1, r2
        jmp     putdec
