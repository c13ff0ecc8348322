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
; after a context switch — and trap_return restores it and returns with the iret hypercall. The
; fault and breakpoint reports, the panic, the exception stubs, trap_common/trap_return and
; trap_dispatch are the native kernel's: ../common_trap.s.

; The event callback (set_callbacks): an upcall frame, error code 0, events masked. (The
; exception stubs and the rest are in ../common_trap.s.)
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

        .data
msg_panic:      .asciz  "PANIC: exception in ring 1, vector "
        .text
