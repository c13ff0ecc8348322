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
;                                (tickets count sends from 1).              clobbers: r1..r3
;   net_poll(r1 = port) → r1     messages waiting for `port`.               clobbers: r1
;   net_recv(r1 = buf, r2 = room, r3 = port) → r1 = status, r2 = length, r3 = source
;                                blocking receive.                          clobbers: r1..r7
;   net_tryrecv(...)             the same without waiting: NIC_EMPTY if nothing is there.
;   net_mark() → r1              the interrupt count now, for net_sleep.    clobbers: r1
;   net_sleep(r1 = mark)         sleep until an interface interrupt comes after `mark` was taken
;                                (at once if one already has).              clobbers: r2
;   net_am_hook                  a word: when not 0, the receive interrupt calls it (an active-
;                                message handler: it runs in the interrupt service routine and
;                                must follow the library convention).
;   net_popup_hook               a word: when not 0, a receive interrupt creates a pop-up thread
;                                that runs it on a stack of its own with interrupts as they
;                                were, outside the handler, and dies when it returns (one at a
;                                time: a thread should take every message that is there).
;                                net_popup_threads counts the threads made.
;   net_rx_irqs, net_tx_irqs     words: interrupts taken so far; net_events: both.
;
; Waiting without losing a wake-up: take a mark (net_mark), check the condition, and only then
; net_sleep(mark). An interrupt after the mark has bumped net_events, so net_sleep (which looks
; with interrupts off) returns at once; one still pending is taken right after its `sti`, that
; is just before the `hlt`, and the handlers step the saved pc over that `hlt`.

        .include "regs.s"

net_init:
        push    r1
        li      r2, net_fault
        li      r3, GATE_P | GATE_RING0
        call    idt_fill                ; (clobbers r4, r5)
        pop     r5
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
        pushf                           ; the interface's registers are shared with interrupt
        cli                             ; handlers (active messages): no interleaving
        out     PORT_NIC_DEST, r1
        out     PORT_NIC_PORT, r2
        out     PORT_NIC_ADDR, r3
        out     PORT_NIC_LEN, r4
        li      r1, NIC_CMD_SEND
        out     PORT_NIC_CMD, r1
        in      r1, PORT_NIC_STATUS
        in      r2, PORT_NIC_TX_ISSUED
        popf
        ret

net_send:
        mov     r5, r1
        mov     r6, r2
.again: call    net_mark
        mov     r7, r1
        mov     r1, r5
        mov     r2, r6
        call    net_isend
        cmpi    r1, NIC_RAM_FULL
        jnz     .sent
        mov     r1, r7
        call    net_sleep               ; a send completion frees a slot
        jmp     .again
.sent:  cmpi    r1, NIC_OK
        jnz     .done
        mov     r7, r1
        mov     r1, r2
        call    net_tx_wait
        mov     r1, r7
.done:  ret

net_tx_wait:
        mov     r3, r1
.loop:  call    net_mark
        in      r2, PORT_NIC_TX_FREED
        cmp     r2, r3
        jae     .done
        call    net_sleep
        jmp     .loop
.done:  ret

net_poll:
        pushf
        cli
        out     PORT_NIC_PORT, r1
        in      r1, PORT_NIC_RX_COUNT
        popf
        ret

net_recv:
        mov     r6, r1
        mov     r7, r2
.wait:  call    net_mark
        mov     r5, r1
        mov     r1, r6
        mov     r2, r7
        call    net_tryrecv
        cmpi    r1, NIC_EMPTY
        jnz     .done
        mov     r1, r5                  ; the mark (net_tryrecv keeps r5 when empty)
        call    net_sleep
        jmp     .wait
.done:  ret

net_tryrecv:                            ; r1 = buf, r2 = room, r3 = port; r5 kept if empty
        pushf
        cli
        out     PORT_NIC_PORT, r3
        in      r4, PORT_NIC_RX_COUNT
        cmpi    r4, 0
        jnz     .take
        popf
        li      r1, NIC_EMPTY
        li      r2, 0
        ret
.take:  in      r4, PORT_NIC_RX_LEN
        in      r3, PORT_NIC_RX_SRC
        out     PORT_NIC_ADDR, r1
        out     PORT_NIC_LEN, r2
        li      r1, NIC_CMD_RECV
        out     PORT_NIC_CMD, r1
        in      r1, PORT_NIC_STATUS
        mov     r2, r4
        popf
        ret

net_mark:
        li      r1, net_events
        ld      r1, [r1]
        ret

net_sleep:
        cli
        li      r2, net_events
        ld      r2, [r2]
        cmp     r2, r1
        jnz     net_awake
        sti
net_idle_hlt:                           ; a pending interrupt is taken here: it skips the hlt
        hlt
        ret
net_awake:
        sti
        ret

; The interrupt handlers: count, run the active-message hook, step over net_sleep's hlt, and
; for a pop-up thread return into net_popup_tramp instead of the interrupted code.
net_irq_rx:
        push    r1
        push    r2
        call    net_count
        li      r2, net_rx_irqs
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        li      r2, net_am_hook
        ld      r1, [r2]
        cmpi    r1, 0
        jz      .popup
        push    r3
        push    r4
        push    r5
        push    r6
        push    r7
        callr   r1                      ; an active message: its handler runs right here
        pop     r7
        pop     r6
        pop     r5
        pop     r4
        pop     r3
.popup: call    net_skip_hlt
        li      r2, net_popup_hook
        ld      r1, [r2]
        cmpi    r1, 0
        jz      net_irq_back
        li      r2, net_popup_busy      ; one pop-up thread at a time: it takes every message
        ld      r1, [r2]                ; that is there when it looks
        cmpi    r1, 0
        jnz     net_irq_back
        li      r1, 1
        st      [r2], r1
        ld      r1, [sp + 12]           ; the interrupted pc: where the thread's end resumes
        li      r2, net_popup_resume
        st      [r2], r1
        li      r1, net_popup_tramp
        st      [sp + 12], r1
        jmp     net_irq_back

net_irq_tx:
        push    r1
        push    r2
        call    net_count
        li      r2, net_tx_irqs
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        call    net_skip_hlt
net_irq_back:
        pop     r2
        pop     r1
        iret

net_skip_hlt:                           ; [sp] return, [sp+4] r2, [sp+8] r1, [sp+12] error,
        ld      r1, [sp + 16]           ; [sp+16] the interrupted pc
        li      r2, net_idle_hlt
        cmp     r1, r2
        jnz     .no
        addi    r1, r1, 4
        st      [sp + 16], r1
.no:    ret

; A pop-up thread: entered instead of the interrupted code (interrupts as they were there).
; It saves that code's registers and flags on its stack, runs the hook on a stack of its own,
; and dies: everything restored, back to the interrupted pc.
net_popup_tramp:
        push    r1                      ; the slot for the resume pc
        push    r1
        li      r1, net_popup_resume
        ld      r1, [r1]
        st      [sp + 4], r1
        pop     r1
        pushf
        push    r1
        PUSH_R2_R14
        li      r1, net_popup_sp
        st      [r1], sp
        li      sp, net_popup_stack_top
        li      r1, net_popup_threads
        ld      r2, [r1]
        addi    r2, r2, 1
        st      [r1], r2
        li      r1, net_popup_hook
        ld      r1, [r1]
        callr   r1                      ; the thread's body
        li      r1, net_popup_sp
        ld      sp, [r1]
        li      r1, net_popup_busy
        li      r2, 0
        st      [r1], r2
        POP_R14_R2
        pop     r1
        popf
        ret

net_count:                              ; net_events += 1 (clobbers r1, r2)
        li      r2, net_events
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        ret

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
net_events:     .word 0
net_popup_hook: .word 0
net_popup_busy: .word 0
net_popup_resume: .word 0
net_popup_sp:   .word 0
net_popup_threads: .word 0
                .space 1024
net_popup_stack_top:
