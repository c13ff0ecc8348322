; net.s — message passing over the network interface (ring 0; docs/multicomputer.md).
;
; Convention (see console.s): args r1..r4, result r1; r0 and r8..r14 preserved.
; Needs idt.s (net_init fills the interrupt table). An address is (node, port): a port is any
; 32-bit number the receiver filters on; NIC_ANY_PORT takes any.
;
;   net_init(r1 = idt base)      interrupt table with the interface's two interrupts (receive,
;                                send completion) and a fault stop for everything else, only
;                                those IRQ lines unmasked, IF = 1.          clobbers: r1..r5
;   net_node() → r1              this node's number.                        clobbers: r1
;   net_nodes() → r1             the number of nodes.                       clobbers: r1
;   net_isend(r1 = dest, r2 = port, r3 = buf, r4 = len) → r1 = status
;                                non-blocking send: returns at once; the interface's DMA reads
;                                `buf` later, so `buf` must not change until net_tx_wait says
;                                so (r2 = the ticket to wait for).          clobbers: r1, r2
;   net_send(r1 = dest, r2 = port, r3 = buf, r4 = len) → r1 = status
;                                blocking send: waits while the interface RAM is full, then until
;                                the DMA has read `buf` (reusable on return). clobbers: r1..r7
;   net_tx_wait(r1 = ticket)     wait until the interface has read the buffer of send `ticket`
;                                (tickets count sends from 1).              clobbers: r1, r2
;   net_poll(r1 = port) → r1     messages waiting for `port`.               clobbers: r1
;   net_recv(r1 = buf, r2 = room, r3 = port) → r1 = status, r2 = length, r3 = source
;                                blocking receive.                          clobbers: r1..r6
;   net_tryrecv(...)             the same without waiting: NIC_EMPTY if nothing is there.
;   net_idle()                   wait for the next interrupt (hlt with IF = 1).  clobbers: none
;   net_am_hook                  a word: when not 0, the receive interrupt calls it (an active-
;                                message handler: it runs in the interrupt service routine and
;                                must follow the library convention).
;   net_rx_irqs, net_tx_irqs     words: interrupts taken so far.
;
; Waiting is `hlt` with interrupts on. An interrupt that comes between the check and the `hlt`
; would be taken before the `hlt` and leave it to sleep for ever: the interrupt handlers step the
; saved pc over net_idle's `hlt` when they interrupt it there.

net_init:
        mov     r5, r1
        li      r2, net_fault
        li      r3, GATE_P | GATE_RING0
        call    idt_fill
        mov     r1, r5
        li      r2, VEC_IRQ3
        li      r3, net_irq_rx
        li      r4, GATE_P | GATE_RING0
        call    idt_set
        li      r2, VEC_IRQ4
        li      r3, net_irq_tx
        call    idt_set
        lidt    r5
        li      r1, 0xFFFF & ~((1 << IRQ_NIC_RX) | (1 << IRQ_NIC_TX))
        out     PORT_PIC_MASK, r1
        sti
        ret

net_node:
        in      r1, PORT_NIC_NODE
        ret

net_nodes:
        in      r1, PORT_NIC_NODES
        ret

net_isend:
        out     PORT_NIC_DEST, r1
        out     PORT_NIC_PORT, r2
        out     PORT_NIC_ADDR, r3
        out     PORT_NIC_LEN, r4
        li      r1, NIC_CMD_SEND
        out     PORT_NIC_CMD, r1
        in      r1, PORT_NIC_STATUS
        in      r2, PORT_NIC_TX_ISSUED
        ret

net_send:
        mov     r5, r1
        mov     r6, r2
.again: mov     r1, r5
        mov     r2, r6
        call    net_isend
        cmpi    r1, NIC_RAM_FULL
        jnz     .sent
        call    net_idle                ; a send completion frees a slot
        jmp     .again
.sent:  cmpi    r1, NIC_OK
        jnz     .done
        mov     r7, r1
        mov     r1, r2
        call    net_tx_wait
        mov     r1, r7
.done:  ret

net_tx_wait:
.loop:  in      r2, PORT_NIC_TX_FREED
        cmp     r2, r1
        jae     .done
        call    net_idle
        jmp     .loop
.done:  ret

net_poll:
        out     PORT_NIC_PORT, r1
        in      r1, PORT_NIC_RX_COUNT
        ret

net_recv:
        out     PORT_NIC_PORT, r3
.wait:  in      r4, PORT_NIC_RX_COUNT
        cmpi    r4, 0
        jnz     net_take
        call    net_idle
        jmp     .wait

net_tryrecv:
        out     PORT_NIC_PORT, r3
        in      r4, PORT_NIC_RX_COUNT
        cmpi    r4, 0
        jnz     net_take
        li      r1, NIC_EMPTY
        li      r2, 0
        ret

net_take:                               ; r1 = buf, r2 = room; a message is waiting
        in      r4, PORT_NIC_RX_LEN
        in      r5, PORT_NIC_RX_SRC
        out     PORT_NIC_ADDR, r1
        out     PORT_NIC_LEN, r2
        li      r6, NIC_CMD_RECV
        out     PORT_NIC_CMD, r6
        in      r1, PORT_NIC_STATUS
        mov     r2, r4
        mov     r3, r5
        ret

net_idle:
net_idle_hlt:
        hlt
        ret

; The interrupt handlers: count, run the active-message hook, step over net_idle's hlt.
net_irq_rx:
        push    r1
        push    r2
        li      r2, net_rx_irqs
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        li      r2, net_am_hook
        ld      r1, [r2]
        cmpi    r1, 0
        jz      net_irq_out
        push    r3
        push    r4
        push    r5
        push    r6
        push    r7
        callr   r1
        pop     r7
        pop     r6
        pop     r5
        pop     r4
        pop     r3
        jmp     net_irq_out

net_irq_tx:
        push    r1
        push    r2
        li      r2, net_tx_irqs
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
net_irq_out:                            ; [sp] r2, [sp+4] r1, [sp+8] error, [sp+12] pc
        ld      r1, [sp + 12]
        li      r2, net_idle_hlt
        cmp     r1, r2
        jnz     .back
        addi    r1, r1, 4
        st      [sp + 12], r1
.back:  pop     r2
        pop     r1
        iret

net_fault:                              ; any other exception: say so and stop
        li      r1, 'F'
        out     PORT_CONSOLE_DATA, r1
        li      r1, '\n'
        out     PORT_CONSOLE_DATA, r1
        cli
        hlt

        .align  4
net_am_hook:    .word 0
net_rx_irqs:    .word 0
net_tx_irqs:    .word 0
