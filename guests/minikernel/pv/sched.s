; sched.s — tasks: setup, round-robin scheduling, context switch, the final summary
; (paravirtual port: page tables are built and switched with hypercalls).
;
; A task that is not running is fully described by its TCB and the trap frame on its own
; kernel stack (T_FRAME). Switching = pick another TCB, switch to its page directory
; (mmuext new_baseptr) and ring-1 stack (stack_switch) in one multicall, and return its frame
; to trap_return, which iret-hypercalls into it. Only the address-space construction is here:
; the first frame, the scheduler and the summary are the native kernel's (../common_sched.s).

; task_init(r1 = task): allocate the task's frames, build its address space through the VMM and
; its first trap frame. The page directory and the user page table are fresh pages: zeroed while
; still ordinary writable memory, then remapped read-only, pinned, and filled with one
; mmu_update — all in one multicall (one VMM entry).                 clobbers: r1..r7
task_init:
        push    r8
        push    r9
        push    r10
        push    r11
        mov     r8, r1
        ; frames: page directory, user page table, user stack, kernel stack
        call    alloc_page              ; r1 = pfn, r2 = its virtual address, r3 = machine address
        mov     r9, r2                  ; r9 = PD (virtual)
        st      [r8 + T_PD], r3
        call    alloc_page
        mov     r10, r2                 ; r10 = UPT (virtual)
        st      [r8 + T_UPT], r3
        call    alloc_page
        st      [r8 + T_USTACK], r3
        call    alloc_page
        addi    r2, r2, PAGE_SIZE
        st      [r8 + T_KTOP], r2
        mov     r1, r9                  ; zero both tables (they are not page tables yet)
        li      r2, 0
        li      r3, 1024
        call    memset32
        mov     r1, r10
        li      r2, 0
        li      r3, 1024
        call    memset32
        ; the mmu_update requests {machine address of the entry, new entry}
        li      r11, mmu_reqs
        ; user text: the user_image frames, read-only, PL3 (entries 0.. of the user table)
        li      r7, 0
.text:  cmpi    r7, UTEXT_PAGES
        jge     .stack
        ld      r1, [r8 + T_UPT]
        shli    r2, r7, 2
        add     r1, r1, r2
        st      [r11], r1
        li      r1, p2m
        ld      r1, [r1]
        li      r2, user_image / PAGE_SIZE
        add     r2, r2, r7
        call    pv_ma
        ori     r1, r1, PTE_P | PTE_PL3
        st      [r11 + 4], r1
        addi    r11, r11, MMU_REQ_SIZE
        addi    r7, r7, 1
        jmp     .text
        ; user stack: this task's own frame, writable, PL3
.stack: ld      r1, [r8 + T_UPT]
        addi    r1, r1, ((USTACK_BASE >> 12) & 1023) * 4
        st      [r11], r1
        ld      r1, [r8 + T_USTACK]
        ori     r1, r1, PTE_P | PTE_W | PTE_PL3
        st      [r11 + 4], r1
        addi    r11, r11, MMU_REQ_SIZE
        ; PDE 1: the user page table, PL3
        ld      r1, [r8 + T_PD]
        addi    r1, r1, (UTEXT_BASE >> 22) * 4
        st      [r11], r1
        ld      r1, [r8 + T_UPT]
        ori     r1, r1, PTE_P | PTE_W | PTE_PL3
        st      [r11 + 4], r1
        addi    r11, r11, MMU_REQ_SIZE
        ; every other present PDE that maps the kernel (below kernel_pdes, always below the
        ; VMM's area): shared with the boot directory, whose page tables map the kernel at PL1,
        ; so ring 3 gets a protection #PF
        li      r7, 0
.pde:   li      r1, kernel_pdes
        ld      r1, [r1]
        cmp     r7, r1
        jae     .batch
        cmpi    r7, PV_VMM_PDE
        jge     .batch
        cmpi    r7, UTEXT_BASE >> 22
        jz      .nextpde
        li      r1, boot_pd
        ld      r1, [r1]
        shli    r2, r7, 2
        add     r1, r1, r2
        ld      r2, [r1]
        andi    r1, r2, PTE_P
        cmpi    r1, 0
        jz      .nextpde
        li      r1, mmu_reqs_end
        cmp     r11, r1
        jae     .full
        ld      r1, [r8 + T_PD]
        shli    r3, r7, 2
        add     r1, r1, r3
        st      [r11], r1
        st      [r11 + 4], r2
        addi    r11, r11, MMU_REQ_SIZE
.nextpde:
        addi    r7, r7, 1
        jmp     .pde
.full:  li      r1, msg_toomany
        jmp     boot_panic
        ; the batch: both tables read-only in the kernel's view, pinned, then filled
.batch: li      r1, mc_batch
        call    mc_reset
        li      r1, HYPERVISOR_update_va_mapping
        mov     r2, r10
        ld      r3, [r8 + T_UPT]
        ori     r3, r3, PTE_P | PTE_PL1
        li      r4, UVMF_INVLPG
        call    mc_add
        li      r1, HYPERVISOR_update_va_mapping
        mov     r2, r9
        ld      r3, [r8 + T_PD]
        ori     r3, r3, PTE_P | PTE_PL1
        li      r4, UVMF_INVLPG
        call    mc_add
        li      r1, HYPERVISOR_mmuext_op
        li      r2, MMUEXT_PIN_TABLE
        ld      r3, [r8 + T_UPT]
        shri    r3, r3, MFN_SHIFT
        call    mc_add
        li      r1, HYPERVISOR_mmuext_op
        li      r2, MMUEXT_PIN_DIRECTORY
        ld      r3, [r8 + T_PD]
        shri    r3, r3, MFN_SHIFT
        call    mc_add
        li      r1, HYPERVISOR_mmu_update
        li      r2, mmu_reqs
        sub     r3, r11, r2
        shri    r3, r3, 3               ; count
        call    mc_add
        call    mc_run                  ; panics if any call failed
        TASK_FIRST_FRAME                ; ../common_sched.s (FLAG_IF: iret clears upcall_mask)
        pop     r11
        pop     r10
        pop     r9
        pop     r8
        ret

        .data
msg_halt:       .asciz  " ticks of virtual time; shutting down"
        .text
