; contend.s — the first problem of a user-level interface (the seeds): processes on one node
; contending for it. Node 0 runs two processes under a round-robin timer; each sends four
; messages through the mapped interface the obvious way — find a free transmit slot, fill it,
; hand it over — with nothing to stop the other process from finding the same free slot in
; between. Node 1 prints every message it gets and how many of the eight distinct messages
; arrived: when both processes take the same slot, one message is lost and the other sent twice.
; (The fix the seeds suggest: one process per node, or a lock the processes share.)

        .include "regs.s"

PERIOD = 67                             ; timer ticks per time slice (the switch itself takes ~45)
SLOT = 32 + 1024                        ; the slot layout of contend.toml's [interface]
SENDS = 4

start:
        li      sp, 0x40000
        li      r1, 0x30000
        call    net_init
        call    net_node
        cmpi    r1, 1
        jz      receiver
        cmpi    r1, 0
        jz      kernel
        cli
        hlt

kernel:
        li      r1, 0x30000
        li      r2, VEC_IRQ0
        li      r3, switch
        li      r4, GATE_P | GATE_RING0
        call    idt_set
        li      r1, 0xFFFF & ~((1 << IRQ_TIMER) | (1 << IRQ_NIC_RX) | (1 << IRQ_NIC_TX))
        out     PORT_PIC_MASK, r1
        li      r1, NIC_CMD_WINDOW
        out     PORT_NIC_CMD, r1
        in      r1, PORT_NIC_ADDR
        li      r2, window
        st      [r2], r1
        li      r1, 0x48000             ; process B's first frame, as a switch would leave it
        li      r2, 0x48000
        st      [r1 - 4], r2            ; old sp
        li      r2, FLAG_IF
        st      [r1 - 8], r2            ; flags
        li      r2, 0
        st      [r1 - 12], r2           ; cs
        li      r2, proc_b
        st      [r1 - 16], r2           ; pc
        li      r2, 0
        st      [r1 - 20], r2           ; error code
        addi    r1, r1, -20 - 14 * 4    ; and 14 saved registers below it
        li      r2, saved_sp + 4
        st      [r2], r1
        li      r1, PERIOD
        out     PORT_TIMER_PERIOD, r1
        jmp     proc_a

switch:                                 ; the timer: save this process, resume the other
        push    r1
        PUSH_R2_R14
        li      r1, current
        ld      r2, [r1]
        shli    r3, r2, 2
        li      r4, saved_sp
        add     r3, r3, r4
        st      [r3], sp
        xori    r2, r2, 1
        st      [r1], r2
        shli    r3, r2, 2
        add     r3, r3, r4
        ld      sp, [r3]
        li      r1, done                ; both processes done: stop the machine
        ld      r1, [r1]
        cmpi    r1, 2
        jb      .back
        li      r1, 0
        out     PORT_TIMER_PERIOD, r1
        cli
        hlt
.back:  POP_R14_R2
        pop     r1
        iret

proc_a: li      r8, 'a'
        jmp     process
proc_b: li      r8, 'b'

process:                                ; send SENDS messages "x:k" through the mapped slots
        li      r9, 0
.next:  cmpi    r9, SENDS
        jae     .done
        li      r1, window
        ld      r10, [r1]
.find:  ld      r1, [r10]               ; the first free transmit slot ...
        cmpi    r1, 0
        jz      .got
        li      r1, SLOT
        add     r10, r10, r1
        jmp     .find
.got:   li      r1, 1                   ; ... is ours (or so we think): fill it
        st      [r10 + 4], r1           ; to node 1
        li      r1, 7
        st      [r10 + 8], r1
        li      r1, 4
        st      [r10 + 12], r1
        addi    r1, r9, '0'
        shli    r1, r1, 16
        ori     r1, r1, ':' << 8
        or      r1, r1, r8
        st      [r10 + 32], r1          ; "x:k"
        li      r1, 1
        st      [r10], r1               ; hand it over
        addi    r9, r9, 1
        jmp     .next
.done:  li      r2, done
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
.idle:  hlt                             ; until the timer switches away for good
        jmp     .idle

receiver:
        li      r9, 0                   ; distinct messages
        li      r11, 0                  ; which ones
        li      r12, 0                  ; duplicates
        in      r10, PORT_CLOCK
.loop:  in      r1, PORT_CLOCK          ; listen for 20000 ticks
        sub     r1, r1, r10
        li      r2, 20000
        cmp     r1, r2
        jae     .report
        li      r1, inbox
        li      r2, 8
        li      r3, 7
        call    net_tryrecv
        cmpi    r1, NIC_OK
        jnz     .loop
        li      r1, m_got
        call    puts
        li      r1, inbox
        li      r2, 3
        call    putsn
        call    putnl
        li      r1, inbox               ; bit (process·4 + k) of r11: seen
        ldb     r2, [r1]
        addi    r2, r2, -'a'
        shli    r2, r2, 2
        ldb     r3, [r1 + 2]
        addi    r3, r3, -'0'
        add     r2, r2, r3
        li      r3, 1
        shl     r3, r3, r2
        tst     r11, r3
        jz      .new
        addi    r12, r12, 1             ; the same message again: a slot was taken twice
        jmp     .loop
.new:   or      r11, r11, r3
        addi    r9, r9, 1
        jmp     .loop
.report:
        li      r1, m_count
        call    puts
        mov     r1, r9
        call    putdec
        li      r1, m_of
        call    puts
        mov     r1, r12
        call    putdec
        li      r1, m_dup
        call    puts
        cli
        hlt

        .include "console.s"
        .include "idt.s"
        .include "net.s"

m_got:    .asciz "contention: got "
m_count:  .asciz "contention: "
m_of:     .asciz " of the 8 messages sent arrived, "
m_dup:    .asciz " twice over\n"
        .align  4
window:   .word 0
current:  .word 0
saved_sp: .word 0, 0
done:     .word 0
inbox:    .space 8
