; pagefault.s — turn paging on, touch an unmapped page, look at what the #PF handler gets.
;
; Shows:
;   * a two-level page table: one directory entry -> one table whose first 256 entries
;     identity-map the first 1 MiB (linear = physical, so turning paging on moves nothing);
;   * cr3 = the directory, then cr0.PG = 1;
;   * a page-fault handler: cr2 holds the faulting linear address, the error code (at [sp]
;     in the trap frame) says bit 0 protection (1) / not present (0), bit 1 write,
;     bit 2 from ring > 0, bit 4 instruction fetch, bits 5-6 the CPL of the access;
;   * a #PF is a fault: the saved pc ([sp+4]) is the faulting instruction itself, so a handler
;     that fixed the mapping could simply iret and retry it. This one just reports and halts.
;
; Expected: cr2 = 0x00200000, error code = 0x00000002 (not present, write, ring 0).
;
; Run:  toyvisor run guests/examples/pagefault.s

IDT             = 0x10000
PT              = 0x11000
PD              = 0x12000
STACK_TOP       = 0x8000
UNMAPPED        = 0x00200000            ; 2 MiB: beyond the mapped first MiB

start:
        li      sp, STACK_TOP
        li      r1, IDT
        li      r2, 0
        li      r3, 256 * 2
        call    memset32
        li      r1, IDT
        li      r2, VEC_PF
        li      r3, pf_handler
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        lidt    r1

        li      r1, PT                  ; empty table ...
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PT                  ; ... then entries 0..255: frames 0..0xff000, ring 0, writable
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 256
        call    pt_fill
        li      r1, PD                  ; empty directory ...
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PD                  ; ... whose entry 0 (linear 0..4 MiB) is the table
        li      r2, 0
        li      r3, PT | PTE_P | PTE_W | PTE_PL0
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1

        li      r1, msg_on
        call    puts
        li      r2, UNMAPPED
        li      r3, 0x1234
        st      [r2], r3                ; -> #PF
        li      r1, msg_notreached
        call    puts
        cli
        hlt

; Trap frame on entry: [sp] error code, [sp+4] pc of the faulting st, [sp+8] cs, [sp+12] flags,
; [sp+16] old sp.
pf_handler:
        mfcr    r8, cr2
        ld      r9, [sp]
        li      r1, msg_pf
        call    puts
        mov     r1, r8
        call    puthex
        li      r1, msg_err
        call    puts
        mov     r1, r9
        call    puthex
        li      r1, msg_open
        call    puts
        li      r1, msg_np                      ; bit 0
        andi    r2, r9, 1
        cmpi    r2, 0
        jz      .b0
        li      r1, msg_prot
.b0:    call    puts
        li      r1, msg_read                    ; bit 1 / bit 4
        andi    r2, r9, 2
        cmpi    r2, 0
        jz      .b1
        li      r1, msg_write
.b1:    andi    r2, r9, 16
        cmpi    r2, 0
        jz      .b4
        li      r1, msg_fetch
.b4:    call    puts
        li      r1, msg_ring                    ; bits 5-6
        call    puts
        shri    r1, r9, 5
        andi    r1, r1, 3
        call    putdec
        li      r1, msg_pc
        call    puts
        ld      r1, [sp + 4]
        call    puthex
        call    putnl
        cli
        hlt

        .include "console.s"
        .include "mem.s"
        .include "paging.s"
        .include "idt.s"

msg_on:         .asciz  "paging on (first 1 MiB identity-mapped); writing to 0x00200000...\n"
msg_notreached: .asciz  "not reached\n"
msg_pf:         .asciz  "#PF: cr2 = "
msg_err:        .asciz  ", error code = "
msg_open:       .asciz  " ("
msg_np:         .asciz  "not present"
msg_prot:       .asciz  "protection"
msg_read:       .asciz  ", read"
msg_write:      .asciz  ", write"
msg_fetch:      .asciz  ", fetch"
msg_ring:       .asciz  ", ring "
msg_pc:         .asciz  "), at pc "
