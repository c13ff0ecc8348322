; errors.s — what a guest sees when it asks the interface for something impossible: each
; request answers with a status code (docs/multicomputer.md), never a crash. Node 0 prints one
; line per case; the other nodes halt.

start:
        li      sp, 0x40000
        li      r1, 0x30000
        call    net_init
        call    net_node
        cmpi    r1, 0
        jz      .go
        cli
        hlt
.go:    call    net_nodes               ; a node that does not exist: number N
        li      r2, 1
        li      r3, buffer
        li      r4, 16
        call    net_isend
        li      r2, msg_nonode
        call    report
        li      r1, 1                   ; a message above the largest packet
        li      r2, 1
        li      r3, buffer
        li      r4, 0x10000
        call    net_isend
        li      r2, msg_big
        call    report
        li      r1, 1                   ; a buffer beyond the end of RAM
        li      r2, 1
        li      r3, 0xFFFFFF00
        li      r4, 64
        call    net_isend
        li      r2, msg_addr
        call    report
        li      r1, buffer              ; a receive with nothing there
        li      r2, 16
        li      r3, NIC_ANY_PORT
        call    net_tryrecv
        li      r2, msg_empty
        call    report
        li      r1, 99                  ; a command the interface does not have
        out     PORT_NIC_CMD, r1
        in      r1, PORT_NIC_STATUS
        li      r2, msg_cmd
        call    report
        cli
        hlt

report:                                 ; r1 = status, r2 = what was asked
        mov     r8, r1
        mov     r1, r2
        call    puts
        mov     r1, r8
        call    putdec
        call    putnl
        ret

        .include "console.s"
        .include "idt.s"
        .include "net.s"

msg_nonode: .asciz "errors: send to a missing node: status "
msg_big:    .asciz "errors: oversized message: status "
msg_addr:   .asciz "errors: buffer outside RAM: status "
msg_empty:  .asciz "errors: receive with nothing waiting: status "
msg_cmd:    .asciz "errors: unknown command: status "
        .align  4
buffer:     .space 16
