; sched.s — tasks: setup, round-robin scheduling, context switch, the final summary.
;
; A task that is not running is fully described by its TCB and the trap frame on its own
; kernel stack (T_FRAME). Switching = pick another TCB, load its cr3 and ksp0, and return its
; frame to trap_return, which irets into it. Only the address-space construction is here: the
; first frame, the scheduler and the summary are shared with the port (common_sched.s).

; task_init(r1 = task): build the task's address space and its first trap frame.
;                                                                    clobbers: r1..r7
task_init:
        push    r8
        mov     r8, r1
        ; PDE 0: the shared kernel page table, PL0 -> ring 3 cannot touch kernel pages
        ld      r1, [r8 + T_PD]
        li      r2, 0
        li      r3, KPT | PTE_P | PTE_W | PTE_PL0
        call    pd_set
        ; PDE 1: this task's own user page table, PL3
        ld      r1, [r8 + T_PD]
        li      r2, UTEXT_BASE
        ld      r3, [r8 + T_UPT]
        ori     r3, r3, PTE_P | PTE_W | PTE_PL3
        call    pd_set
        ; user text: the user_image frames, read-only, PL3 (index 0 of the user table)
        ld      r1, [r8 + T_UPT]
        li      r2, user_image
        li      r3, PTE_P | PTE_PL3
        li      r4, UTEXT_PAGES
        call    pt_fill
        ; user stack: this task's own frame, writable, PL3
        ld      r1, [r8 + T_UPT]
        li      r2, USTACK_BASE
        ld      r3, [r8 + T_USTACK]
        ori     r3, r3, PTE_P | PTE_W | PTE_PL3
        call    pt_set
        TASK_FIRST_FRAME                ; ../common_sched.s
        pop     r8
        ret

        .data
msg_halt:       .asciz  " ticks since reset; halting"
        .text
