; trap.s — interrupt entry/exit and dispatch (paravirtual port: the kernel runs in ring 1).
;
; Entries come from the virtual trap table (exceptions bounced by the VMM; `int 0x80` is *fast*,
; a real gate, no VMM entry) and from the event callback (VMM upcalls). The kernel runs with
; events masked (shared_info.upcall_mask = 1, the paravirtual IF = 0) and is never re-entered:
; trap_common masks events first thing, and an upcall that slips in before that (it finds cs = 1
; in its frame) returns at once with its frame's IF cleared, leaving the event pending until the
; kernel iret-hypercalls back to ring 3. A trap from ring 3 arrives on the current task's kernel
; stack (the one given with stack_switch); the VMM (or the CPU, for the fast gate) pushes  old sp,
; flags, cs, pc, error code; the stub pushes r0 and puts the vector in r0; trap_common pushes
; r14..r1 and the vector. The result is the frame described in layout.s (F_* offsets),
; FRAME_SIZE bytes below the kernel stack top.
;
; trap_dispatch(r1 = frame) returns in r1 the frame to resume — the same one, or another task's
; after a context switch — and trap_return restores it and returns with the iret hypercall.

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
; the event callback (set_callbacks): an upcall frame, error code 0, events masked
isr_event:      push    r0
                ld      r0, [sp + 12]           ; the interrupted cs
                andi    r0, r0, 3
                cmpi    r0, 3
                jnz     .defer                  ; the kernel, before trap_common masked events
                li      r0, VEC_EVENT
                jmp     trap_common
.defer:         ld      r0, [sp + 16]           ; resume it with events still masked: the
                andi    r0, r0, ~FLAG_IF & 0xFFFF   ; event stays pending until ring 3
                st      [sp + 16], r0
                pop     r0
                push    r1                      ; hyp_iret's frame: r1, then the CPU frame
                jmp     hyp_iret
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
        li      r1, shared_info         ; cli: mask events (a store, no VMM entry)
        ld      r1, [r1]
        li      r2, 1
        st      [r1 + SH_UPCALL_MASK], r2
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
        addi    sp, sp, -4 * IRET_FRAME_R1
        st      [sp], r1                ; the task's r1 goes with the frame (see pv.s)
        jmp     hyp_iret                ; drops the error code; pc, cs, flags, sp, upcall_mask

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
        jnz     kernel_trap             ; the kernel (ring 1) itself faulted: a bug, stop
        st      [r9 + T_FRAME], r8      ; where this task's registers live now
        cmpi    r2, VEC_EVENT
        jz      on_event
        cmpi    r2, VEC_SYSCALL
        jz      on_syscall
        cmpi    r2, VEC_BP
        jz      on_breakpoint
        jmp     on_fault

; An upcall: take the pending ports (xchg: the VMM may set bits meanwhile), then handle them.
on_event:
        li      r1, shared_info
        ld      r4, [r1]
        li      r1, 0
        st      [r4 + SH_UPCALL_PENDING], r1
        xchg    r1, [r4 + SH_EVTCHN_PENDING]    ; ports 0..31 (ours are all there)
        li      r2, 0
        xchg    r2, [r4 + SH_EVTCHN_PENDING + 4]
        li      r2, timer_port
        ld      r2, [r2]
        shr     r1, r1, r2
        andi    r1, r1, 1
        cmpi    r1, 0
        jnz     on_timer
on_spurious:                            ; no port we serve: nothing to do
        mov     r1, r8
        ret

on_timer:
        li      r1, stat_ticks
        call    stat_inc
        call    timer_rearm             ; one-shot: ask for the next tick
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
        li      r11, shared_info        ; cr2 as the VMM saw it (only ring 0 can read cr2)
        ld      r11, [r11]
        ld      r11, [r11 + SH_CR2]
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

; An exception in ring 0 (or a double fault): print everything and stop the machine.
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
        li      r1, shared_info
        ld      r1, [r1]
        ld      r1, [r1 + SH_CR2]
        call    puthex
        call    knl
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.hang:  jmp     .hang

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
        call    putc
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
msg_panic:      .asciz  "PANIC: exception in ring 1, vector "
        .text
