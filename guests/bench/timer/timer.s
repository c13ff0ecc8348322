; timer.s — timer interrupts taken from an idle loop: what one timer interrupt costs a kernel.
;
; Ring 0 installs one interrupt gate (IRQ 0), programs the timer and idles: `hlt` waits for the
; next tick (the clock jumps to the deadline, no instruction runs meanwhile), the interrupt is
; delivered, the handler counts it and `iret`s, and the loop tests the count and halts again.
;
;   per interrupt (5 instructions and one delivery):  hlt;  [IRQ 0]  addi;  iret;  cmp;  jb
;
; Input (console): the number of timer interrupts to take, 1 to MAX_TICKS (default
; DEFAULT_TICKS).  Output: "timer: <n> interrupts", then halt.  toyvisor bench --trap-heavy
; divides the time of the difference of two such runs by the difference of their counts.

DEFAULT_TICKS   = 1000
MAX_TICKS       = 10000000
PERIOD          = 100
STACK_TOP       = 0x80000
IDT             = 0xA0000
TIMER_GATE      = GATE_P | GATE_RING0

start:
        li      sp, STACK_TOP
        li      r1, DEFAULT_TICKS
        li      r2, MAX_TICKS
        call    read_count
        mov     r8, r1                  ; interrupts to take
        li      r1, IDT                 ; every gate absent ...
        li      r2, 0
        li      r3, 256 * 2
        call    memset32
        li      r1, IDT                 ; ... but the timer's
        li      r2, VEC_IRQ0
        li      r3, on_tick
        li      r4, TIMER_GATE
        call    idt_set
        li      r1, IDT
        lidt    r1
        li      r9, 0                   ; interrupts taken
        li      r1, PERIOD
        out     PORT_TIMER_PERIOD, r1
        sti
idle:   hlt
        cmp     r9, r8
        jb      idle
        cli
        li      r1, msg_head
        call    puts
        mov     r1, r9
        call    putdec
        li      r1, msg_tail
        call    puts
        call    putnl
        hlt

; IRQ 0: count it (an interrupt gate: IF is 0 here, iret restores the loop's IF = 1)
on_tick:
        addi    r9, r9, 1
        iret

        .include "../count.s"          ; with input.s and words.s
        .include "console.s"
        .include "mem.s"
        .include "idt.s"

msg_head:       .asciz  "timer: "
msg_tail:       .asciz  " interrupts"
