; kernel.s — toyvisor minikernel, paravirtualized (docs/paravirtual-abi.md): entry, boot, task table.
;
; The port of ../kernel.s to the `paravirtual` VMM, as XenoLinux is Linux ported to Xen. The
; kernel runs in ring 1 and never executes a privileged instruction: where the native kernel
; writes the interrupt table, cr3, ksp0, the timer, IF, cr2 or the console port, this one makes
; a hypercall (`int 0x82`, guests/lib/pv.s) or touches the shared_info page.
;
; Boot: the VMM starts us in ring 1 with paging on, events masked, the whole domain mapped at
; virtual = pseudo-physical (PL1), r1 = start_info, sp = a stack it set aside. We
;   1. register the virtual trap table (`int 0x80` *fast*) and the event callback;
;   2. build each task's address space from free pages — page directory + user page table zeroed,
;      remapped read-only, pinned and filled with mmu_update, one multicall per task;
;   3. bind VIRQ_TIMER to an event channel and arm the one-shot timer (set_timer_op);
;   4. enter task 1 with new_baseptr + stack_switch (one multicall) and the iret hypercall.
;
; Unchanged from the native kernel and included from there: ../layout.s (constants: frame and
; TCB layouts, syscall ABI, user addresses), ../user.s (the two ring-3 tasks), and the shared,
; architecture-independent halves of the trap, scheduler and syscall layers: ../common_trap.s,
; ../common_sched.s, ../common_sys.s, which call on the macros defined below (the native kernel
; defines its own). Ported: trap.s, sched.s, sys.s (diff them against ../ to see the port). Libraries: pv.s (the ABI),
; pv_console.s (console.s's routines over console_io), mem.s.

        .include "../layout.s"

VEC_EVENT       = 0x100         ; F_VEC of an upcall frame (not a CPU vector)
MMU_REQS_MAX    = 128           ; mmu_update requests per task_init batch

        .text
start:                                  ; ring 1; r1 = start_info, sp = the VMM's boot stack
        call    pv_start
        cmpi    r1, 0
        jnz     bad_start
        call    front_init              ; split-driver front-ends, if the toolstack wired any
        li      r1, msg_banner
        call    puts
        li      r1, start_info
        ld      r1, [r1]
        ld      r1, [r1 + SI_DOMID]
        call    putdec
        li      r1, msg_banner2
        call    puts
        li      r1, nr_pages
        ld      r1, [r1]
        call    putdec
        li      r1, msg_banner3
        call    puts

        ; --- 1. virtual trap table and event callback ----------------------------------------
        li      r1, trap_table
        call    hyp_set_trap_table
        li      r2, msg_traps
        cmpi    r1, 0
        jl      boot_fail
        li      r1, isr_event
        call    hyp_set_callbacks
        li      r2, msg_callbacks
        cmpi    r1, 0
        jl      boot_fail

        ; --- 2. address spaces (the tasks' user area must be free in the boot directory) ------
        li      r1, boot_pd
        ld      r1, [r1]
        ld      r2, [r1 + (UTEXT_BASE >> 22) * 4]
        andi    r2, r2, PTE_P
        cmpi    r2, 0
        li      r1, msg_overlap
        jnz     boot_panic
        li      r1, nr_pages            ; the kernel's PDEs: those of the domain's memory
        ld      r1, [r1]
        shli    r1, r1, 12
        addi    r1, r1, -1
        call    kernel_pde_limit
        li      r1, start_info          ; (and of the pages start_info points at, wherever
        ld      r1, [r1]                ; the VMM put them)
        call    kernel_pde_limit
        li      r1, shared_info
        ld      r1, [r1]
        call    kernel_pde_limit
        li      r1, p2m
        ld      r1, [r1]
        call    kernel_pde_limit
        li      r1, task1
        call    task_init
        li      r1, task2
        call    task_init
        li      r1, msg_paging
        call    puts

        ; --- 3. timer: VIRQ_TIMER on an event channel, one-shot deadlines --------------------------
        li      r1, VIRQ_TIMER
        call    hyp_evtchn_bind_virq
        li      r2, msg_bind
        cmpi    r1, 0
        jl      boot_fail
        li      r2, timer_port
        st      [r2], r1
        li      r2, msg_port
        cmpi    r1, 32
        jge     boot_fail               ; on_event only looks at ports 0..31
        call    hyp_evtchn_unmask
        li      r2, msg_unmask
        cmpi    r1, 0
        jl      boot_fail
        li      r1, msg_start
        call    puts
        call    timer_rearm             ; last, so task 1 gets (nearly) a whole first slice
        li      r2, msg_timer
        cmpi    r1, 0
        jl      boot_fail

        ; --- 4. enter the first task: its kernel stack holds a prepared trap frame ----------
        li      r1, task1
        call    switch_to               ; new_baseptr + stack_switch; r1 = its frame
        jmp     trap_return             ; pops the frame and iret-hypercalls to ring 3

; front_init(): with a console back-end configured (start_info console port != 0), route the
; console (pvc_write) through the console front-end, and — with a block back-end — give the
; block front-end a data page. Waits yield (they happen with events masked).  clobbers: r1..r6
front_init:
        li      r1, start_info
        ld      r1, [r1]
        ld      r2, [r1 + SI_CONSOLE_EVTCHN]
        cmpi    r2, 0
        jz      .none
        ld      r2, [r1 + SI_BLOCK_EVTCHN]
        cmpi    r2, 0
        jz      .init
        call    alloc_page              ; r1 = pfn of the block data page
        mov     r2, r1
        li      r1, start_info
        ld      r1, [r1]
.init:  li      r3, 0
        call    pvf_init
        li      r1, pvc_hook
        li      r2, pvf_console_write
        st      [r1], r2
.none:  ret

; timer_rearm() -> r1 = set_timer_op's result. The next tick TIMER_PERIOD after the last one
; (as the native periodic timer), or after now if that is already past. clobbers: r1..r3
timer_rearm:
        li      r3, timer_deadline
        ld      r1, [r3]
        addi    r1, r1, TIMER_PERIOD
        li      r2, shared_info
        ld      r2, [r2]
        ld      r2, [r2 + SH_VIRTUAL_TIME]
        cmp     r1, r2
        ja      .set
        addi    r1, r2, TIMER_PERIOD
.set:   st      [r3], r1
        jmp     hyp_set_timer

; kernel_pde_limit(r1 = a kernel virtual address): make sure task_init copies its PDE.
;                                                                    clobbers: r1, r2
kernel_pde_limit:
        shri    r1, r1, 22
        addi    r1, r1, 1
        li      r2, kernel_pdes
        ld      r2, [r2]
        cmp     r1, r2
        jbe     .done
        li      r2, kernel_pdes
        st      [r2], r1
.done:  ret

; alloc_page() -> r1 = pfn, r2 = its virtual address, r3 = its machine address. A bump
; allocator over the free pfns start_info names; the last page is the VMM's boot stack.
;                                                                    clobbers: r1..r3
alloc_page:
        li      r2, next_pfn
        ld      r1, [r2]
        addi    r3, r1, 1
        st      [r2], r3
        li      r2, nr_pages
        ld      r2, [r2]
        addi    r2, r2, -1
        cmp     r1, r2
        jae     .oom
        push    r1
        mov     r2, r1
        li      r1, p2m
        ld      r1, [r1]
        call    pv_ma
        mov     r3, r1
        pop     r1
        shli    r2, r1, 12
        ret
.oom:   li      r1, msg_oom
        mov     r2, r3
        jmp     boot_panic

; --- multicall batches: mc_reset(r1 = batch); mc_add(r1 = op, r2..r4 = args 1..3) ...;
; mc_run() issues them in one VMM entry and panics (naming the entry) if any failed.
mc_reset:                               ; clobbers: r2
        li      r2, mc_base
        st      [r2], r1
        li      r2, mc_cur
        st      [r2], r1
        ret

mc_add:                                 ; clobbers: r5, r6
        li      r6, mc_cur
        ld      r5, [r6]
        st      [r5 + MC_OP], r1
        st      [r5 + MC_ARG1], r2
        st      [r5 + MC_ARG2], r3
        st      [r5 + MC_ARG3], r4
        li      r1, 0
        st      [r5 + MC_ARG4], r1
        st      [r5 + MC_ARG5], r1
        st      [r5 + MC_RESULT], r1
        addi    r5, r5, MC_ENTRY_SIZE
        st      [r6], r5
        ret

mc_run:                                 ; clobbers: r1..r7
        li      r1, mc_base
        ld      r7, [r1]                ; r7 = entry
        li      r1, mc_cur
        ld      r6, [r1]                ; r6 = end
        sub     r2, r6, r7
        li      r3, MC_ENTRY_SIZE
        divu    r2, r2, r3
        mov     r1, r7
        call    hyp_multicall
        mov     r2, r1
        li      r1, msg_multicall
        cmpi    r2, 0
        jl      boot_panic
.check: cmp     r7, r6
        jae     .done
        ld      r2, [r7 + MC_RESULT]
        cmpi    r2, 0
        jl      .fail
        addi    r7, r7, MC_ENTRY_SIZE
        jmp     .check
.done:  ret
.fail:  call    kline
        li      r1, msg_mcfail
        call    puts
        ld      r1, [r7 + MC_OP]
        call    putdec
        li      r1, msg_mcfail2
        call    puts
        ld      r1, [r7 + MC_ARG1]
        call    puthex
        li      r1, msg_mcfail3
        call    puts
        ld      r1, [r7 + MC_RESULT]
        call    putdec_s
        call    knl
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.hang:  jmp     .hang

; boot_fail(r1 = a hypercall's negative result, r2 = what failed)
boot_fail:
        mov     r3, r1
        mov     r1, r2
        mov     r2, r3
; boot_panic(r1 = message, r2 = value): "[kernel] PANIC: <message><value>", shut down (crash).
boot_panic:
        push    r2
        push    r1
        call    kline
        li      r1, msg_bpanic
        call    puts
        pop     r1
        call    puts
        pop     r1
        call    putdec_s
        call    knl
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.hang:  jmp     .hang

; Not started by a paravirtual VMM (no start_info): say so with the only console we may have.
bad_start:
        li      r1, msg_nostart
        li      r2, msg_nostart_end - msg_nostart
        call    hyp_console_write
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.hang:  jmp     .hang

; --- the architecture layer of the shared files (../common_*.s; ../kernel.s has the native one) ---
        .macro INTERRUPTS_OFF           ; trap_common: mask events (a store, no VMM entry)
        li      r1, shared_info
        ld      r1, [r1]
        li      r2, 1
        st      [r1 + SH_UPCALL_MASK], r2
        .endm
        .macro RETURN_TO_FRAME          ; trap_return: the frame is popped; the iret hypercall
        addi    sp, sp, -4 * IRET_FRAME_R1
        st      [sp], r1                ; the task's r1 goes with the frame (see pv.s)
        jmp     hyp_iret                ; also restores upcall_mask
        .endm
        .macro DISPATCH_TICK            ; trap_dispatch, r2 = vector: an upcall (on_event finds
        cmpi    r2, VEC_EVENT           ; the timer's port and goes on to on_timer)
        jz      on_event
        .endm
        .macro DISPATCH_SPURIOUS        ; nothing: every event is an upcall
        .endm
        .macro TIMER_REARM              ; on_timer: one-shot, ask for the next tick
        call    timer_rearm
        .endm
        .macro READ_CR2 reg             ; cr2 as the VMM saw it (only ring 0 can read cr2)
        li      reg, shared_info
        ld      reg, [reg]
        ld      reg, [reg + SH_CR2]
        .endm
        .macro PANIC_HALT               ; stop after a panic
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.hang:  jmp     .hang
        .endm
        .macro CONSOLE_PUTC_R1          ; the byte in r1 to the console (console_io)
        call    putc
        .endm
        .macro SWITCH_SPACES            ; r1 = task: new_baseptr + stack_switch, one multicall;
        push    r8                      ; clobbers r2..r7
        mov     r8, r1
        li      r1, mc_switch
        call    mc_reset
        li      r1, HYPERVISOR_mmuext_op
        li      r2, MMUEXT_NEW_BASEPTR  ; new address space (flushes the TLB)
        ld      r3, [r8 + T_PD]
        shri    r3, r3, MFN_SHIFT
        call    mc_add
        li      r1, HYPERVISOR_stack_switch
        ld      r2, [r8 + T_KTOP]       ; its traps land on its own kernel stack
        call    mc_add
        call    mc_run
        mov     r1, r8
        pop     r8
        .endm
        .macro READ_CLOCK reg           ; the summary's clock: the domain's virtual time
        li      reg, shared_info
        ld      reg, [reg]
        ld      reg, [reg + SH_VIRTUAL_TIME]
        .endm
        .macro POWER_OFF                ; stop the timer and the domain
        li      r1, 0
        call    hyp_set_timer           ; stop the timer
        li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
.hang:  jmp     .hang                   ; not reached
        .endm

        .include "trap.s"
        .include "../common_trap.s"
        .include "../common_sched.s"
        .include "sched.s"
        .include "../common_sys.s"
        .include "sys.s"
        .include "pv_console.s"
        .include "pv_front.s"
        .include "pv_ring.s"
        .include "mem.s"
        .include "pv.s"

; ---------------------------------------------------------------------------------------
; The user text: page aligned so it can be mapped on its own (PL3, read-only) into every
; task's address space at UTEXT_BASE.
        .align  PAGE_SIZE
user_image:
        .include "../user.s"
        .align  PAGE_SIZE
user_image_end:

; ---------------------------------------------------------------------------------------
        .data
        .align  4                       ; strings from the included files may precede us
start_info      = pv_start_info         ; what the VMM handed us (pv_start, guests/lib/pv.s)
shared_info     = pv_shared_info
boot_pd         = pv_pt_base
p2m             = pv_p2m
next_pfn        = pv_first_free_pfn     ; first free pfn (alloc_page advances it)
nr_pages        = pv_nr_pages
timer_port:     .word   0               ; event channel bound to VIRQ_TIMER
timer_deadline: .word   0               ; virtual time of the next tick
kernel_pdes:    .word   0               ; PDEs 0..kernel_pdes-1 may map the kernel

;               state  frame  pd  ktop  exit name id runs upt ustack entry
;               (pd, upt, ustack: machine addresses; ktop: virtual — all filled by task_init)
tasks:
task1:  .word   0,     0,     0,  0,    0,   'A', 1, 0,   0,  0
user_program_entry:                         ; task 1's entry (toyvisor.testing sets it)
        .word   task_a + UOFF
task2:  .word   0,     0,     0,  0,    0,   'B', 2, 0,   0,  0,     task_b + UOFF
tasks_end:

; the virtual trap table: vector, flags (DPL | TRAP_FAST), handler; handler 0 ends it
trap_table:
        .word   VEC_DE,      TRAP_DPL0,             isr_de
        .word   VEC_BP,      TRAP_DPL3,             isr_bp          ; brk from ring 3
        .word   VEC_UD,      TRAP_DPL0,             isr_ud
        .word   VEC_DF,      TRAP_DPL0,             isr_df
        .word   VEC_GP,      TRAP_DPL0,             isr_gp
        .word   VEC_PF,      TRAP_DPL0,             isr_pf
        .word   VEC_AC,      TRAP_DPL0,             isr_ac
        .word   VEC_SYSCALL, TRAP_DPL3 | TRAP_FAST, isr_syscall     ; no VMM entry
        .word   0,           0,                     0

mc_base:        .word   0
mc_cur:         .word   0
mc_batch:       .space  5 * MC_ENTRY_SIZE       ; task_init
mc_switch:      .space  2 * MC_ENTRY_SIZE       ; switch_to
mmu_reqs:       .space  MMU_REQS_MAX * MMU_REQ_SIZE
mmu_reqs_end:

msg_banner:     .asciz  "[kernel] toyvisor minikernel booting (paravirtualized: ring 1, domain "
msg_banner2:    .asciz  ", "
msg_banner3:    .asciz  " pages)\n"
msg_paging:     .asciz  "[kernel] virtual trap table set, task page tables built and pinned\n"
msg_start:      .asciz  "[kernel] timer armed, starting 2 ring-3 tasks\n"
msg_bpanic:     .asciz  "PANIC: "
msg_traps:      .asciz  "set_trap_table failed: "
msg_callbacks:  .asciz  "set_callbacks failed: "
msg_bind:       .asciz  "bind_virq(VIRQ_TIMER) failed: "
msg_port:       .asciz  "VIRQ_TIMER bound to a port above 31: "
msg_unmask:     .asciz  "evtchn unmask failed: "
msg_timer:      .asciz  "set_timer_op failed: "
msg_overlap:    .asciz  "the boot address space maps 0x00400000-0x007fffff (the tasks' user area); PDE "
msg_oom:        .asciz  "out of free pages at pfn "
msg_toomany:    .asciz  "too many page-directory entries to copy: "
msg_multicall:  .asciz  "multicall failed: "
msg_mcfail:     .asciz  "PANIC: multicall entry (hypercall "
msg_mcfail2:    .asciz  ", arg1 "
msg_mcfail3:    .asciz  ") failed: "
msg_nostart:    .ascii  "minikernel/pv: no start_info (run me under --vmm paravirtual)\n"
msg_nostart_end:
