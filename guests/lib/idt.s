; idt.s — interrupt-table helpers (ring 0).
;
; Convention (see console.s): args r1..r4, result r1; r0 and r8..r14 preserved.
; A gate is two words: word 0 = handler linear address, word 1 = flags, built from
;   GATE_P (present) | GATE_DPLn (highest ring allowed to `int n` it) | GATE_RINGn (ring the
;   handler runs in) | GATE_TRAP (leave IF alone; without it IF is cleared on entry).
; Example: a syscall gate callable from ring 3, handled in ring 0 with interrupts off:
;   GATE_P | GATE_DPL3 | GATE_RING0
;
;   idt_set(r1 = idt base, r2 = vector, r3 = handler, r4 = flags)    clobbers: r2
;   idt_fill(r1 = idt base, r2 = handler, r3 = flags)                sets all 256 gates.
;                                                                    clobbers: r4, r5
; After filling, load the table with  `lidt rX`  (rX = idt base).

idt_set:
        shli    r2, r2, 3
        add     r2, r2, r1
        st      [r2], r3
        st      [r2 + 4], r4
        ret

idt_fill:
        mov     r4, r1
        li      r5, 256 * 8
        add     r5, r5, r1              ; end
.loop:  cmp     r4, r5
        jae     .done
        st      [r4], r2
        st      [r4 + 4], r3
        addi    r4, r4, 8
        jmp     .loop
.done:  ret
