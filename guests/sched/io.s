; io.s — an I/O-bound thread per vCPU: `work` times it reads a disk sector into its private data
; (real DMA), then blocks in `hlt` until the device's latency has passed (its local timer, set to
; LATENCY ticks: toyvisor's disk completes at once, so the thread waits out the seek), then does
; one round of work on what it read.

LATENCY = 600

start:  jmp     main

        .include "sched.s"

main:   SCHED_START
        li      r1, IDT
        li      r2, tick
        li      r3, GATE_P | GATE_RING0
        call    idt_fill
        li      r1, IDT
        lidt    r1
        li      r1, 0b11111110          ; only the timer's line
        out     PORT_PIC_MASK, r1
        li      r4, PARAMS
        ld      r9, [r4 + P_WORK]
.iter:  cmpi    r9, 0
        jz      .done
        li      r1, 0
        out     PORT_DISK_SECTOR, r1
        rdpid   r1
        shli    r1, r1, 10
        addi    r1, r1, PRIVATE
        out     PORT_DISK_ADDR, r1
        li      r1, 1
        out     PORT_DISK_CMD, r1
        li      r1, LATENCY
        out     PORT_TIMER_PERIOD, r1
        sti
        hlt                             ; blocked until the timer fires
        cli
        li      r1, 1
        call    work
        addi    r9, r9, -1
        jmp     .iter
.done:  cli
        hlt

tick:   li      r1, 0
        out     PORT_TIMER_PERIOD, r1
        iret

        .include "idt.s"
