; kernel.s — toyvisor minikernel: entry point, boot, task table.
;
; Boots from reset in ring 0, installs its interrupt table, builds one address space per task
; (kernel pages PL0, user pages PL3), turns paging on, programs the timer and starts two ring-3
; tasks that it preempts round-robin. See README.md for the memory map and syscall ABI.
;
; Files:  layout.s  constants (memory map, frame and TCB layouts, syscall numbers)
;         trap.s    isr stubs, trap_common/trap_return, trap_dispatch
;         sched.s   task setup (address space)
;         sys.s     read_sector (the disk ports)
;         common_trap.s, common_sched.s, common_sys.s: shared with the paravirtual port (pv/):
;                   fault and breakpoint reports, panic, scheduler, context switch, final
;                   summary, the other syscalls; they use the macros defined below
;         user.s    the ring-3 programs (task A, task B and their little library)

        .include "layout.s"

        .text
start:
        li      sp, BOOT_STACK + PAGE_SIZE
        li      r1, msg_banner
        call    puts

        ; --- 1. interrupt table -------------------------------------------------------
        li      r1, IDT_BASE
        li      r2, 0
        li      r3, 256 * 2             ; words
        call    memset32                ; every gate not present
        li      r8, gate_table
.gate:  ld      r2, [r8]                ; vector, or -1 at the end
        cmpi    r2, -1
        jz      .gates_done
        ld      r3, [r8 + 4]            ; handler
        ld      r4, [r8 + 8]            ; flags
        li      r1, IDT_BASE
        call    idt_set
        addi    r8, r8, 12
        jmp     .gate
.gates_done:
        li      r1, IDT_BASE
        lidt    r1

        ; --- 2. page tables -------------------------------------------------------------
        li      r1, KPT                 ; kernel table: identity map of all 4 MiB, PL0
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, 1024
        call    pt_fill
        li      r1, KPD                 ; zero KPD, T1_PD, T1_UPT, T2_PD, T2_UPT (contiguous)
        li      r2, 0
        li      r3, 5 * 1024
        call    memset32
        li      r1, KPD
        li      r2, 0
        li      r3, KPT | PTE_P | PTE_W | PTE_PL0
        call    pd_set
        li      r1, task1
        call    task_init
        li      r1, task2
        call    task_init

        li      r1, KPD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1                 ; paging on (we run identity-mapped, so nothing moves)
        li      r1, msg_paging
        call    puts

        ; --- 3. timer -------------------------------------------------------------------
        li      r1, PIC_MASK_VALUE
        out     PORT_PIC_MASK, r1
        li      r1, TIMER_PERIOD
        out     PORT_TIMER_PERIOD, r1
        li      r1, msg_start
        call    puts

        ; --- 4. enter the first task: its kernel stack holds a prepared trap frame ----------
        li      r1, task1
        call    switch_to               ; cr3, ksp0, current task; r1 = its frame
        jmp     trap_return             ; pops the frame and irets to ring 3

; --- the architecture layer of the shared files (common_*.s); pv/kernel.s defines its own --------
        .macro INTERRUPTS_OFF           ; trap_common: nothing, the interrupt gate cleared IF
        .endm
        .macro RETURN_TO_FRAME          ; trap_return: the frame is popped
        iret
        .endm
        .macro DISPATCH_TICK            ; trap_dispatch, r2 = vector
        cmpi    r2, VEC_IRQ0
        jz      on_timer
        .endm
        .macro DISPATCH_SPURIOUS        ; masked IRQ lines
        cmpi    r2, VEC_IRQ1
        jz      on_spurious
        cmpi    r2, VEC_IRQ2
        jz      on_spurious
        .endm
        .macro TIMER_REARM              ; on_timer: nothing, the timer is periodic
        .endm
        .macro READ_CR2 reg             ; reg = the faulting linear address
        mfcr    reg, cr2
        .endm
        .macro PANIC_HALT               ; stop after a panic
        cli
        hlt
        .endm
        .macro CONSOLE_PUTC_R1          ; the byte in r1 to the console
        out     PORT_CONSOLE_DATA, r1
        .endm
        .macro SWITCH_SPACES            ; r1 = task: its cr3 and ksp0; clobbers r3
        ld      r3, [r1 + T_PD]
        mtcr    cr3, r3                 ; new address space (flushes the TLB)
        ld      r3, [r1 + T_KTOP]
        mtcr    ksp0, r3                ; its traps land on its own kernel stack
        .endm
        .macro READ_CLOCK reg           ; the summary's clock: ticks since reset
        in      reg, PORT_CLOCK
        .endm
        .macro POWER_OFF                ; stop the timer and the machine
        li      r1, 0
        out     PORT_TIMER_PERIOD, r1   ; stop the timer
        cli
        hlt
        .endm

        .include "trap.s"
        .include "common_trap.s"
        .include "common_sched.s"
        .include "sched.s"
        .include "common_sys.s"
        .include "sys.s"
        .include "console.s"
        .include "mem.s"
        .include "paging.s"
        .include "idt.s"

; ---------------------------------------------------------------------------------------
; The user text: page aligned so it can be mapped on its own (PL3, read-only) into every
; task's address space at UTEXT_BASE.
        .align  PAGE_SIZE
user_image:
        .include "user.s"
        .align  PAGE_SIZE
user_image_end:

; ---------------------------------------------------------------------------------------
        .data
        .align  4                       ; strings from the included files may precede us
;               state  frame  pd     ktop                   exit name id runs upt     ustack     entry
tasks:
task1:  .word   0,     0,     T1_PD, T1_KSTACK + PAGE_SIZE, 0,   'A', 1, 0,   T1_UPT, T1_USTACK
user_program_entry:                         ; task 1's entry (toyvisor.testing sets it)
        .word   task_a + UOFF
task2:  .word   0,     0,     T2_PD, T2_KSTACK + PAGE_SIZE, 0,   'B', 2, 0,   T2_UPT, T2_USTACK, task_b + UOFF
tasks_end:

; The physical memory ring 3 may touch at all: toyvisor.testing's kernel-isolation property checks
; every ring-3 load and store against these ranges (docs/testing-isolation.md).
user_memory_text = user_image
user_memory_text_end = user_image_end
user_memory_stack1 = T1_USTACK
user_memory_stack1_end = T1_USTACK + PAGE_SIZE
user_memory_stack2 = T2_USTACK
user_memory_stack2_end = T2_USTACK + PAGE_SIZE

; vector, handler, gate flags
gate_table:
        .word   VEC_DE,      isr_de,      GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_BP,      isr_bp,      GATE_P | GATE_DPL3 | GATE_RING0   ; brk goes through the
                                                                            ; int-n DPL check too
        .word   VEC_UD,      isr_ud,      GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_DF,      isr_df,      GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_GP,      isr_gp,      GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_PF,      isr_pf,      GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_AC,      isr_ac,      GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_IRQ0,    isr_timer,   GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_IRQ1,    isr_irq1,    GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_IRQ2,    isr_irq2,    GATE_P | GATE_DPL0 | GATE_RING0
        .word   VEC_SYSCALL, isr_syscall, GATE_P | GATE_DPL3 | GATE_RING0
        .word   -1

msg_banner:     .asciz  "[kernel] toyvisor minikernel booting\n"
msg_paging:     .asciz  "[kernel] interrupt table loaded, paging on\n"
msg_start:      .asciz  "[kernel] timer armed, starting 2 ring-3 tasks\n"
