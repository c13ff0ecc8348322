; receives.s — the seeds' ways to receive, one after the other on node 1 (node 0 sends one
; message for each when node 1 says it is ready, on port 30):
;   blocking        net_recv: the caller sleeps until the message is there
;   poll            non-blocking: the program works and calls poll() until a message waits
;   interrupt       non-blocking: the program works; the receive interrupt tells it
;   pop-up thread   the arrival creates a thread (its own stack, interrupts on, outside the
;                   interrupt handler) that takes the message and dies
;   active message  the message names its handler, which runs inside the interrupt handler

SIZE = 16

start:
        li      sp, 0x40000
        li      r1, 0x30000
        call    net_init
        call    net_node
        cmpi    r1, 0
        jz      sender
        cmpi    r1, 1
        jz      receiver
        cli
        hlt

sender:
        li      r8, 31
.next:  cmpi    r8, 36
        jae     .done
        li      r1, scratch             ; wait for "ready"
        li      r2, SIZE
        li      r3, 30
        call    net_recv
        addi    r1, r8, -31
        shli    r1, r1, 2
        li      r2, payloads
        add     r1, r1, r2
        ld      r3, [r1]
        li      r1, 1
        mov     r2, r8
        li      r4, 8
        call    net_send
        addi    r8, r8, 1
        jmp     .next
.done:  cli
        hlt

ready:                                  ; tell node 0 to send the next one
        li      r1, 0
        li      r2, 30
        li      r3, scratch
        li      r4, 4
        call    net_send
        ret

receiver:
        call    ready                   ; -- blocking
        li      r1, inbox
        li      r2, SIZE
        li      r3, 31
        call    net_recv
        li      r1, m_block
        call    show

        call    ready                   ; -- poll
        li      r9, 0
.poll:  addi    r9, r9, 1               ; (a unit of work between polls)
        li      r1, 32
        call    net_poll
        cmpi    r1, 0
        jz      .poll
        li      r1, inbox
        li      r2, SIZE
        li      r3, 32
        call    net_tryrecv
        li      r1, m_poll
        call    show
        li      r1, m_polls
        call    puts
        mov     r1, r9
        call    putdec
        call    putnl

        li      r2, net_rx_irqs         ; -- interrupt
        ld      r10, [r2]
        call    ready
        li      r9, 0
.work:  addi    r9, r9, 1               ; work until the interrupt has come
        li      r2, net_rx_irqs
        ld      r1, [r2]
        cmp     r1, r10
        jz      .work
        li      r1, inbox
        li      r2, SIZE
        li      r3, 33
        call    net_tryrecv
        li      r1, m_intr
        call    show

        li      r1, popup_body          ; -- pop-up thread
        li      r2, net_popup_hook
        st      [r2], r1
        call    ready
.wait:  li      r2, popup_got
        ld      r1, [r2]
        cmpi    r1, 0
        jz      .wait
        li      r2, net_popup_hook
        li      r1, 0
        st      [r2], r1
        li      r1, m_popup
        call    show
        li      r1, m_threads
        call    puts
        li      r2, net_popup_threads
        ld      r1, [r2]
        call    putdec
        call    putnl

        li      r1, am_dispatch         ; -- active message
        li      r2, net_am_hook
        st      [r2], r1
        call    ready
.am:    li      r2, am_total
        ld      r1, [r2]
        cmpi    r1, 0
        jz      .am
        li      r1, m_am
        call    puts
        li      r2, am_total
        ld      r1, [r2]
        call    putdec
        call    putnl
        cli
        hlt

show:                                   ; r1 = label; then the 4 bytes received
        call    puts
        li      r1, inbox
        li      r2, 4
        call    putsn
        call    putnl
        ret

popup_body:                             ; the pop-up thread: take the message, note it, die
        li      r1, inbox
        li      r2, SIZE
        li      r3, 34
        call    net_tryrecv
        cmpi    r1, NIC_OK
        jnz     .none
        li      r2, popup_got
        li      r1, 1
        st      [r2], r1
.none:  ret

am_dispatch:                            ; in the interrupt handler: run the handler the
        li      r1, ambuf               ; message names, with its argument
        li      r2, SIZE
        li      r3, 35
        call    net_tryrecv
        cmpi    r1, NIC_OK
        jnz     .none
        li      r1, ambuf
        ld      r2, [r1]                ; handler number
        ld      r1, [r1 + 4]            ; argument
        shli    r2, r2, 2
        li      r3, am_handlers
        add     r2, r2, r3
        ld      r2, [r2]
        callr   r2
.none:  ret

am_add:                                 ; handler 0: am_total += r1
        li      r3, am_total
        ld      r2, [r3]
        add     r2, r2, r1
        st      [r3], r2
        ret

        .include "console.s"
        .include "idt.s"
        .include "net.s"

m_block:  .asciz "receive blocking: got "
m_poll:   .asciz "receive poll: got "
m_polls:  .asciz "receive poll: polls made "
m_intr:   .asciz "receive interrupt: got "
m_popup:  .asciz "receive pop-up thread: got "
m_threads: .asciz "receive pop-up thread: threads made "
m_am:     .asciz "receive active message: handler 0 ran in the interrupt handler, total = "
        .align  4
p_block:  .ascii "blk!"
          .word 0
p_poll:   .ascii "pol!"
          .word 0
p_intr:   .ascii "int!"
          .word 0
p_popup:  .ascii "pop!"
          .word 0
p_am:     .word 0, 42                   ; handler 0, argument 42
payloads: .word p_block, p_poll, p_intr, p_popup, p_am
am_handlers: .word am_add
am_total: .word 0
popup_got: .word 0
scratch:  .space SIZE
inbox:    .space SIZE
ambuf:    .space SIZE
