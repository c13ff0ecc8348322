; input.s — reading the console's input in ring 0 (polled port I/O).
;
; Library calling convention (guests/README.md): arguments in r1..r4, result in r1.

; read_console(r1 = buffer, r2 = capacity): drain the waiting console input (polled: ring 0,
; interrupts off) into the buffer; bytes beyond the capacity are read and dropped.
; r1 = the number of bytes that were waiting (compare with the capacity to detect overflow).
; Clobbers r1..r5.
read_console:
        mov     r5, r1
        li      r3, 0
.next:  in      r1, PORT_CONSOLE_STATUS
        cmpi    r1, 0
        jz      .done
        in      r1, PORT_CONSOLE_DATA
        cmp     r3, r2
        jae     .drop
        add     r4, r5, r3
        stb     [r4], r1
.drop:  addi    r3, r3, 1
        jmp     .next
.done:  mov     r1, r3
        ret
