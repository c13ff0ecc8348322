; delivery.s — faults that hit the *delivery* of an event, for hardware-assisted generation 1,
; whose shadow page tables start empty: the hardware's first touch of a stack page is the frame
; it pushes, so the #PF exit carries the interrupted event (vectoring) for re-injection.
; Each phase switches to a stack page nothing has touched yet, then:
;   1. div by zero at ring 0 (an exception's frame faults; the #DE handler skips the div);
;   2. a timer interrupt (an injected IRQ's frame faults);
;   3. int 0x30 (a software interrupt's frame faults: the `int` runs again);
;   4. div by zero with sp in a page the guest's own tables do not map: the #DE frame faults,
;      then the #DF frame: a triple fault, natively as under every VMM.
PD      = 0x8000
PT      = 0x9000
IDT     = 0xA000
STACK1  = 0xD000                        ; top of the first fresh stack page (0xC000..0xCFFF)
STACK2  = 0xE000
STACK3  = 0xF000
NOWHERE = 0x00400000                    ; not mapped by the guest

start:  li      sp, 0x7000
        li      r1, IDT
        li      r2, unexpected
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        li      r1, IDT
        li      r2, VEC_DE
        li      r3, de_handler
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        li      r2, 32                  ; IRQ 0
        li      r3, tick
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        li      r2, 0x30
        li      r3, service
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        lidt    r1
        ; paging: identity-map the first 64 KiB at PL0
        li      r1, PD
        li      r2, 0
        li      r3, 2048
        call    memset32
        li      r1, PT
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 16
        call    pt_fill
        li      r1, PD
        li      r2, 0
        li      r3, PT | PTE_P | PTE_W | PTE_PL0
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        ; 1. an exception whose frame lands on a fresh page
        li      sp, STACK1
        li      r2, 0
        div     r3, r2, r2
        ; 2. a timer interrupt whose frame lands on a fresh page
        li      sp, STACK2
        li      r1, 7
        out     PORT_TIMER_PERIOD, r1
        sti
.wait:  cmpi    r9, 0
        jz      .wait
        cli
        li      r1, 0
        out     PORT_TIMER_PERIOD, r1
        ; 3. a software interrupt whose frame lands on a fresh page
        li      sp, STACK3
        int     0x30
        li      r1, msg
        call    puts
        ; 4. an exception whose frame cannot be pushed at all
        li      sp, NOWHERE
        li      r2, 0
        div     r3, r2, r2
        hlt                             ; not reached: triple fault

de_handler:
        addi    r8, r8, 1
        ld      r11, [sp + 4]           ; the div
        addi    r11, r11, 4
        st      [sp + 4], r11
        iret

tick:   addi    r9, r9, 1
        iret

service:
        addi    r10, r10, 1
        iret

unexpected:
        li      r12, 0xBAD
        cli
        hlt

        .include "console.s"
        .include "mem.s"
        .include "paging.s"
        .include "idt.s"
msg:    .asciz  "delivered\n"
