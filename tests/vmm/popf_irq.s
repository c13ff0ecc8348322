; popf_irq.s — a timer interrupt is pending when `popf` sets IF: natively it is delivered right
; after the popf (so the next instruction is the handler's, with IF 0 again); under
; trap-and-emulate the popf in ring 1 leaves the virtual IF 0 and nothing is delivered.
; (tests/vmm/test_popf_divergence.py: the explanation must read IF where the popf retired.)
IDT     = 0xA000

start:  li      sp, 0x7000
        li      r1, IDT
        li      r2, unexpected
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        li      r1, IDT
        li      r2, 32                  ; IRQ 0
        li      r3, tick
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        lidt    r1
        cli
        li      r1, 3
        out     PORT_TIMER_PERIOD, r1   ; the timer fires while IF is 0: the IRQ stays pending
        li      r2, 40
.spin:  addi    r2, r2, -1
        cmpi    r2, 0
        jnz     .spin
        li      r3, FLAG_IF
        push    r3
        popf                            ; IF := 1: the pending IRQ is taken right after it
        pushf
        pop     r1
        cli
        hlt

tick:   addi    r9, r9, 1
        li      r1, 0
        out     PORT_TIMER_PERIOD, r1
        iret

unexpected:
        li      r12, 0xBAD
        cli
        hlt

        .include "mem.s"
        .include "idt.s"
