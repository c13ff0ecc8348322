; exposing.s — the kernel of toyvisor.testing's exposure tests (tests/testing/kernels/*/kernel.s).
;
; Each kernel.s next to this file defines the macros `variant_mapping` (r2 = a linear page,
; r3 = its page-table entry: a mapping made at boot) and `variant_syscall` (what `int 0x81`
; does before it returns to ring 3; empty in most) and includes it.  The kernel runs
; one user program at ring 3 (the user-program convention of docs/testing-isolation.md) in an
; address space that identity-maps the first 4 MiB at PL0, the user text page read-only at PL3
; and the user stack page writable at PL3; then it makes the variant's mapping — in `sound`
; the user stack again (no bug), in the others a kernel page.  The labels name
; nothing the checker could recognise (KDIR, KTAB, KVARS): it must find the pages from the
; machine.  Any fault or `int 0x80` (the program's exit) stops the machine.

KDIR            = 0x00010000    ; page directory
KTAB            = 0x00011000    ; the kernel page table (identity map of 0–4 MiB)
USTACK          = 0x00012000    ; the user stack frame
KSTACK_TOP      = 0x00014000    ; kernel stack (ksp0)
IDT             = 0x00015000

        .text
start:  li      sp, KSTACK_TOP
        li      r1, IDT                 ; every vector stops the machine ...
        li      r2, stop
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        li      r1, IDT                 ; ... and `int 0x80` from ring 3 too (the exit)
        li      r2, 0x80
        li      r3, stop
        li      r4, GATE_P | GATE_DPL3 | GATE_RING0
        call    idt_set
        li      r2, 0x81                ; ... and `int 0x81`, the variant's system call
        li      r3, sys81
        li      r4, GATE_P | GATE_DPL3 | GATE_RING0
        call    idt_set
        lidt    r1
        li      r1, KTAB
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 1024
        call    pt_fill
        li      r1, KTAB                ; user text: read-only, PL3
        li      r2, user_page
        li      r3, user_page | PTE_P | PTE_PL3
        call    pt_set
        li      r2, USTACK              ; user stack: writable, PL3
        li      r3, USTACK | PTE_P | PTE_W | PTE_PL3
        call    pt_set
        variant_mapping                 ; the variant's mapping
        call    pt_set
        li      r1, KDIR
        li      r2, 0
        li      r3, KTAB | PTE_P | PTE_W | PTE_PL3
        call    pd_set
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        li      r1, KSTACK_TOP
        mtcr    ksp0, r1
        li      r1, boots               ; kernel data the kernel itself uses
        ld      r2, [r1]
        addi    r2, r2, 1
        st      [r1], r2
        li      r1, USTACK + PAGE_SIZE  ; the first frame: sp, flags, cs, pc, error code
        push    r1
        li      r1, 0
        push    r1
        li      r1, 3
        push    r1
        li      r1, user_program
        push    r1
        li      r1, 0
        push    r1
        iret
stop:   cli
        hlt
sys81:  variant_syscall
        iret

        .include "idt.s"
        .include "paging.s"

        .align  PAGE_SIZE
user_page:
user_program_exit:
        int     0x80
user_program:
        .space  PAGE_SIZE - 4
user_program_end:

        .data
        .align  PAGE_SIZE
KVARS:
boots:  .word   0

; ring 3 may touch its text page and its stack page, nothing else
user_memory_text = user_page
user_memory_text_end = user_page + PAGE_SIZE
user_memory_stack = USTACK
user_memory_stack_end = USTACK + PAGE_SIZE
