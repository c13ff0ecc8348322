; pvsmp.s — pvsmp: the paravirtual (Xen-style) port of smpkernel, for SMP domains.  Assembled
; through kernel.s (SHOOTDOWN_BY_IPI = 0: the TLB shootdown is one hypercall) or kernel_ipi.s
; (SHOOTDOWN_BY_IPI = 1: the native way, an IPI to each other vCPU, whose handler invalidates
; the page with a hypercall and acknowledges — kept to measure the difference).
;
; The same workload and the same answers as guests/smpkernel (its layout.s and its ring-3
; threads, user.s, are included unchanged, and so is every piece of its kernel that does the same
; thing here: thread creation and switch, system calls, scheduler, report — see its README), on a
; ring-1 kernel that asks the VMM for everything privileged (docs/paravirtual-abi.md, "Several vCPUs"):
;
;   smpkernel (native)                     pvsmp (paravirtual)
;   in PORT_CPU_COUNT                      start_info.nr_vcpus
;   start IPI to ap_entry                  vcpu_op initialise {pc, sp, kernel_sp, pd, r1} + up
;   interrupt table, lidt                  set_trap_table (int 0x80 fast: no VMM entry)
;   page tables, mtcr cr3/cr0              the VMM's boot directory, update_va_mapping for PL3
;   local timer (PORT_TIMER_PERIOD)        vcpu_op set_singleshot_timer, re-armed per tick
;   timer / IPI vectors                    per-vCPU VIRQ_TIMER port and an IPI port per vCPU
;   reschedule IPI (PORT_IPI_SEND)         event_channel_op send on each vCPU's IPI port
;   TLB shootdown: IPI, invlpg, acks       mmuext_op invlpg_multi to the other vCPUs' mask
;   mtcr ksp0 at a switch                  stack_switch
;   sti; hlt                               sched_op block
;   iret                                   the iret hypercall (r1 saved below the frame)
;   halt                                   vcpu_op down (vCPUs > 0), sched_op shutdown (vCPU 0)
;
; A vCPU learns its number from its initial context (r1) and checks that rdpid agrees (the VMM
; loads every vCPU's number into the register rdpid reads); the kernel then uses rdpid, as the
; native one does.

        .include "regs.s"
        .include "../smpkernel/layout.s"

        ; per-CPU words beyond smpkernel's (its PERCPU blocks are 64 bytes; they use 0..43)
        PC_VINFO        = 44                    ; address of this vCPU's vcpu_info
        PC_TIMER_PORT   = 48                    ; its VIRQ_TIMER port
        PC_IPI_PORT     = 52                    ; its reschedule IPI port
        PC_VTIME        = 56                    ; address of its virtual time (vcpu_info)
        PC_SHOOT_PORT   = 60                    ; its shootdown IPI port (SHOOTDOWN_BY_IPI)
        SH_VCPU_INFO    = 0x40                  ; vCPU n >= 1: vcpu_info at 0x40 + 16 n
        VCPU_INFO_SIZE  = 16
        VI_VIRTUAL_TIME = 12
        HYPERVISOR_vcpu_op = 16
        VCPUOP_initialise = 0
        VCPUOP_up       = 1
        VCPUOP_down     = 2
        VCPUOP_set_singleshot_timer = 4
        EVTCHNOP_bind_ipi = 6
        MMUEXT_INVLPG_MULTI = 7
        MMUEXT_INVLPG_LOCAL = 5
        SI_NR_VCPUS     = 0x3C

        ; MAP_WINDOW gen: the window shows frame `gen` (WINDOW_GEN1 or 2), invalidated here; a
        ; refused update is a boot failure.  clobbers r1..r4
        .macro MAP_WINDOW gen
        li      r1, gen
        call    window_pte
        li      r1, WINDOW
        li      r3, UVMF_INVLPG
        call    hyp_update_va_mapping
        cmpi    r1, 0
        jnz     panic_boot
        .endm

        ; BIND_IPI field: a new IPI port bound to this vCPU, kept in its per-CPU `field` (r13); a
        ; refused binding is a boot failure.  clobbers r1..r3
        .macro BIND_IPI field
        li      r1, HYPERVISOR_event_channel_op
        li      r2, EVTCHNOP_bind_ipi
        rdpid   r3
        int     HYPERVISOR_VECTOR
        cmpi    r1, 0
        jle     panic_boot
        st      [r13 + field], r1
        .endm

        .text
start:
        call    pv_start
        li      sp, IDLE_STACKS + IDLE_STACK_SIZE       ; vCPU 0's boot (and idle) stack
        li      r1, msg_banner
        call    puts
        li      r1, pv_start_info
        ld      r1, [r1]
        ld      r1, [r1 + SI_NR_VCPUS]
        cmpi    r1, MAX_KCPUS
        jbe     .count
        li      r1, MAX_KCPUS                           ; vCPUs beyond MAX_KCPUS never come up
.count: li      r2, ncpus
        st      [r2], r1
        li      r1, traps
        call    hyp_set_trap_table
        cmpi    r1, 0
        jnz     panic_boot
        li      r1, upcall
        call    hyp_set_callbacks

        ; --- memory: user code/data, user stacks PL3; the window shows generation 1 --------------
        li      r8, USER_BASE
        li      r9, user_end
        li      r10, PTE_P | PTE_W | PTE_PL3
        call    map_range
        li      r8, USER_STACKS
        li      r9, USER_STACKS + (NTHREADS << USTACK_SHIFT)
        call    map_range
        li      r1, WINDOW_GEN1
        li      r2, 1
        st      [r1], r2
        li      r1, WINDOW_GEN2
        li      r2, 2
        st      [r1], r2
        MAP_WINDOW WINDOW_GEN1

        .include "../smpkernel/spawn.s"

        ; --- bring up the other vCPUs: an initial context each, then up -----------------------
        li      r1, pv_p2m                              ; the boot directory's mfn
        ld      r1, [r1]
        li      r2, pv_pt_base
        ld      r2, [r2]
        shri    r2, r2, 12
        call    pv_ma
        shri    r1, r1, MFN_SHIFT
        li      r2, ctx
        st      [r2 + 12], r1
        li      r8, 1
        li      r9, ncpus
        ld      r9, [r9]
.ap:    cmp     r8, r9
        jae     .aps
        li      r2, ctx
        li      r1, ap_entry
        st      [r2], r1                                ; pc
        addi    r1, r8, 1
        shli    r1, r1, IDLE_STACK_SHIFT
        li      r3, IDLE_STACKS
        add     r1, r1, r3
        st      [r2 + 4], r1                            ; sp: its idle stack
        st      [r2 + 8], r1                            ; kernel_sp (a thread's, once it runs one)
        st      [r2 + 16], r8                           ; r1 = its number
        li      r1, 0
        st      [r2 + 20], r1                           ; flags
        li      r1, HYPERVISOR_vcpu_op
        li      r2, VCPUOP_initialise
        mov     r3, r8
        li      r4, ctx
        int     HYPERVISOR_VECTOR
        cmpi    r1, 0
        jnz     panic_boot
        li      r1, HYPERVISOR_vcpu_op
        li      r2, VCPUOP_up
        mov     r3, r8
        int     HYPERVISOR_VECTOR
        cmpi    r1, 0
        jnz     panic_boot
        addi    r8, r8, 1
        jmp     .ap
.aps:   li      r1, 0
        jmp     cpu_setup

; vCPUs > 0 start here (their initial context): ring 1, paging on, r1 = their number.
ap_entry:
cpu_setup:
        rdpid   r2                                      ; the VMM's answer must be the context's
        cmp     r1, r2
        jnz     panic_identity
        rdpid   r1
        call    percpu                                  ; r13 = this vCPU's data
        rdpid   r1
        addi    r1, r1, IDLE_TCB
        st      [r13 + PC_CURRENT], r1                  ; it runs its idle thread
        call    vcpu_events                             ; vcpu_info, timer and IPI ports
        rdpid   r8                                      ; print in vCPU order, as natively
        li      r9, online
.turn:  ld      r1, [r9]
        cmp     r1, r8
        jz      .print
        call    hyp_yield
        jmp     .turn
.print: li      r1, msg_cpu
        call    puts
        mov     r1, r8
        call    putdec
        li      r1, msg_online
        call    puts
        ld      r1, [r13 + PC_NTHREADS]
        call    putdec
        li      r1, msg_threads
        call    puts
        call    arm_timer
        li      r1, online
        li      r2, 1
        call    atomic_add
        cmpi    r8, 0
        jnz     idle
        ; vCPU 0: when every vCPU is online, tell the others their run queues are ready
        li      r9, ncpus
        ld      r9, [r9]
        li      r10, online
.all:   ld      r1, [r10]
        cmp     r1, r9
        jz      .kick
        call    hyp_yield
        jmp     .all
.kick:  li      r8, 1
.send:  cmp     r8, r9
        jae     idle
        mov     r1, r8
        call    percpu
        ld      r1, [r13 + PC_IPI_PORT]
        call    hyp_evtchn_send
        addi    r8, r8, 1
        jmp     .send

; The idle thread of every vCPU: block until an event; when no thread is left, vCPU 0 prints the
; report and shuts the domain down, the others go down.
idle:   rdpid   r1
        call    percpu
.loop:  li      r1, alive
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .done
        call    hyp_block                               ; the timer or an IPI wakes it
        jmp     .loop
.done:  call    mask_events
        rdpid   r1
        cmpi    r1, 0
        jnz     .down
        li      r9, ncpus                               ; vCPU 0: the others first
        ld      r9, [r9]
        addi    r9, r9, -1
        li      r10, down_count
.wait:  ld      r1, [r10]
        cmp     r1, r9
        jz      .report
        call    hyp_yield
        jmp     .wait
.report:
        call    report
        li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
        jmp     panic_boot
.down:  li      r1, down_count
        li      r2, 1
        call    atomic_add
        li      r1, HYPERVISOR_vcpu_op
        li      r2, VCPUOP_down
        rdpid   r3
        int     HYPERVISOR_VECTOR
        jmp     panic_boot                              ; never resumed

        .include "../smpkernel/percpu.s"

; This vCPU's (r13) vcpu_info address, its VIRQ_TIMER port and its IPI port.  clobbers r1..r6
vcpu_events:
        li      r5, pv_shared_info
        ld      r5, [r5]
        rdpid   r1
        mov     r6, r5
        addi    r6, r6, SH_VIRTUAL_TIME
        cmpi    r1, 0
        jz      .vinfo
        li      r2, VCPU_INFO_SIZE
        mul     r1, r1, r2
        add     r5, r5, r1
        addi    r5, r5, SH_VCPU_INFO
        mov     r6, r5
        addi    r6, r6, VI_VIRTUAL_TIME
.vinfo: st      [r13 + PC_VINFO], r5
        st      [r13 + PC_VTIME], r6
        li      r1, VIRQ_TIMER                          ; per vCPU: bound to the caller
        call    hyp_evtchn_bind_virq
        cmpi    r1, 0
        jle     panic_boot
        st      [r13 + PC_TIMER_PORT], r1
        BIND_IPI PC_IPI_PORT
        li      r1, SHOOTDOWN_BY_IPI
        cmpi    r1, 0
        jz      .done
        BIND_IPI PC_SHOOT_PORT
.done:  ret

; Program this vCPU's (r13) one-shot timer SLICE_TICKS from now.  clobbers r1..r4
arm_timer:
        ld      r4, [r13 + PC_VTIME]
        ld      r4, [r4]
        li      r1, SLICE_TICKS
        add     r4, r4, r1
        li      r1, HYPERVISOR_vcpu_op
        li      r2, VCPUOP_set_singleshot_timer
        rdpid   r3
        int     HYPERVISOR_VECTOR
        ret

; Mask this vCPU's (r13) events (the paravirtual cli).  clobbers r1, r2
mask_events:
        ld      r1, [r13 + PC_VINFO]
        li      r2, 1
        st      [r1 + 4], r2
        ret

; r1 = 1 if port r1 was pending (its bit is now clear), else 0.  Atomic: other vCPUs and the VMM
; set bits of the same word.  clobbers r1..r6
test_and_clear:
        andi    r2, r1, 31
        li      r3, 1
        shl     r3, r3, r2                              ; the bit
        shri    r2, r1, 5
        shli    r2, r2, 2
        li      r4, pv_shared_info
        ld      r4, [r4]
        add     r4, r4, r2
        addi    r4, r4, SH_EVTCHN_PENDING               ; its word
.retry: ld      r5, [r4]
        and     r1, r5, r3
        cmpi    r1, 0
        jz      .none
        xor     r6, r5, r3
        mov     r2, r5
        cas     r2, r6, r4
        cmp     r2, r5
        jnz     .retry
        li      r1, 1
.none:  ret

; map_range(r8 = first va, r9 = end va, r10 = flags): pages [r8, r9) at their own frames with
; `flags`.  clobbers r1..r4, r8
map_range:
.page:  cmp     r8, r9
        jae     .done
        li      r1, pv_p2m
        ld      r1, [r1]
        shri    r2, r8, 12
        call    pv_ma
        or      r2, r1, r10
        mov     r1, r8
        li      r3, UVMF_INVLPG
        call    hyp_update_va_mapping
        cmpi    r1, 0
        jnz     panic_boot
        li      r1, PAGE_SIZE
        add     r8, r8, r1
        jmp     .page
.done:  ret

; r2 = the window's entry for the frame of pseudo-physical address r1 (read-only, PL3).
; clobbers r1, r2
window_pte:
        shri    r2, r1, 12
        li      r1, pv_p2m
        ld      r1, [r1]
        call    pv_ma
        ori     r2, r1, PTE_P | PTE_PL3
        ret

; thread_init.s: r1 first below the first frame (the iret hypercall pops it from there), then
; r0 and r2..r14, as SAVE pushes them; all 0
        .macro THREAD_REGS
        st      [r3 - 24], r7                           ; r1 = thread,
        li      r5, 2                                   ; r0, r2..r14 = 0
        st      [r3 - 28], r4
.regs:  shli    r2, r5, 2
        sub     r2, r3, r2
        st      [r2 - 24], r4
        addi    r5, r5, 1
        cmpi    r5, 15
        jnz     .regs
        .endm
        .include "../smpkernel/thread_init.s"

; --- traps and events ------------------------------------------------------------------------------
; Every entry saves r1 first (next to the frame: the iret hypercall restores it from there), then
; r0 and r2..r14, and leaves through `resume` (same thread) or `switch` (r1 = next).

        .macro SAVE
        push    r1
        push    r0
        PUSH_R2_R14
        rdpid   r1
        call    percpu
        .endm

; The event upcall (events masked by the VMM): this vCPU's timer and reschedule IPI preempt the
; current thread; the timer is re-armed.
upcall:
        SAVE
        ld      r1, [r13 + PC_VINFO]
        li      r2, 0
        st      [r1], r2                                ; upcall_pending = 0, then look
        li      r10, 0                                  ; preempt?
        ld      r1, [r13 + PC_TIMER_PORT]
        call    test_and_clear
        cmpi    r1, 0
        jz      .ipi
        call    arm_timer
        li      r10, 1
.ipi:   li      r1, SHOOTDOWN_BY_IPI
        cmpi    r1, 0
        jz      .resched
        ld      r1, [r13 + PC_SHOOT_PORT]
        call    test_and_clear
        cmpi    r1, 0
        jz      .resched
        li      r1, MMUEXT_INVLPG_LOCAL                 ; drop the stale translation, acknowledge
        li      r2, shoot_address
        ld      r2, [r2]
        call    hyp_mmuext
        li      r1, shoot_acks
        li      r2, 1
        call    atomic_add
.resched:
        ld      r1, [r13 + PC_IPI_PORT]
        call    test_and_clear
        cmpi    r1, 0
        jz      .pick
        li      r1, resched_ipis
        li      r2, 1
        call    atomic_add
        li      r10, 1
.pick:  cmpi    r10, 0
        jz      resume
        call    pick_next
        jmp     switch

; System calls: a fast int 0x80 from ring 3 (no VMM entry) with r1 = number, r2 = argument.
isr_syscall:
        SAVE
        call    mask_events                             ; as the native interrupt gate's cli
        ld      r1, [sp + 56]                           ; the saved r1
        ld      r2, [sp + 48]                           ; the saved r2
        .include "../smpkernel/syscalls.s"              ; the dispatch, exit, yield, puts
; The window everyone reads moves to generation 2: change the mapping (invalidated here), then
; one hypercall has the VMM invalidate it in every other vCPU's TLB — no IPI, no handler on the
; other vCPUs, no acknowledgements to wait for.
sys_remap:
        MAP_WINDOW WINDOW_GEN2
        li      r1, SHOOTDOWN_BY_IPI
        cmpi    r1, 0
        jnz     remap_by_ipi
        li      r5, ncpus                               ; every vCPU but this one
        ld      r5, [r5]
        li      r4, 1
        shl     r4, r4, r5
        addi    r4, r4, -1
        rdpid   r5
        li      r6, 1
        shl     r6, r6, r5
        xor     r4, r4, r6
        li      r1, HYPERVISOR_mmuext_op
        li      r2, MMUEXT_INVLPG_MULTI
        li      r3, WINDOW
        int     HYPERVISOR_VECTOR
        cmpi    r1, 0
        jnz     panic_boot
remapped:
        li      r1, shootdowns
        li      r2, 1
        call    atomic_add
        jmp     resume

; The native way (SHOOTDOWN_BY_IPI): an IPI to every other vCPU, then wait for each one's
; acknowledgement (their upcalls invalidate the page with mmuext_op invlpg).
remap_by_ipi:
        li      r1, shoot_address
        li      r2, WINDOW
        st      [r1], r2
        li      r1, shoot_acks
        li      r2, 0
        st      [r1], r2
        li      r8, 0
        li      r9, ncpus
        ld      r9, [r9]
        rdpid   r10
        mov     r11, r13
.send:  cmp     r8, r9
        jae     .wait
        cmp     r8, r10
        jz      .next
        mov     r1, r8
        call    percpu
        ld      r1, [r13 + PC_SHOOT_PORT]
        call    hyp_evtchn_send
.next:  addi    r8, r8, 1
        jmp     .send
.wait:  mov     r13, r11
        addi    r9, r9, -1
        li      r2, shoot_acks
.spin:  ld      r3, [r2]
        cmp     r3, r9
        jz      remapped
        pause
        jmp     .spin

        .include "../smpkernel/pick_next.s"
        .macro SET_KSTACK                               ; switch.s: r2 = the next thread's TCB
        ld      r1, [r2 + TCB_KTOP]
        call    hyp_stack_switch                        ; its next entry from ring 3 lands there
        .endm
        .include "../smpkernel/switch.s"
resume:
        POP_R14_R2
        pop     r0
        jmp     hyp_iret                                ; sp -> the saved r1 and the frame

panic_trap:
        li      r1, msg_panic
        call    puts
        ld      r1, [sp + 4]                            ; the saved pc
        call    puthex
        call    putnl
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
panic_boot:
        li      r1, msg_boot_failed
        call    puts
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
panic_identity:
        li      r1, msg_identity
        call    puts
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown

; --- the report (vCPU 0, after the last thread exited) -----------------------------------------
        .include "../smpkernel/report.s"

        .include "pv_console.s"
        .include "pv.s"
        .include "../smpkernel/user.s"
user_end:                                               ; the end of the PL3 code and data

        .data
        .align  4
traps:  .word   0x80, TRAP_DPL3 | TRAP_FAST, isr_syscall
        .word   0, 0, panic_trap                        ; #DE
        .word   6, 0, panic_trap                        ; #UD
        .word   13, 0, panic_trap                       ; #GP
        .word   14, 0, panic_trap                       ; #PF
        .word   17, 0, panic_trap                       ; #AC
        .word   0, 0, 0
ctx:    .word   0, 0, 0, 0, 0, 0                        ; vcpu_op initialise's context
ncpus:          .word 0
online:         .word 0
alive:          .word 0
down_count:     .word 0
shoot_address:  .word 0
shoot_acks:     .word 0
console_lock:   .word 0
resched_ipis:   .word 0
shootdowns:     .word 0
switches:       .word 0
yields:         .word 0
msg_banner:     .asciz "smpkernel: booting on CPU 0\n"
msg_cpu:        .asciz "[cpu "
msg_online:     .asciz "] online, "
msg_threads:    .asciz " threads\n"
msg_panic:      .asciz "pvsmp: unexpected trap at pc "
msg_boot_failed: .asciz "pvsmp: a hypercall failed\n"
msg_identity:   .asciz "pvsmp: rdpid disagrees with the vCPU's context\n"
        .include "../smpkernel/report_data.s"           ; report.s's strings
