; common_trap.s — the architecture-independent half of the trap layer, shared by the native
; minikernel (kernel.s) and its paravirtual port (pv/kernel.s): reporting a breakpoint, reporting
; a fault and killing the task, the kernel-bug panic, the stat counters and the kernel's console
; lines; and the trap entry and exit around them: the exception stubs, trap_common/trap_return,
; trap_dispatch and on_timer. Each kernel's own trap.s has its interrupt (event) stubs and
; on_spurious. The frame is described in layout.s (F_* offsets); trap_dispatch returns in r1 the
; frame to resume — the same one, or another task's after a context switch.
;
; Uses the architecture layer each kernel defines before including this file (see kernel.s):
;   INTERRUPTS_OFF   in trap_common, after the frame is pushed (natively the gate did it)
;   RETURN_TO_FRAME  after trap_return popped the frame: back to the task (iret)
;   DISPATCH_TICK    r2 = vector: jump to on_timer (or on_event) if it is the timer's
;   DISPATCH_SPURIOUS  r2 = vector: jump to on_spurious for an interrupt nobody serves
;   TIMER_REARM      in on_timer, before schedule (the port's timer is one-shot)
;   READ_CR2 reg     reg = the faulting linear address
;   PANIC_HALT       stop the machine after a panic (does not return)
;   CONSOLE_PUTC_R1  write the byte in r1 to the console (clobbers at most r1, r2)
; and msg_panic ("PANIC: exception in ring N, vector "), which names the kernel's ring.

; The exception stubs: push r0, vector in r0. Each kernel's trap.s adds its interrupt stubs.
isr_de:         push    r0
                li      r0, VEC_DE
                jmp     trap_common
isr_bp:         push    r0
                li      r0, VEC_BP
                jmp     trap_common
isr_ud:         push    r0
                li      r0, VEC_UD
                jmp     trap_common
isr_df:         push    r0
                li      r0, VEC_DF
                jmp     trap_common
isr_gp:         push    r0
                li      r0, VEC_GP
                jmp     trap_common
isr_pf:         push    r0
                li      r0, VEC_PF
                jmp     trap_common
isr_ac:         push    r0
                li      r0, VEC_AC
                jmp     trap_common
isr_syscall:    push    r0
                li      r0, VEC_SYSCALL
                jmp     trap_common

trap_common:
        push    r14
        push    r13
        push    r12
        push    r11
        push    r10
        push    r9
        push    r8
        push    r7
        push    r6
        push    r5
        push    r4
        push    r3
        push    r2
        push    r1
        push    r0                      ; the vector
        INTERRUPTS_OFF
        mov     r1, sp
        call    trap_dispatch
trap_return:                            ; r1 = frame to resume
        mov     sp, r1
        pop     r0                      ; vector (dropped)
        pop     r1
        pop     r2
        pop     r3
        pop     r4
        pop     r5
        pop     r6
        pop     r7
        pop     r8
        pop     r9
        pop     r10
        pop     r11
        pop     r12
        pop     r13
        pop     r14
        pop     r0                      ; the task's r0
        RETURN_TO_FRAME                 ; drops the error code; pc, cs, flags, sp

; trap_dispatch(r1 = frame) -> r1 = frame to resume.
; Register use in the dispatch paths: r8 = frame, r9 = current task (both survive calls).
trap_dispatch:
        mov     r8, r1
        li      r9, cur_task
        ld      r9, [r9]
        ld      r2, [r8 + F_VEC]
        cmpi    r2, VEC_DF
        jz      kernel_trap
        ld      r3, [r8 + F_CS]
        andi    r3, r3, 3
        cmpi    r3, 3
        jnz     kernel_trap             ; the kernel itself (ring 0, or 1 in the port) faulted: stop
        st      [r9 + T_FRAME], r8      ; where this task's registers live now
        DISPATCH_TICK                   ; the timer interrupt (event) -> on_timer
        cmpi    r2, VEC_SYSCALL
        jz      on_syscall
        cmpi    r2, VEC_BP
        jz      on_breakpoint
        DISPATCH_SPURIOUS               ; other interrupts -> on_spurious
        jmp     on_fault

on_timer:
        li      r1, stat_ticks
        call    stat_inc
        TIMER_REARM
        jmp     schedule                ; round robin: the next runnable task (maybe this one)

; brk in a task: report it and resume after the brk (a trap: the saved pc is the next one)
on_breakpoint:
        li      r1, stat_bps
        call    stat_inc
        call    kline
        mov     r1, r9
        call    print_task
        li      r1, msg_bp
        call    puts
        ld      r1, [r8 + F_PC]
        addi    r1, r1, -4
        call    puthex
        li      r1, msg_resume
        call    puts
        call    knl
        mov     r1, r8
        ret

; A fault in ring 3: report it, kill the task, run another one.
on_fault:
        READ_CR2 r11                    ; read before anything else could fault
        ld      r10, [r8 + F_ERR]
        call    kline
        mov     r1, r9
        call    print_task
        li      r1, msg_killed
        call    puts
        ld      r2, [r8 + F_VEC]
        cmpi    r2, VEC_PF
        jz      .pf
        li      r1, msg_gp
        cmpi    r2, VEC_GP
        jz      .named
        li      r1, msg_de
        cmpi    r2, VEC_DE
        jz      .named
        li      r1, msg_ud
        cmpi    r2, VEC_UD
        jz      .named
        li      r1, msg_ac
        cmpi    r2, VEC_AC
        jz      .named
        li      r1, msg_exc             ; anything else: "exception N"
        call    puts
        ld      r1, [r8 + F_VEC]
        call    putdec
        jmp     .error
.named: call    puts
.error: li      r1, msg_errcode
        call    puts
        mov     r1, r10
        call    puthex
        li      r1, msg_at_pc
        call    puts
        ld      r1, [r8 + F_PC]
        call    puthex
        jmp     .kill
.pf:    li      r1, stat_pfs
        call    stat_inc
        li      r1, msg_pf
        call    puts
        mov     r1, r11
        call    puthex
        li      r1, msg_lparen
        call    puts
        li      r1, msg_notpresent
        andi    r2, r10, 1
        cmpi    r2, 0
        jz      .p1
        li      r1, msg_protection
.p1:    call    puts
        li      r1, msg_read
        andi    r2, r10, 2
        cmpi    r2, 0
        jz      .p2
        li      r1, msg_write
.p2:    andi    r2, r10, 16
        cmpi    r2, 0
        jz      .p3
        li      r1, msg_fetch
.p3:    call    puts
        li      r1, msg_ring
        call    puts
        shri    r1, r10, 5
        andi    r1, r1, 3
        call    putdec
        li      r1, ')'
        call    putc
.kill:  call    knl
        li      r1, ST_KILLED
        st      [r9 + T_STATE], r1
        ld      r1, [r8 + F_VEC]
        st      [r9 + T_EXIT], r1
        li      r1, stat_killed
        call    stat_inc
        jmp     schedule

; An exception in the kernel's ring (or a double fault): print everything and stop the machine.
kernel_trap:
        call    kline
        li      r1, msg_panic
        call    puts
        ld      r1, [r8 + F_VEC]
        call    putdec
        li      r1, msg_at_pc
        call    puts
        ld      r1, [r8 + F_PC]
        call    puthex
        li      r1, msg_errcode
        call    puts
        ld      r1, [r8 + F_ERR]
        call    puthex
        li      r1, msg_cr2
        call    puts
        READ_CR2 r1
        call    puthex
        call    knl
        PANIC_HALT

; stat_inc(r1 = address of a counter)                               clobbers: r2
stat_inc:
        ld      r2, [r1]
        addi    r2, r2, 1
        st      [r1], r2
        ret

; kline(): start a kernel console line: a newline first if a task left the cursor mid-line,
; then "[kernel] ".                                                  clobbers: r1, r2
kline:
        li      r2, last_char
        ld      r1, [r2]
        cmpi    r1, '\n'
        jz      .prefix
        call    putnl
.prefix:
        li      r1, msg_prefix
        jmp     puts

; knl(): end a kernel console line.                                  clobbers: r1, r2
knl:
        li      r1, '\n'
        CONSOLE_PUTC_R1
        li      r2, last_char
        st      [r2], r1
        ret

; print_task(r1 = task): "task N"                                    clobbers: r1..r5
print_task:
        ld      r3, [r1 + T_ID]
        li      r1, msg_task
        call    puts
        mov     r1, r3
        jmp     putdec

        .data
msg_prefix:     .asciz  "[kernel] "
msg_task:       .asciz  "task "
msg_killed:     .asciz  " killed: "
msg_pf:         .asciz  "page fault at "
msg_lparen:     .asciz  " ("
msg_protection: .asciz  "protection"
msg_notpresent: .asciz  "not present"
msg_read:       .asciz  ", read"
msg_write:      .asciz  ", write"
msg_fetch:      .asciz  ", fetch"
msg_ring:       .asciz  ", ring "
msg_gp:         .asciz  "general protection fault"
msg_de:         .asciz  "divide error"
msg_ud:         .asciz  "invalid opcode"
msg_ac:         .asciz  "alignment check"
msg_exc:        .asciz  "exception "
msg_errcode:    .asciz  ", error "
msg_at_pc:      .asciz  " at pc "
msg_cr2:        .asciz  ", cr2 "
msg_bp:         .asciz  ": breakpoint (#BP) at "
msg_resume:     .asciz  ", resuming"
        .align  4
cur_task:       .word   0               ; TCB of the running task
last_char:      .word   '\n'            ; last byte written to the console by a task

stat_ticks:     .word   0               ; timer interrupts (VIRQ_TIMER upcalls in the port)
stat_switches:  .word   0               ; context switches (address-space switches)
stat_syscalls:  .word   0
stat_pfs:       .word   0               ; page faults handled
stat_killed:    .word   0
stat_bps:       .word   0               ; breakpoints reported
        .text
