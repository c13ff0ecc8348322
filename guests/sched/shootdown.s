; shootdown.s — a TLB shootdown across the VM's vCPUs, whatever physical CPUs they run on.
;
; vCPU 0 builds one set of page tables all vCPUs use (identity map of the first 64 KiB, plus the
; page WINDOW mapped to frame OLD), then starts the others.  Each vCPU turns paging on and reads
; WINDOW (its TLB now caches OLD), checks in and sleeps in `hlt`.  vCPU 0 remaps WINDOW to frame
; NEW, flushes its own entry, and sends the others an IPI; each flushes its entry in the handler
; (invlpg) and acknowledges.  After the acknowledgements every vCPU must read NEW's word through
; WINDOW: vCPU 0 prints "shootdown: N vCPUs saw the new mapping" or names a vCPU that kept the
; stale one.  Local timers (period SLEEP) wake a sleeping vCPU too, as a backstop.

PD      = 0x6000
PT      = 0x7000
OLD     = 0x8000
NEW     = 0x9000
WINDOW  = 0x10000               ; page 16: outside the identity map
GEN     = SHARED                ; 1 once the mapping changed
PENDING = SHARED + 4            ; vCPUs that have not flushed yet
ARRIVED = SHARED + 8
DONE    = SHARED + 12
ACKED   = SHARED + 0x40         ; a word per vCPU: flushed
SEEN    = SHARED + 0x100        ; a word per vCPU: what it read through WINDOW at the end
SLEEP   = 5000

start:  jmp     main

        .include "sched.s"
        .include "console.s"
        .include "idt.s"

main:   rdpid   r8
        addi    r1, r8, 1
        shli    r1, r1, 9
        li      sp, STACKS
        add     sp, sp, r1
        cmpi    r8, 0
        jnz     .paging
        ; vCPU 0: the page tables, the words behind the window, the interrupt table
        li      r1, PT | PTE_P | PTE_W
        li      r2, PD
        st      [r2], r1
        li      r3, 0
.map:   shli    r1, r3, 12
        ori     r1, r1, PTE_P | PTE_W
        shli    r4, r3, 2
        addi    r4, r4, PT
        st      [r4], r1
        addi    r3, r3, 1
        cmpi    r3, 16
        jl      .map
        li      r1, OLD | PTE_P | PTE_W
        li      r2, PT + 16 * 4
        st      [r2], r1
        li      r1, 111
        li      r2, OLD
        st      [r2], r1
        li      r1, 222
        li      r2, NEW
        st      [r2], r1
        li      r1, IDT
        li      r2, handler
        li      r3, GATE_P | GATE_RING0
        call    idt_fill
        li      r2, 1                   ; start the others
        li      r4, PARAMS
        ld      r3, [r4 + P_VCPUS]
.next:  cmp     r2, r3
        jae     .paging
        out     PORT_IPI_DEST, r2
        li      r1, start
        out     PORT_CPU_START, r1
        addi    r2, r2, 1
        jmp     .next
.paging:
        li      r1, IDT
        lidt    r1
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        li      r2, WINDOW
        ld      r1, [r2]                ; the TLB caches WINDOW -> OLD
        li      r1, 0b11111110
        out     PORT_PIC_MASK, r1
        li      r4, PARAMS
        ld      r10, [r4 + P_VCPUS]
        addi    r10, r10, -1            ; the others
        cmpi    r8, 0
        jz      boss
        ; another vCPU: check in, sleep until flushed, read through the window
        li      r2, ARRIVED
        li      r1, 1
        xadd    r1, [r2]
        li      r1, SLEEP
        out     PORT_TIMER_PERIOD, r1
        sti
        shli    r9, r8, 2
.sleep: ld      r1, [r9 + ACKED]
        cmpi    r1, 0
        jnz     .woken
        hlt
        jmp     .sleep
.woken: cli
        li      r2, WINDOW
        ld      r1, [r2]
        st      [r9 + SEEN], r1
        li      r2, DONE
        li      r1, 1
        xadd    r1, [r2]
        cli
        hlt

boss:   li      r2, ARRIVED
.wait:  pause
        ld      r1, [r2]
        cmp     r1, r10
        jnz     .wait
        st      [r2 + PENDING - ARRIVED], r10
        li      r1, NEW | PTE_P | PTE_W ; remap, flush here, then everywhere
        li      r2, PT + 16 * 4
        st      [r2], r1
        li      r1, WINDOW
        invlpg  r1
        li      r1, 1
        li      r2, GEN
        st      [r2], r1
        li      r1, VEC_IPI0 | IPI_TO_OTHERS
        out     PORT_IPI_SEND, r1
        li      r2, PENDING
.acks:  pause
        ld      r1, [r2]
        cmpi    r1, 0
        jnz     .acks
        li      r2, DONE
.done:  pause
        ld      r1, [r2]
        cmp     r1, r10
        jnz     .done
        li      r2, WINDOW
        ld      r1, [r2]
        li      r2, SEEN
        st      [r2], r1                ; vCPU 0's own reading
        li      r9, 0                   ; check every vCPU's SEEN
        li      r11, NEW
        ld      r11, [r11]
.check: cmp     r9, r10
        jg      .ok
        shli    r1, r9, 2
        ld      r1, [r1 + SEEN]
        cmp     r1, r11
        jnz     .stale
        addi    r9, r9, 1
        jmp     .check
.ok:    li      r1, msg_ok
        call    puts
        addi    r1, r10, 1
        call    putdec
        li      r1, msg_ok2
        call    puts
        cli
        hlt
.stale: li      r1, msg_stale
        call    puts
        mov     r1, r9
        call    putdec
        call    putnl
        cli
        hlt

; any interrupt (the shootdown IPI, a timer tick): once the mapping changed, flush WINDOW's entry
; and acknowledge, once per vCPU
handler:
        push    r1
        push    r2
        push    r3
        li      r2, GEN
        ld      r1, [r2]
        cmpi    r1, 0
        jz      .out
        rdpid   r3
        shli    r3, r3, 2
        ld      r1, [r3 + ACKED]
        cmpi    r1, 0
        jnz     .out
        li      r1, WINDOW
        invlpg  r1
        li      r1, 1
        st      [r3 + ACKED], r1
        li      r2, PENDING
        li      r1, -1
        xadd    r1, [r2]
.out:   pop     r3
        pop     r2
        pop     r1
        iret

msg_ok:    .asciz "shootdown: "
msg_ok2:   .asciz " vCPUs saw the new mapping\n"
msg_stale: .asciz "shootdown: stale mapping on vCPU "
