; kernel.s — smpkernel: a little symmetric-multiprocessing kernel for the toyvisor multiprocessor.
;
; CPU 0 boots: interrupt table, page tables (kernel PL0, user PL3), paging on, eight ring-3
; worker threads dealt round-robin to the CPUs' run queues; then it starts every other CPU with
; a start IPI.  Each CPU sets up its own stack, loads the shared interrupt table and page
; directory, programs its local timer and idles until a reschedule IPI says its run queue is
; ready.  Timer interrupts preempt the threads on every CPU; the threads (user.s) count under a
; ticket lock and without one, sum squares in parallel and join at a barrier, and one of them
; makes the kernel change a mapping every CPU uses — a TLB shootdown by IPI.  When the last
; thread has exited, CPU 0 prints the results.  See README.md and docs/multiprocessor.md.

        .include "regs.s"
        .include "layout.s"

        .text
start:
        li      sp, IDLE_STACKS + IDLE_STACK_SIZE       ; CPU 0's boot (and idle) stack
        li      r1, msg_banner
        call    puts
        in      r1, PORT_CPU_COUNT
        cmpi    r1, MAX_KCPUS
        jbe     .count
        li      r1, MAX_KCPUS                           ; CPUs beyond MAX_KCPUS stay waiting
.count: li      r2, ncpus
        st      [r2], r1

        ; --- interrupt table: every vector panics unless it has a handler below --------------
        li      r1, IDT_BASE
        li      r2, panic_trap
        li      r3, GATE_P | GATE_RING0
        call    idt_fill
        li      r8, gate_table
.gate:  ld      r2, [r8]
        cmpi    r2, -1
        jz      .gates
        ld      r3, [r8 + 4]
        ld      r4, [r8 + 8]
        li      r1, IDT_BASE
        call    idt_set
        addi    r8, r8, 12
        jmp     .gate
.gates:
        ; --- page tables: identity map of 4 MiB; the kernel's 64 KiB PL0, the rest PL3 ------
        li      r1, PT
        li      r2, 0
        li      r3, PTE_P | PTE_W | PTE_PL0
        li      r4, USER_BASE >> 12
        call    pt_fill
        li      r1, PT + (USER_BASE >> 12) * 4
        li      r2, USER_BASE
        li      r3, PTE_P | PTE_W | PTE_PL3
        li      r4, 1024 - (USER_BASE >> 12)
        call    pt_fill
        li      r1, PT + (WINDOW >> 12) * 4             ; the shared window shows generation 1
        li      r2, WINDOW_GEN1 | PTE_P | PTE_PL3
        st      [r1], r2
        li      r1, WINDOW_GEN1
        li      r2, 1
        st      [r1], r2
        li      r1, WINDOW_GEN2
        li      r2, 2
        st      [r1], r2
        li      r1, PD
        li      r2, 0
        li      r3, PT | PTE_P | PTE_W | PTE_PL3
        call    pd_set

        .include "spawn.s"

        ; --- start the other CPUs --------------------------------------------------------------
        li      r8, 1
        li      r9, ncpus
        ld      r9, [r9]
.ap:    cmp     r8, r9
        jae     .aps
        out     PORT_IPI_DEST, r8
        li      r1, ap_entry
        out     PORT_CPU_START, r1
        in      r1, PORT_SMP_STATUS
        cmpi    r1, SMP_OK
        jnz     panic_boot
        addi    r8, r8, 1
        jmp     .ap
.aps:   jmp     cpu_setup

; Every CPU, CPU 0 included, comes here in ring 0 with paging off.
ap_entry:
        rdpid   r1                                      ; a stack of its own
        addi    r1, r1, 1
        shli    r1, r1, IDLE_STACK_SHIFT
        li      sp, IDLE_STACKS
        add     sp, sp, r1
cpu_setup:
        li      r1, IDT_BASE
        lidt    r1
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        rdpid   r1
        call    percpu                                  ; r13 = this CPU's data
        rdpid   r1
        addi    r1, r1, IDLE_TCB
        st      [r13 + PC_CURRENT], r1                  ; it runs its idle thread
        li      r1, console_lock
        li      r4, 0
        call    spin_lock
        li      r1, msg_cpu
        call    puts
        rdpid   r1
        call    putdec
        li      r1, msg_online
        call    puts
        ld      r1, [r13 + PC_NTHREADS]
        call    putdec
        li      r1, msg_threads
        call    puts
        li      r1, console_lock
        call    spin_unlock
        li      r1, SLICE_TICKS
        out     PORT_TIMER_PERIOD, r1
        li      r1, online
        li      r2, 1
        call    atomic_add
        rdpid   r1
        cmpi    r1, 0
        jnz     idle
        ; CPU 0: when every CPU is online, tell the others their run queues are ready
        li      r9, ncpus
        ld      r9, [r9]
        li      r10, online
.all:   ld      r1, [r10]
        cmp     r1, r9
        jz      .kick
        pause
        jmp     .all
.kick:  li      r1, VEC_RESCHED | IPI_TO_OTHERS
        out     PORT_IPI_SEND, r1

; The idle thread of every CPU: wait for an interrupt; halt when no thread is left.
idle:   sti
.loop:  li      r1, alive
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .done
        hlt                                             ; the timer or an IPI wakes it
        jmp     .loop
.done:  cli
        rdpid   r1
        cmpi    r1, 0
        jnz     .halt
        call    report                                  ; CPU 0 prints the results
.halt:  hlt

        .include "percpu.s"

; thread_init.s: r0..r14 below the first frame, as SAVE pushes them; all 0 but r1 = thread
        .macro THREAD_REGS
        li      r5, 0
.regs:  shli    r2, r5, 2
        sub     r2, r3, r2
        li      r4, 0
        cmpi    r5, 1
        jnz     .store
        mov     r4, r7
.store: st      [r2 - 24], r4
        addi    r5, r5, 1
        cmpi    r5, 15
        jnz     .regs
        .endm
        .include "thread_init.s"

; --- traps -------------------------------------------------------------------------------------
; Every handler saves r0..r14 on the stack the CPU pushed its frame on (the thread's kernel stack,
; or the idle thread's), and leaves through `resume` (same thread) or `switch` (r1 = next).

        .macro SAVE
        push    r0
        push    r1
        PUSH_R2_R14
        rdpid   r1
        call    percpu
        .endm

; The local timer and the reschedule IPI: preempt the current thread.
isr_timer:
        SAVE
        call    pick_next
        jmp     switch
isr_resched:
        SAVE
        li      r1, resched_ipis
        li      r2, 1
        call    atomic_add
        call    pick_next
        jmp     switch

; The TLB-shootdown IPI: drop the stale translation, acknowledge.
isr_shootdown:
        SAVE
        li      r1, shoot_address
        ld      r1, [r1]
        invlpg  r1
        li      r1, shoot_acks
        li      r2, 1
        call    atomic_add
        jmp     resume

; System calls: int 0x80 with r1 = number, r2 = argument.
isr_syscall:
        SAVE
        ld      r1, [sp + 52]                           ; the saved r1
        ld      r2, [sp + 48]                           ; the saved r2
        .include "syscalls.s"                           ; the dispatch, exit, yield, puts

; The window everyone reads moves to generation 2: change the mapping, invalidate it here, and
; make every other CPU invalidate it too before the call returns (a TLB shootdown).
sys_remap:
        li      r1, PT + (WINDOW >> 12) * 4
        li      r2, WINDOW_GEN2 | PTE_P | PTE_PL3
        st      [r1], r2
        li      r1, WINDOW
        invlpg  r1
        li      r2, shoot_address
        st      [r2], r1
        li      r1, shoot_acks
        li      r2, 0
        st      [r1], r2
        li      r1, VEC_SHOOTDOWN | IPI_TO_OTHERS
        out     PORT_IPI_SEND, r1
        li      r1, ncpus
        ld      r1, [r1]
        addi    r1, r1, -1
        li      r2, shoot_acks
.wait:  ld      r3, [r2]
        cmp     r3, r1
        jz      .done
        pause
        jmp     .wait
.done:  li      r1, shootdowns
        li      r2, 1
        call    atomic_add
        jmp     resume

        .include "pick_next.s"

        .macro SET_KSTACK                               ; switch.s: r2 = the next thread's TCB
        ld      r3, [r2 + TCB_KTOP]
        mtcr    ksp0, r3                                ; its next entry from ring 3 lands there
        .endm
        .include "switch.s"
resume:
        POP_R14_R2
        pop     r1
        pop     r0
        iret

panic_trap:
        li      r1, msg_panic
        call    puts
        ld      r1, [sp + 4]                            ; the saved pc
        call    puthex
        call    putnl
        cli
        hlt
panic_boot:
        li      r1, msg_boot_failed
        call    puts
        cli
        hlt

; --- the report (CPU 0, after the last thread exited) ------------------------------------------
        .include "report.s"

        .include "console.s"
        .include "idt.s"
        .include "paging.s"
        .include "user.s"

        .data
        .org    KERNEL_DATA
gate_table:
        .word   VEC_IRQ0, isr_timer, GATE_P | GATE_RING0
        .word   VEC_RESCHED, isr_resched, GATE_P | GATE_RING0
        .word   VEC_SHOOTDOWN, isr_shootdown, GATE_P | GATE_RING0
        .word   0x80, isr_syscall, GATE_P | GATE_DPL3 | GATE_RING0
        .word   -1
ncpus:          .word 0
online:         .word 0
alive:          .word 0
console_lock:   .word 0
shoot_address:  .word 0
shoot_acks:     .word 0
resched_ipis:   .word 0
shootdowns:     .word 0
switches:       .word 0
yields:         .word 0
msg_banner:     .asciz "smpkernel: booting on CPU 0\n"
msg_cpu:        .asciz "[cpu "
msg_online:     .asciz "] online, "
msg_threads:    .asciz " threads\n"
msg_panic:      .asciz "smpkernel: unexpected trap at pc "
msg_boot_failed: .asciz "smpkernel: a CPU did not start\n"
        .include "report_data.s"                        ; report.s's strings
