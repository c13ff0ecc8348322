; nanobench.s — the Adams & Agesen (ASPLOS 2006) nanobenchmarks on the toyvisor ISA.
;
; Each benchmark lives in its own file (included below) as a routine `bench_<name>` that runs
; a tight loop of N iterations of one operation, reading the clock (`in rX, PORT_CLOCK`) just
; before and just after the loop, and returns r1 = elapsed ticks (r2 = an observed value for
; popf and cpl). Every loop counts down in r10 (addi / cmpi / jnz: 3 instructions of overhead
; per iteration, measured on its own by the `empty` baseline). The routines clobber any
; register but sp.
;
; Output, one line per benchmark:
;   <name>: <N> iterations, <T> ticks, <T/N> ticks/iter
; then  "popf: IF after popf = <observed IF>",  "cpl: rdcs = <observed CPL>"  and  "nanobench: done".
;
; Console input selects what runs (select.s): none = every benchmark, N iterations each, as
; above; "<name> [<iterations>] [quiet]" = only that benchmark (its line(s), then
; "nanobench: done"; nothing with quiet), N or <iterations> times. The input is read (and
; drained) first, while IF is still 0 from reset.
;
; Machine set-up: a 256-gate table (every vector goes to `unexpected` except the ones the
; benchmarks use), ksp0, and paging on with the first 1 MiB identity-mapped at PL3 (ring 3
; runs the syscall loop from the same pages). Interrupts stay off throughout (IF = 0) except
; inside the popf loop; no timer is started.

        .equ    N, 100                  ; iterations per benchmark

IDT             = 0x20000
PD              = 0x21000
PT              = 0x22000               ; the one page table: linear 0 .. 4 MiB
KSTACK_TOP      = 0x30000               ; ring-0 stack
TSTACK_TOP      = 0x32000               ; ksp0: where ring-3 traps land
USTACK_TOP      = 0x34000               ; ring-3 stack (the syscall loop)
PF_VA           = 0x00200000            ; pgfault: a page left not present (beyond the 1 MiB map)
PF_FRAME        = 0x60000               ;          the frame the #PF handler maps there
PTE_VA          = 0x00201000            ; ptemod:  the page whose frame is switched ...
PTE_FRAME_A     = 0x61000               ;          ... between these two frames
PTE_FRAME_B     = 0x62000
PT_ENTRY_PF     = PT + ((PF_VA >> 12) & 1023) * 4
PT_ENTRY_PTE    = PT + ((PTE_VA >> 12) & 1023) * 4
RING0_GATE      = GATE_P | GATE_DPL0 | GATE_RING0
SYSCALL_GATE    = GATE_P | GATE_DPL3 | GATE_RING0

; run one benchmark and print its line
        .macro  BENCH routine, name
        call    routine
        mov     r14, r2                 ; the observed value, if any
        mov     r2, r1
        li      r1, name
        call    report
        .endm

start:
        li      sp, KSTACK_TOP
        ; console input first: drain it before anything could set IF (IRQ 1 is level-triggered)
        call    read_input
        call    parse_input
        ; interrupt table: everything is unexpected ...
        li      r1, IDT
        li      r2, unexpected
        li      r3, RING0_GATE
        call    idt_fill
        ; ... but the gates the benchmarks use
        li      r1, IDT
        li      r2, 0x80                ; syscall: the null syscall, callable from ring 3
        li      r3, sys_null
        li      r4, SYSCALL_GATE
        call    idt_set
        li      r1, IDT
        li      r2, 0x81                ; syscall: leave ring 3 for good (ends the syscall loop)
        li      r3, sys_back
        li      r4, SYSCALL_GATE
        call    idt_set
        li      r1, IDT
        li      r2, VEC_PF
        li      r3, pf_handler
        li      r4, RING0_GATE
        call    idt_set
        li      r1, IDT
        li      r2, VEC_DE
        li      r3, de_handler
        li      r4, RING0_GATE
        call    idt_set
        li      r1, IDT
        lidt    r1
        li      r1, TSTACK_TOP
        mtcr    ksp0, r1

        ; paging: one table, first 1 MiB identity-mapped, ring 3 allowed (PL3)
        li      r1, PT
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PT
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL3
        li      r4, 256
        call    pt_fill
        li      r1, PD
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PD
        li      r2, 0
        li      r3, PT | PTE_P | PTE_W | PTE_PL3
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1

        li      r1, sel_entry
        ld      r1, [r1]
        cmpi    r1, 0
        jz      run_all
        jmp     run_selected            ; one benchmark, then halt

run_all:
        BENCH   bench_empty, name_empty
        BENCH   bench_syscall, name_syscall
        BENCH   bench_in, name_in
        BENCH   bench_cr8wr, name_cr8wr
        BENCH   bench_callret, name_callret
        BENCH   bench_pgfault, name_pgfault
        BENCH   bench_divzero, name_divzero
        BENCH   bench_ptemod, name_ptemod
        BENCH   bench_popf, name_popf
        li      r1, msg_popf
        call    puts
        mov     r1, r14
        call    putdec
        call    putnl
        BENCH   bench_cpl, name_cpl
        li      r1, msg_cpl
        call    puts
        mov     r1, r14
        call    putdec
        call    putnl

        li      r1, msg_done
        call    puts
        cli
        hlt

; report(r1 = name, r2 = ticks): "<name>: N iterations, T ticks, T/N ticks/iter\n"
; (N: the iteration count in use; T/N with one decimal, truncated). Clobbers r1..r5, r9, r11, r12.
report:
        mov     r9, r2
        call    puts
        li      r1, msg_colon
        call    puts
        li      r1, iterations
        ld      r1, [r1]
        call    putdec
        li      r1, msg_iters
        call    puts
        mov     r1, r9
        call    putdec
        li      r1, msg_ticks
        call    puts
        li      r2, 10
        mul     r1, r9, r2              ; tenths of a tick per iteration
        li      r2, iterations
        ld      r2, [r2]
        divu    r1, r1, r2
        li      r2, 10
        divu    r11, r1, r2
        remu    r12, r1, r2
        mov     r1, r11
        call    putdec
        li      r1, '.'
        call    putc
        mov     r1, r12
        call    putdec
        li      r1, msg_per_iter
        call    puts
        ret

; Any other trap: report and stop.
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

        .include "empty.s"
        .include "syscall.s"
        .include "in.s"
        .include "cr8wr.s"
        .include "callret.s"
        .include "pgfault.s"
        .include "divzero.s"
        .include "ptemod.s"
        .include "popf.s"
        .include "cpl.s"

        .include "console.s"
        .include "mem.s"
        .include "paging.s"
        .include "idt.s"
        .include "words.s"
        .include "input.s"
        .include "select.s"             ; code, then its data: keep it after the other code

name_empty:     .asciz  "empty"
name_syscall:   .asciz  "syscall"
name_in:        .asciz  "in"
name_cr8wr:     .asciz  "cr8wr"
name_callret:   .asciz  "call/ret"
name_pgfault:   .asciz  "pgfault"
name_divzero:   .asciz  "divzero"
name_ptemod:    .asciz  "ptemod"
name_popf:      .asciz  "popf"
name_cpl:       .asciz  "cpl"
msg_colon:      .asciz  ": "
msg_iters:      .asciz  " iterations, "
msg_ticks:      .asciz  " ticks, "
msg_per_iter:   .asciz  " ticks/iter\n"
msg_popf:       .asciz  "popf: IF after popf = "
msg_cpl:        .asciz  "cpl: rdcs = "
msg_done:       .asciz  "nanobench: done\n"
msg_unexpected: .asciz  "nanobench: unexpected trap at pc "
msg_errcode:    .asciz  ", error code "
