; ptbench.s — the page-table-heavy benchmark, native kernel (ring 0, paging on).
;
; "Fork-like": the kernel builds a fresh address space — a new page directory sharing the
; kernel's table, plus new page tables holding N page mappings — switches to it (cr3 write),
; optionally touches every page, prints one summary line and halts. Parameters come from the
; console input (params.s): `[N] [b=B] [m=M] [touch] [quiet]` (b= and m= are for the
; paravirtual kernel, pv.s, and are ignored here). See README.md and docs/ptbench.md.
;
; Design: the new tables are written while they are LIVE page tables. Each new table is linked
; into the current (parent) directory at a window slot and maps itself in its own entry 0, so
; the kernel writes the table's entries through the table itself (the per-table form of the
; recursive page-table trick): every entry store is a store into a frame the MMU is using as a
; page table at that moment. The last store, to entry 0, replaces the self-map with the
; table's first real mapping; then the window is unlinked (directory entry 0, invlpg). A
; shadow-paging VMM therefore traces each entry write (one VMM entry per PTE), as it would for
; any kernel that edits its live tables; building the tables in frames no table references
; (invisible to write tracing until the first cr3 load) would hide the cost this benchmark
; is about.
;
; Physical memory (12 MiB, linear = physical in the kernel's table, which maps 0..4 MiB):
;   0x000000  code, then .data (parameters, buffers)
;   0x100000  interrupt table            0x108000..0x110000  stack
;   0x110000  PD0: the parent's directory (the one the kernel boots with)
;   0x111000  KPT: the kernel's table, identity map of 0..4 MiB, shared by both directories
;   0x112000  PD1: the new directory
;   0x113000  the new page tables (at most MAX_TABLES)
;   0x400000  DATA_BASE: the N mapped frames (page i -> DATA_BASE + i * 4 KiB), up to 12 MiB
; Virtual: 0..4 MiB kernel (both spaces); USER_BASE: the N pages (new space); WIN_BASE: the
; parent's window onto the table under construction.

        .include "layout.s"

IDT             = 0x100000
STACK_TOP       = 0x110000
PD0             = 0x110000
KPT             = 0x111000
PD1             = 0x112000
UPT_BASE        = 0x113000
WIN_BASE        = 0x80000000            ; table j under construction, through itself: WIN_BASE + j*4 MiB
WIN_PDI         = WIN_BASE >> 22
KFLAGS          = PTE_P | PTE_W | PTE_PL0

start:
        li      sp, STACK_TOP
        call    read_input              ; IF is 0 from reset: drain the input before anything else
        call    parse_params
        cmpi    r1, 0
        jnz     fail
        li      r1, IDT
        li      r2, unexpected
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        li      r1, IDT
        lidt    r1

        ; the parent address space: one table identity-mapping 0..4 MiB
        li      r1, KPT
        li      r2, 0
        li      r3, KFLAGS
        li      r4, 1024
        call    pt_fill
        li      r1, PD0
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PD0
        li      r2, 0
        li      r3, KPT | KFLAGS
        call    pd_set
        li      r1, PD0
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1

        call    fork_space
        li      r1, PD1                 ; activate the new address space
        mtcr    cr3, r1
        li      r1, param_touch
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .report
        call    touch_pages
.report:
        li      r1, param_quiet
        ld      r1, [r1]
        cmpi    r1, 0
        jnz     .halt
        call    fmt_summary
        call    print_out
.halt:  cli
        hlt

fail:   call    print_out
        cli
        hlt

; fork_space(): PD1 = a new directory sharing the kernel's table; param_n mappings
; USER_BASE + i*4K -> DATA_BASE + i*4K in new tables, written through the window (see the top).
; Sets res_tables, res_checksum. Clobbers r1..r14 (not sp).
fork_space:
        li      r1, PD1                 ; not a live table yet: plain stores
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PD0
        ld      r3, [r1]
        li      r1, PD1
        st      [r1], r3                ; PD1[0] = PD0[0]: the kernel's table, shared
        li      r8, param_n
        ld      r8, [r8]                ; r8 = mappings still to make
        li      r9, 0                   ; r9 = j, the table
        li      r10, DATA_BASE          ; r10 = frame of the table's first mapping
        li      r11, 0                  ; r11 = checksum
.table: cmpi    r8, 0
        jz      .done
        shli    r12, r9, 12
        li      r1, UPT_BASE
        add     r12, r12, r1            ; r12 = the new table (physical = kernel linear)
        mov     r1, r12
        li      r2, 0
        li      r3, 1024
        call    memset32
        ori     r3, r12, KFLAGS
        st      [r12], r3               ; entry 0 maps the table itself
        shli    r2, r9, 2
        li      r1, PD0 + WIN_PDI * 4
        add     r1, r1, r2
        st      [r1], r3                ; link it into the parent's directory (a live table)
        li      r1, PD1 + USER_PDI * 4
        add     r1, r1, r2
        st      [r1], r3                ; and into the child's
        shli    r13, r9, 22
        li      r1, WIN_BASE
        add     r13, r13, r1            ; r13 = the table, seen through itself
        li      r14, 1024               ; r14 = entries in this table: min(1024, r8)
        cmp     r8, r14
        jae     .full
        mov     r14, r8
.full:  shli    r5, r14, 2
        add     r5, r5, r13             ; end of its entries
        addi    r4, r13, 4              ; entries 1 .. r14-1 first
        li      r7, PAGE_SIZE
        add     r6, r10, r7             ; their frames
.entry: cmp     r4, r5
        jae     .first
        ori     r1, r6, KFLAGS
        st      [r4], r1                ; the page-table write
        add     r11, r11, r6
        addi    r4, r4, 4
        add     r6, r6, r7
        jmp     .entry
.first: ori     r1, r10, KFLAGS
        st      [r13], r1               ; entry 0 last: replaces the self-map
        add     r11, r11, r10
        shli    r2, r9, 2
        li      r1, PD0 + WIN_PDI * 4
        add     r1, r1, r2
        li      r3, 0
        st      [r1], r3                ; unlink the window
        invlpg  r13
        sub     r8, r8, r14
        shli    r1, r14, 12
        add     r10, r10, r1
        addi    r9, r9, 1
        jmp     .table
.done:  li      r1, res_tables
        st      [r1], r9
        li      r1, res_checksum
        st      [r1], r11
        ret

; read_input(): drain the console input (polled) into input_buf / input_len. Clobbers r1..r5.
read_input:
        li      r1, input_buf
        li      r2, INPUT_MAX
        call    read_console
        li      r2, input_len
        st      [r2], r1
        ret

; print_out(): print out_buf (out_len bytes). Clobbers r1..r4.
print_out:
        li      r1, out_len
        ld      r2, [r1]
        li      r1, out_buf
        call    putsn
        ret

; Any trap: report and stop.
unexpected:
        li      r1, msg_unexpected
        call    puts
        ld      r1, [sp + 4]
        call    puthex
        li      r1, msg_errcode
        call    puts
        ld      r1, [sp]
        call    puthex
        call    putnl
        cli
        hlt

        .include "touch.s"
        .include "params.s"
        .include "words.s"
        .include "input.s"
        .include "fmt.s"
        .include "console.s"
        .include "mem.s"
        .include "paging.s"
        .include "idt.s"

msg_unexpected: .asciz  "ptbench: unexpected trap at pc "
msg_errcode:    .asciz  ", error code "
