; hostile.s — a guest with 64 KiB of RAM that tries to reach memory beyond it: first with paging
; off (physical addresses past its RAM), then with its own page tables mapping "foreign" frames.
; Every attempt must fault inside the guest (#GP(0), natively as under a VMM); the #GP handler
; counts the fault and skips the instruction. Prints "hostile: N faults".
PT_DIR  = 0xA000
PT_TAB  = 0xB000
IDT     = 0x8000
start:  li      sp, 0x7000
        li      r1, IDT
        li      r2, gp_handler
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        li      r1, IDT
        lidt    r1
        li      r8, 0                   ; faults seen
        li      r9, 0x10000             ; first physical address beyond RAM
        li      r10, 64
.scan:  ld      r2, [r9]
        st      [r9], r10
        li      r3, 0x40000
        add     r9, r9, r3
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .scan
        ; page tables: own 64 KiB identity-mapped, then 32 pages of foreign frames
        li      r1, PT_DIR
        li      r2, 0
        li      r3, 2048
        call    memset32
        li      r1, PT_TAB
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 16
        call    pt_fill
        li      r1, PT_TAB + 16 * 4
        li      r2, 0x100000
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 32
        call    pt_fill
        li      r1, PT_DIR
        li      r2, 0
        li      r3, PT_TAB | PTE_P | PTE_W | PTE_PL0
        call    pd_set
        li      r1, PT_DIR
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        li      r9, 0x10000
        li      r10, 32
.scan2: ld      r2, [r9]
        st      [r9], r10
        li      r3, PAGE_SIZE
        add     r9, r9, r3
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .scan2
        li      r1, msg
        call    puts
        mov     r1, r8
        call    putdec
        call    putnl
        cli
        hlt

gp_handler:
        addi    r8, r8, 1
        ld      r11, [sp + 4]           ; saved pc: the faulting ld/st
        addi    r11, r11, 4
        st      [sp + 4], r11
        iret

        .include "console.s"
        .include "mem.s"
        .include "paging.s"
        .include "idt.s"
msg:    .asciz  "hostile: "
