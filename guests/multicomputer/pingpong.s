; pingpong.s — node 0 sends a 64-byte "ping" to the last node, which answers "pong"; ROUNDS
; times. Node 0 prints the mean round trip (in ticks, from its clock); the last node prints how
; many it answered; every other node halts at once. Runs on any topology of 2 or more nodes:
; on a mesh or cube the last node is the opposite corner, on a hypercube the complement address.

ROUNDS = 10
SIZE = 64
PORT = 7

start:
        li      sp, 0x40000
        li      r1, 0x30000             ; interrupt table
        call    net_init
        call    net_node
        mov     r8, r1                  ; r8 = me
        call    net_nodes
        addi    r9, r1, -1              ; r9 = the last node
        cmpi    r8, 0
        jz      pinger
        cmp     r8, r9
        jz      ponger
        cli
        hlt

pinger:
        mov     r12, r9                 ; r12 = the partner
        li      r9, 0                   ; rounds done
        in      r10, PORT_CLOCK         ; start
.round: cmpi    r9, ROUNDS
        jae     .report
        li      r1, buffer
        st      [r1], r9                ; the round number travels in the first word
        mov     r1, r12
        li      r2, PORT
        li      r3, buffer
        li      r4, SIZE
        call    net_send
        li      r1, buffer
        li      r2, SIZE
        li      r3, PORT
        call    net_recv
        li      r1, buffer
        ld      r1, [r1]
        cmp     r1, r9                  ; the pong carries the same round number
        jnz     .bad
        addi    r9, r9, 1
        jmp     .round
.report:
        in      r11, PORT_CLOCK
        sub     r11, r11, r10
        li      r1, ROUNDS
        divu    r11, r11, r1
        li      r1, msg_done
        call    puts
        mov     r1, r11
        call    putdec
        call    putnl
        cli
        hlt
.bad:   li      r1, msg_bad
        call    puts
        cli
        hlt

ponger:
        li      r9, 0
.loop:  cmpi    r9, ROUNDS
        jae     .done
        li      r1, buffer
        li      r2, SIZE
        li      r3, PORT
        call    net_recv
        mov     r1, r3                  ; answer whoever sent it
        li      r2, PORT
        li      r3, buffer
        li      r4, SIZE
        call    net_send
        addi    r9, r9, 1
        jmp     .loop
.done:  li      r1, msg_pong
        call    puts
        mov     r1, r9
        call    putdec
        call    putnl
        cli
        hlt

        .include "console.s"
        .include "idt.s"
        .include "net.s"

msg_done: .asciz "pingpong: 10 rounds, mean round trip "
msg_bad:  .asciz "pingpong: wrong answer\n"
msg_pong: .asciz "pong "
        .align  4
buffer:   .space SIZE
