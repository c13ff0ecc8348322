; sends.s — the seeds' sends, one after the other from node 0 to node 1, each followed at once
; by the sender writing "ZZZZ" over the start of its buffer (it goes on with its work):
;   blocking      net_send returns when the interface's DMA has read the buffer: safe
;   unsafe        net_isend and write: the DMA has not read the buffer yet, so the message
;                 that leaves is the overwritten one — the hazard
;   kernel copy   (1) the kernel copies the buffer and sends the copy: safe, one more copy
;   interrupt     (2) the sender waits for the send interrupt before it writes: safe
;   copy on write (3) the buffer's page is read-only until the DMA has read it; the write
;                 faults, the kernel copies the page for the writer; the original is sent
; Node 1 prints what each message carried. Every send starts at the beginning of a quantum (the
; sender waits for one: QUANTUM must be the cluster file's), so the unsafe write always lands
; before the DMA, which the interface runs at the quantum's end.

SIZE = 64
QUANTUM = 64
BUF = 0x20000                           ; the sender's buffer, alone in its page
KBUF = 0x21000                          ; the kernel's copy (method 1)
SPARE = 0x22000                         ; the frame the copy-on-write fault gives the writer
PD = 0x50000
PT = 0x51000

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
        li      r1, 0x30000             ; page faults: copy on write
        li      r2, VEC_PF
        li      r3, cow_fault
        li      r4, GATE_P | GATE_RING0
        call    idt_set
        li      r1, PT                  ; paging on, identity, 1 MiB, writable
        li      r2, 0
        li      r3, PTE_P | PTE_W
        li      r4, 256
        call    pt_fill
        li      r1, PD
        li      r2, 0
        li      r3, PT | PTE_P | PTE_W
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1

        li      r1, 'S'                 ; blocking
        call    fill
        call    sync
        li      r1, 1
        li      r2, 21
        li      r3, BUF
        li      r4, SIZE
        call    net_send
        call    scribble

        li      r1, 'A'                 ; unsafe
        call    fill
        call    sync
        li      r1, 1
        li      r2, 22
        li      r3, BUF
        li      r4, SIZE
        call    net_isend
        mov     r8, r2
        call    scribble
        mov     r1, r8
        call    net_tx_wait

        li      r1, 'B'                 ; (1) kernel copy
        call    fill
        call    sync
        li      r1, KBUF
        li      r2, BUF
        li      r3, SIZE
        call    memcpy
        li      r1, 1
        out     PORT_NIC_COPIES, r1
        li      r1, 1
        li      r2, 23
        li      r3, KBUF
        li      r4, SIZE
        call    net_isend
        mov     r8, r2
        call    scribble
        mov     r1, r8
        call    net_tx_wait

        li      r1, 'C'                 ; (2) wait for the send interrupt
        call    fill
        call    sync
        li      r2, net_tx_irqs
        ld      r9, [r2]
        li      r1, 1
        li      r2, 23 + 1
        li      r3, BUF
        li      r4, SIZE
        call    net_isend
.work:  li      r2, net_tx_irqs         ; other work until the interrupt says the buffer is free
        ld      r1, [r2]
        cmp     r1, r9
        jz      .work
        call    scribble

        li      r1, 'D'                 ; (3) copy on write
        call    fill
        call    sync
        li      r1, 1
        li      r2, 25
        li      r3, BUF
        li      r4, SIZE
        call    net_isend
        mov     r8, r2
        li      r1, PT + (BUF >> 10)    ; the buffer's page read-only until the DMA is done
        li      r2, BUF | PTE_P
        st      [r1], r2
        li      r1, BUF
        invlpg  r1
        call    scribble                ; faults: the kernel copies the page for the writer
        mov     r1, r8
        call    net_tx_wait
        li      r1, BUF                 ; sent: the writer's copy becomes the buffer again
        li      r2, SPARE
        li      r3, 4096
        call    memcpy
        li      r1, PT + (BUF >> 10)
        li      r2, BUF | PTE_P | PTE_W
        st      [r1], r2
        li      r1, BUF
        invlpg  r1
        li      r1, msg_cow
        call    puts
        li      r2, cow_copies
        ld      r1, [r2]
        call    putdec
        call    putnl
        cli
        hlt

fill:                                   ; BUF := SIZE bytes of r1
        mov     r2, r1
        li      r1, BUF
        li      r3, SIZE
        call    memset
        ret

scribble:                               ; the sender goes on: "ZZZZ" over its buffer
        li      r1, BUF
        li      r2, 0x5A5A5A5A
        st      [r1], r2
        ret

sync:                                   ; wait for the start of a quantum (QUANTUM ticks,
.wait:  in      r1, PORT_CLOCK              ; as sends.toml sets): the interface's DMA is then
        andi    r1, r1, QUANTUM - 1         ; serviced next at the end of it, well after the
        cmpi    r1, 8                       ; send and the write that follow
        jae     .wait
        ret

cow_fault:                              ; #PF: a write to the protected buffer page
        push    r1
        push    r2
        push    r3
        push    r4
        push    r5
        push    r6
        li      r1, SPARE               ; the writer gets a copy of the page ...
        li      r2, BUF
        li      r3, 4096
        call    memcpy
        li      r1, PT + (BUF >> 10)    ; ... mapped writable where the buffer was
        li      r2, SPARE | PTE_P | PTE_W
        st      [r1], r2
        li      r1, BUF
        invlpg  r1
        li      r2, cow_copies
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        pop     r6
        pop     r5
        pop     r4
        pop     r3
        pop     r2
        pop     r1
        iret                            ; (iret drops the error code) retry the write

receiver:
        li      r8, 21
.next:  cmpi    r8, 26
        jae     .done
        li      r1, inbox
        li      r2, SIZE
        mov     r3, r8
        call    net_recv
        li      r1, names
        addi    r2, r8, -21
        shli    r2, r2, 2
        add     r1, r1, r2
        ld      r1, [r1]
        call    puts
        li      r1, inbox
        li      r2, 4
        call    putsn
        call    putnl
        addi    r8, r8, 1
        jmp     .next
.done:  cli
        hlt

        .include "console.s"
        .include "idt.s"
        .include "mem.s"
        .include "paging.s"
        .include "net.s"

msg_cow:  .asciz "copy on write: pages copied "
n_block:  .asciz "send blocking: received "
n_unsafe: .asciz "send non-blocking, unprotected: received "
n_copy:   .asciz "send non-blocking, kernel copy: received "
n_intr:   .asciz "send non-blocking, interrupt: received "
n_cow:    .asciz "send non-blocking, copy on write: received "
        .align  4
names:    .word n_block, n_unsafe, n_copy, n_intr, n_cow
cow_copies: .word 0
inbox:    .space SIZE
