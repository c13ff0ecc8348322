; pv_console.s — console output for a paravirtualized ring-1 kernel: the same routines, names,
; arguments and clobber lists as console.s, but each prints with ONE `console_io` hypercall
; (docs/paravirtual-abi.md) instead of `out` to PORT_CONSOLE_DATA, which is privileged in ring 1.
; A paravirtual kernel includes this file (and pv.s) where a native one includes console.s.
;
;   putc(r1 = byte)                 print one byte.                          clobbers: nothing
;   puts(r1 = string)               print a NUL-terminated string.           clobbers: r1, r2
;   putsn(r1 = buf, r2 = len)       print len bytes from buf.                clobbers: r1, r3, r4
;   puthex(r1 = value)              print "0x" and 8 lowercase hex digits.   clobbers: r1, r2, r3
;   putdec(r1 = value)              print value as unsigned decimal.         clobbers: r1..r5
;   putdec_s(r1 = value)            print value as signed decimal.           clobbers: r1..r5
;   putnl()                         print "\n".                               clobbers: r1
;
; Needs pv.s for the hypercall numbers.

; pvc_write(r1 = buf, r2 = len): console_io(write, len, buf).         clobbers: r1
; If the kernel stored a routine in `pvc_hook` (a split-driver console front-end, e.g.
; pv_front.s pvf_console_write: r1 = buf, r2 = len, may clobber r1..r7), the bytes go there.
pvc_write:
        push    r3
        li      r3, pvc_hook
        ld      r3, [r3]
        cmpi    r3, 0
        jz      .direct
        push    r2
        push    r4
        push    r5
        push    r6
        push    r7
        callr   r3
        pop     r7
        pop     r6
        pop     r5
        pop     r4
        pop     r2
        pop     r3
        ret
.direct:
        pop     r3
        push    r2
        push    r3
        push    r4
        mov     r4, r1
        mov     r3, r2
        li      r2, CONSOLEIO_write
        li      r1, HYPERVISOR_console_io
        int     HYPERVISOR_VECTOR
        pop     r4
        pop     r3
        pop     r2
        ret

putc:
        push    r1
        push    r2
        push    r1                      ; the byte, at [sp] (little-endian)
        mov     r1, sp
        li      r2, 1
        call    pvc_write
        pop     r1
        pop     r2
        pop     r1
        ret

putnl:
        li      r1, '\n'
        jmp     putc

puts:
        mov     r2, r1
        push    r3
.loop:  ldb     r3, [r2]
        cmpi    r3, 0
        jz      .go
        addi    r2, r2, 1
        jmp     .loop
.go:    pop     r3
        sub     r2, r2, r1
        jmp     pvc_write

putsn:
        cmpi    r2, 0
        jz      .done
        jmp     pvc_write
.done:  ret

puthex:                                 ; "0x" + 8 digits, formatted on the stack
        push    r4
        addi    sp, sp, -12
        mov     r2, r1
        li      r1, '0'
        stb     [sp], r1
        li      r1, 'x'
        stb     [sp + 1], r1
        addi    r4, sp, 2               ; next digit
        li      r3, 28
.loop:  shr     r1, r2, r3
        andi    r1, r1, 0xF
        cmpi    r1, 10
        jb      .digit
        addi    r1, r1, 'a' - 10
        jmp     .emit
.digit: addi    r1, r1, '0'
.emit:  stb     [r4], r1
        addi    r4, r4, 1
        addi    r3, r3, -4
        cmpi    r3, 0
        jge     .loop
        mov     r1, sp
        li      r2, 10
        call    pvc_write
        addi    sp, sp, 12
        pop     r4
        ret

putdec:
        li      r3, 0                   ; no sign
pvc_dec:                                ; r1 = magnitude, r3 = '-' or 0
        push    r6
        addi    sp, sp, -12
        addi    r6, sp, 12              ; digits are written backwards from the end
        mov     r2, r1
        li      r4, 10
.div:   remu    r5, r2, r4
        divu    r2, r2, r4
        addi    r5, r5, '0'
        addi    r6, r6, -1
        stb     [r6], r5
        cmpi    r2, 0
        jnz     .div
        cmpi    r3, 0
        jz      .out
        addi    r6, r6, -1
        stb     [r6], r3
.out:   mov     r1, r6
        addi    r2, sp, 12
        sub     r2, r2, r6
        call    pvc_write
        addi    sp, sp, 12
        pop     r6
        ret

putdec_s:
        cmpi    r1, 0
        jge     putdec
        neg     r1, r1
        li      r3, '-'
        jmp     pvc_dec

        .data
        .align  4
pvc_hook:       .word   0               ; 0: console_io
        .text
