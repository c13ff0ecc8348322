; copies.s — the seeds' five-copy path against the user-level interface, side by side.
;
; Each node runs a kernel and one ring-3 process with paging on. Node 0's process sends the
; same 64-byte message to node 1's process twice:
;   1. through the kernel (int 0x80 SYS_SEND / SYS_RECV on port 1): user buffer → kernel buffer
;      (a CPU copy) → interface RAM (DMA) → the other interface's RAM (the wire) → kernel buffer
;      (DMA) → user buffer (a CPU copy): five copies;
;   2. through the interface RAM mapped into the process (port 2): the process writes the
;      message straight into a transmit slot and hands it over by setting the slot's state word
;      (no system call, no DMA); the receiver's process finds it in a receive slot and copies it
;      out: three copies.
; The kernel declares its own CPU copies with PORT_NIC_COPIES, the process its copies in the
; slot header's copies word; the interface counts the DMA and wire copies. `toyvisor cluster
; run guests/multicomputer/copies.toml` shows the two messages' copy paths.
; The mapped slot layout assumes the cluster file's [interface] (8 + 8 slots of 1024 bytes).

KSTACK   = 0x40000
IDT      = 0x30000
PD       = 0x50000
PT       = 0x51000
KBUF     = 0x52000
USTACK   = 0x61000                      ; its page (0x60000) is the process's
SLOT     = 32 + 1024
TXSLOTS  = 8
SIZE     = 64
SYS_SEND = 1
SYS_RECV = 2
SYS_EXIT = 3
SYS_PUTS = 4
SYS_WINDOW = 5

start:
        li      sp, KSTACK
        li      r1, IDT
        call    net_init
        li      r1, IDT
        li      r2, 0x80
        li      r3, sys_entry
        li      r4, GATE_P | GATE_DPL3 | GATE_RING0
        call    idt_set
        li      r1, KSTACK
        mtcr    ksp0, r1
        call    net_node
        mov     r8, r1
        cmpi    r8, 2
        jb      .paging
        cli                             ; only nodes 0 and 1 take part
        hlt
.paging:                                ; identity map the 1 MiB of RAM, kernel-only ...
        li      r1, PT
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 256
        call    pt_fill
        li      r1, PT + (user_begin >> 10)   ; ... but the process's code and data
        li      r2, user_begin
        li      r3, PTE_P | PTE_W | PTE_PL3
        li      r4, (user_end - user_begin) >> 12
        call    pt_fill
        li      r1, PT + (USTACK - 0x1000 >> 10)  ; and its stack
        li      r2, USTACK - 0x1000
        li      r3, PTE_P | PTE_W | PTE_PL3
        li      r4, 1
        call    pt_fill
        li      r1, NIC_CMD_WINDOW      ; and the interface RAM: the user-level interface
        out     PORT_NIC_CMD, r1
        in      r9, PORT_NIC_ADDR
        shri    r1, r9, 10
        li      r2, PT
        add     r1, r1, r2
        mov     r2, r9
        li      r3, PTE_P | PTE_W | PTE_PL3
        li      r4, (2 * TXSLOTS * SLOT + 0xFFF) >> 12
        call    pt_fill
        li      r1, PD
        li      r2, 0
        li      r3, PT | PTE_P | PTE_W | PTE_PL3
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        li      r1, USTACK              ; into the process: a hand-made trap frame
        push    r1
        li      r1, FLAG_IF             ; interrupts stay on in ring 3
        push    r1
        li      r1, 3
        push    r1
        li      r1, user_main
        push    r1
        li      r1, 0
        push    r1
        mov     r1, r8                  ; the process learns its node number in r1
        iret

; ---- the kernel's system calls: r1 = number, r2..r4 arguments, result in r1 ---------------
sys_entry:
        cmpi    r1, SYS_SEND
        jz      sys_send
        cmpi    r1, SYS_RECV
        jz      sys_recv
        cmpi    r1, SYS_PUTS
        jz      sys_puts
        cmpi    r1, SYS_WINDOW
        jz      sys_window
        cli                             ; SYS_EXIT (and anything else)
        hlt

sys_send:                               ; r2 = dest, r3 = user buffer, r4 = length
        push    r2
        push    r4
        li      r1, KBUF                ; copy 1: user buffer → kernel buffer
        mov     r2, r3
        mov     r3, r4
        call    memcpy
        li      r1, 1
        out     PORT_NIC_COPIES, r1     ; declare it
        pop     r4
        pop     r1
        li      r2, 1
        li      r3, KBUF
        call    net_send                ; copy 2 is the interface's DMA
        iret

sys_recv:                               ; r2 = user buffer, r3 = room → r1 = length
        push    r2
        li      r1, KBUF
        mov     r2, r3
        li      r3, 1
        call    net_recv                ; copy 4: DMA into the kernel buffer
        mov     r3, r2
        pop     r1
        push    r3
        li      r2, KBUF
        call    memcpy                  ; copy 5: kernel buffer → user buffer
        li      r1, 1
        out     PORT_NIC_COPIES, r1     ; declared for the message just received
        pop     r1
        iret

sys_puts:
        mov     r1, r2
        call    puts
        iret

sys_window:
        li      r1, NIC_CMD_WINDOW
        out     PORT_NIC_CMD, r1
        in      r1, PORT_NIC_ADDR
        iret

        .include "console.s"
        .include "idt.s"
        .include "mem.s"
        .include "paging.s"
        .include "net.s"

; ---- the process (ring 3, its own pages) ---------------------------------------------------
        .align  4096
user_begin:
user_main:
        mov     r8, r1                  ; my node
        li      r1, SYS_WINDOW
        int     0x80
        mov     r9, r1                  ; the interface RAM, mapped
        cmpi    r8, 0
        jnz     receiver
        ; --- node 0: the kernel path, then the mapped path
        li      r1, SYS_SEND
        li      r2, 1
        li      r3, message
        li      r4, SIZE
        int     0x80
.slot:  ld      r1, [r9]                ; transmit slot 0 free?
        cmpi    r1, 0
        jnz     .slot
        addi    r1, r9, 32              ; copy 1: user buffer → interface RAM
        li      r2, message
        li      r3, SIZE
        call    ucopy
        li      r1, 1
        st      [r9 + 4], r1            ; to node 1
        li      r1, 2
        st      [r9 + 8], r1            ; port 2
        li      r1, SIZE
        st      [r9 + 12], r1
        li      r1, 1
        st      [r9 + 16], r1           ; one CPU copy so far
        st      [r9], r1                ; state 1: the interface's to send
        li      r1, SYS_PUTS
        li      r2, msg_sent
        int     0x80
        li      r1, SYS_EXIT
        int     0x80

receiver:
        li      r1, SYS_RECV
        li      r2, inbox
        li      r3, SIZE
        int     0x80
        li      r2, inbox
        call    check
        li      r1, SYS_PUTS
        li      r2, msg_kernel
        int     0x80
        li      r1, SYS_PUTS
        mov     r2, r10
        int     0x80
        li      r10, TXSLOTS * SLOT     ; the receive slots follow the transmit slots
        add     r10, r10, r9
.poll:  ld      r1, [r10]               ; receive slot 0 full? (the only one in use here)
        cmpi    r1, 1
        jnz     .poll
        li      r1, inbox2              ; copy 3: interface RAM → user buffer
        addi    r2, r10, 32
        li      r3, SIZE
        call    ucopy
        ld      r1, [r10 + 16]
        addi    r1, r1, 1
        st      [r10 + 16], r1          ; declare it
        li      r1, 0
        st      [r10], r1               ; the slot is free again
        li      r2, inbox2
        call    check
        li      r1, SYS_PUTS
        li      r2, msg_user
        int     0x80
        li      r1, SYS_PUTS
        mov     r2, r10
        int     0x80
        li      r1, SYS_EXIT
        int     0x80

check:                                  ; r2 = received copy: r10 = "ok\n" or "WRONG\n"
        li      r3, message
        li      r4, SIZE
        add     r4, r4, r3
.loop:  cmp     r3, r4
        jae     .same
        ld      r5, [r2]
        ld      r6, [r3]
        cmp     r5, r6
        jnz     .diff
        addi    r2, r2, 4
        addi    r3, r3, 4
        jmp     .loop
.same:  li      r10, msg_ok
        ret
.diff:  li      r10, msg_wrong
        ret

ucopy:                                  ; the process's own copy (its pages): r1 = dst,
        add     r3, r3, r2              ; r2 = src, r3 = len, all 4-aligned
.loop:  cmp     r2, r3
        jae     .done
        ld      r4, [r2]
        st      [r1], r4
        addi    r1, r1, 4
        addi    r2, r2, 4
        jmp     .loop
.done:  ret

msg_sent:   .asciz "copies: sent through the kernel and through the mapped interface\n"
msg_kernel: .asciz "copies: kernel path message "
msg_user:   .asciz "copies: user-level path message "
msg_ok:     .asciz "ok\n"
msg_wrong:  .asciz "WRONG\n"
        .align  4
message:    .ascii "one message, two ways: through the kernel, or straight to the card!!"
inbox:      .space SIZE
inbox2:     .space SIZE
        .align  4096
user_end:
