; ring.s — a token passed around a ring of all the nodes (0 → 1 → … → N-1 → 0), LAPS times.
; Each node adds its number + 1 to the token as it passes; after LAPS laps node 0 checks the
; token against LAPS·N·(N+1)/2 and prints it. The ring is logical: on any topology the
; interconnect routes each hop.

LAPS = 3
PORT = 1

start:
        li      sp, 0x40000
        li      r1, 0x30000
        call    net_init
        call    net_node
        mov     r8, r1                  ; r8 = me
        call    net_nodes
        mov     r9, r1                  ; r9 = N
        addi    r10, r8, 1
        cmp     r10, r9
        jb      .next_ok
        li      r10, 0                  ; r10 = the next node
.next_ok:
        li      r11, 0                  ; laps seen
        cmpi    r8, 0
        jnz     relay
        li      r12, 1                  ; node 0 starts the token with its own 1
        call    pass
.lap:   call    take
        addi    r11, r11, 1
        cmpi    r11, LAPS
        jae     .check
        addi    r12, r12, 1
        call    pass
        jmp     .lap
.check: addi    r1, r9, 1
        mul     r1, r1, r9
        shri    r1, r1, 1
        li      r2, LAPS
        mul     r1, r1, r2              ; LAPS·N·(N+1)/2
        cmp     r1, r12
        jnz     .bad
        li      r1, msg_ok
        call    puts
        mov     r1, r12
        call    putdec
        call    putnl
        cli
        hlt
.bad:   li      r1, msg_bad
        call    puts
        mov     r1, r12
        call    putdec
        call    putnl
        cli
        hlt

relay:  cmpi    r11, LAPS
        jae     .done
        call    take
        add     r12, r12, r8
        addi    r12, r12, 1
        call    pass
        addi    r11, r11, 1
        jmp     relay
.done:  cli
        hlt

pass:                                   ; send the token r12 to the next node
        li      r1, token
        st      [r1], r12
        mov     r1, r10
        li      r2, PORT
        li      r3, token
        li      r4, 4
        call    net_send
        ret

take:                                   ; r12 = the token, from whoever holds it
        li      r1, token
        li      r2, 4
        li      r3, PORT
        call    net_recv
        li      r1, token
        ld      r12, [r1]
        ret

        .include "console.s"
        .include "idt.s"
        .include "net.s"

msg_ok:   .asciz "token ring: ok, token = "
msg_bad:  .asciz "token ring: BAD token "
        .align  4
token:    .word 0
