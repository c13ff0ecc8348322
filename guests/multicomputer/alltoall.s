; alltoall.s — every node sends one 32-byte message to every other node and receives one from
; each. Message i → j carries i·1000 + j in its first word; each node checks every message it
; gets (source and contents) and that it heard from all N-1 others, then prints ok.
; Sends are non-blocking (one buffer per destination, so no buffer is reused before its DMA);
; when the interface RAM is full the node drains what has arrived meanwhile instead of waiting,
; so N nodes all sending first cannot wedge each other.

PORT = 2
SIZE = 32
BUFS = 0x20000                          ; one SIZE buffer per destination
RXBUF = 0x1F000

start:
        li      sp, 0x40000
        li      r1, 0x30000
        call    net_init
        call    net_node
        mov     r8, r1                  ; me
        call    net_nodes
        mov     r9, r1                  ; N
        li      r10, 1                  ; k: destination = (me + k) mod N
        li      r13, 0                  ; messages received
        li      r14, 0                  ; sum of their sources
.send:  cmp     r10, r9
        jae     .rest
        add     r11, r8, r10
        cmp     r11, r9
        jb      .in
        sub     r11, r11, r9
.in:    li      r1, 1000
        mul     r1, r8, r1
        add     r1, r1, r11             ; contents: me·1000 + dest
        shli    r12, r11, 5
        li      r2, BUFS
        add     r12, r12, r2            ; the buffer for this destination
        st      [r12], r1
.try:   call    net_mark
        mov     r7, r1
        mov     r1, r11
        li      r2, PORT
        mov     r3, r12
        li      r4, SIZE
        call    net_isend
        cmpi    r1, NIC_RAM_FULL
        jnz     .sent
        push    r7
        call    drain
        pop     r1
        call    net_sleep
        jmp     .try
.sent:  cmpi    r1, NIC_OK
        jnz     bad
        addi    r10, r10, 1
        jmp     .send
.rest:  addi    r1, r9, -1
        cmp     r13, r1
        jae     .check
        li      r1, RXBUF
        li      r2, SIZE
        li      r3, PORT
        call    net_recv
        call    judge
        jmp     .rest
.check: addi    r1, r9, -1
        mul     r1, r1, r9
        shri    r1, r1, 1
        sub     r1, r1, r8              ; 0 + 1 + … + (N-1) - me
        cmp     r1, r14
        jnz     bad
        li      r1, msg_ok
        call    puts
        mov     r1, r13
        call    putdec
        li      r1, msg_ok2
        call    puts
        cli
        hlt

drain:                                  ; take whatever has arrived, without waiting
.loop:  li      r1, RXBUF
        li      r2, SIZE
        li      r3, PORT
        call    net_tryrecv
        cmpi    r1, NIC_OK
        jnz     .done
        call    judge
        jmp     .loop
.done:  ret

judge:                                  ; r1 = status, r3 = source; contents at RXBUF
        cmpi    r1, NIC_OK
        jnz     bad
        li      r1, 1000
        mul     r1, r3, r1
        add     r1, r1, r8
        li      r2, RXBUF
        ld      r2, [r2]
        cmp     r1, r2
        jnz     bad
        addi    r13, r13, 1
        add     r14, r14, r3
        ret

bad:    li      r1, msg_bad
        call    puts
        cli
        hlt

        .include "console.s"
        .include "idt.s"
        .include "net.s"

msg_ok:   .asciz "all-to-all: ok, "
msg_ok2:  .asciz " messages\n"
msg_bad:  .asciz "all-to-all: BAD\n"
