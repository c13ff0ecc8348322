; io.s — the migration workload that keeps doing I/O: every iteration reads a disk sector by DMA
; and waits for its completion interrupt, sums it, writes it back with its first word increased
; by the iteration number, and prints one console line; a timer interrupt counts ticks all the
; while.  A migration at any moment finds a disk request or an interrupt in flight somewhere,
; and the console and disk streams must come out exactly as in a run that never moved.
;
; Output: "io <i>: sector <s> sum 0x........ timer <n>" per iteration, then "io: done, <n> timer
; interrupts", then halt.

ITERATIONS      = 60
SPIN            = 400                   ; busy-loop iterations between two requests
STACK_TOP       = 0x6F00
IDT             = 0x9000
BUFFER          = 0x7000
TIMER_PERIOD    = 997
PIC_ENABLE      = 0b010                 ; timer and disk interrupts on, console input masked

start:
        li      sp, STACK_TOP
        li      r13, 0                  ; base register of absolute addresses
        li      r1, IDT
        li      r2, isr_ignore
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        li      r1, IDT
        li      r2, VEC_IRQ0
        li      r3, isr_timer
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        li      r2, VEC_IRQ2
        li      r3, isr_disk
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        lidt    r1
        li      r1, PIC_ENABLE
        out     PORT_PIC_MASK, r1
        li      r1, TIMER_PERIOD
        out     PORT_TIMER_PERIOD, r1
        sti
        in      r10, PORT_DISK_SECTORS
        li      r8, 0                   ; iteration
.iter:  remu    r9, r8, r10             ; sector
        ; read it, wait for the completion interrupt
        li      r1, 0
        st      [r13 + disk_done], r1
        out     PORT_DISK_SECTOR, r9
        li      r1, BUFFER
        out     PORT_DISK_ADDR, r1
        li      r1, DISK_CMD_READ
        out     PORT_DISK_CMD, r1
        call    wait_disk
        ; sum it
        li      r1, BUFFER
        li      r2, BUFFER + SECTOR_SIZE
        li      r11, 0
.sum:   ld      r3, [r1]
        add     r11, r11, r3
        addi    r1, r1, 4
        cmp     r1, r2
        jb      .sum
        ; change it and write it back
        ld      r1, [r13 + BUFFER]
        add     r1, r1, r8
        st      [r13 + BUFFER], r1
        li      r1, 0
        st      [r13 + disk_done], r1
        li      r1, DISK_CMD_WRITE
        out     PORT_DISK_CMD, r1
        call    wait_disk
        ; the line
        li      r1, msg_io
        call    puts
        mov     r1, r8
        call    putdec
        li      r1, msg_sector
        call    puts
        mov     r1, r9
        call    putdec
        li      r1, msg_sum
        call    puts
        mov     r1, r11
        call    puthex
        li      r1, msg_timer
        call    puts
        ld      r1, [r13 + timer_count]
        call    putdec
        call    putnl
        ; compute a while
        li      r5, SPIN
.spin:  addi    r5, r5, -1
        cmpi    r5, 0
        jnz     .spin
        addi    r8, r8, 1
        cmpi    r8, ITERATIONS
        jb      .iter
        cli
        li      r1, msg_done
        call    puts
        ld      r1, [r13 + timer_count]
        call    putdec
        li      r1, msg_interrupts
        call    puts
        hlt

; wait_disk: until the disk's completion interrupt has been taken (IF = 1).  Clobbers r1.
wait_disk:
.poll:  ld      r1, [r13 + disk_done]
        cmpi    r1, 0
        jz      .poll
        ret

isr_timer:
        push    r1
        ld      r1, [r13 + timer_count]
        addi    r1, r1, 1
        st      [r13 + timer_count], r1
        pop     r1
        iret

isr_disk:
        push    r1
        li      r1, 1
        st      [r13 + disk_done], r1
        pop     r1
        iret

isr_ignore:
        iret

        .include "idt.s"
        .include "console.s"

        .data
msg_io:         .asciz  "io "
msg_sector:     .asciz  ": sector "
msg_sum:        .asciz  " sum "
msg_timer:      .asciz  " timer "
msg_done:       .asciz  "io: done, "
msg_interrupts: .asciz  " timer interrupts\n"
        .align  4
disk_done:      .word   0
timer_count:    .word   0
