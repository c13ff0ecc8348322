; trap.s — interrupt entry/exit and dispatch.
;
; Every gate is an interrupt gate running in ring 0, so the kernel always runs with IF = 0 and is
; never re-entered. A trap from ring 3 arrives on the current task's kernel stack (ksp0); the CPU
; pushes  old sp, flags, cs, pc, error code; the stub pushes r0 and puts the vector in r0;
; trap_common pushes r14..r1 and the vector. The result is the frame described in layout.s
; (F_* offsets), FRAME_SIZE bytes below the kernel stack top.
;
; trap_dispatch(r1 = frame) returns in r1 the frame to resume — the same one, or another task's
; after a context switch — and trap_return pops it and irets. The fault and breakpoint reports
; and the panic, the stubs of the exceptions, trap_common/trap_return and trap_dispatch are
; shared with the paravirtual port: common_trap.s.

; The interrupt stubs (the exception stubs and the rest are in common_trap.s).
isr_timer:      push    r0
                li      r0, VEC_IRQ0
                jmp     trap_common
isr_irq1:       push    r0
                li      r0, VEC_IRQ1
                jmp     trap_common
isr_irq2:       push    r0
                li      r0, VEC_IRQ2
                jmp     trap_common

on_spurious:                            ; masked IRQ lines: nothing to do
        mov     r1, r8
        ret

        .data
msg_panic:      .asciz  "PANIC: exception in ring 0, vector "
        .text
