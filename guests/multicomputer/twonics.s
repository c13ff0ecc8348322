; twonics.s — two interfaces per node, the seeds' way out of sharing one card between the kernel
; and a user process: interface 0 (net.s) carries the kernel's message, interface 1 (its ports
; are interface 0's + NIC_PORT_STRIDE, on a network plane of its own) the other one. Node 0
; sends one message on each; node 1 takes each from its own interface and prints both.

I1 = NIC_PORT_STRIDE                    ; interface 1's port offset

start:
        li      sp, 0x40000
        li      r1, 0x30000
        call    net_init
        call    net_node
        cmpi    r1, 1
        jz      receiver
        cmpi    r1, 0
        jz      sender
        cli
        hlt

sender:
        li      r1, 1                   ; interface 0
        li      r2, 5
        li      r3, m_kernel
        li      r4, 8
        call    net_send
        li      r1, 1                   ; interface 1, by its ports
        out     PORT_NIC_DEST + I1, r1
        li      r1, 6
        out     PORT_NIC_PORT + I1, r1
        li      r1, m_user
        out     PORT_NIC_ADDR + I1, r1
        li      r1, 8
        out     PORT_NIC_LEN + I1, r1
        li      r1, NIC_CMD_SEND
        out     PORT_NIC_CMD + I1, r1
.wait:  in      r1, PORT_NIC_TX_FREED + I1
        cmpi    r1, 0
        jz      .wait
        cli
        hlt

receiver:
        li      r1, inbox               ; interface 0, blocking
        li      r2, 8
        li      r3, 5
        call    net_recv
        li      r1, inbox
        li      r2, 8
        call    putsn
        call    putnl
        li      r1, NIC_ANY_PORT        ; interface 1, polled (its interrupts stay masked)
        out     PORT_NIC_PORT + I1, r1
.poll:  in      r1, PORT_NIC_RX_COUNT + I1
        cmpi    r1, 0
        jz      .poll
        li      r1, inbox
        out     PORT_NIC_ADDR + I1, r1
        li      r1, 8
        out     PORT_NIC_LEN + I1, r1
        li      r1, NIC_CMD_RECV
        out     PORT_NIC_CMD + I1, r1
        li      r1, inbox
        li      r2, 8
        call    putsn
        call    putnl
        cli
        hlt

        .include "console.s"
        .include "idt.s"
        .include "net.s"

        .align  4
m_kernel: .ascii "kernel:0"
m_user:   .ascii "user:  1"
inbox:    .space 8
