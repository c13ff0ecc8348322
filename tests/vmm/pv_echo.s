; pv_echo.s — console input through events, end to end (docs/paravirtualization.md, "Events").
;
; A ring-1 kernel binds VIRQ_CONSOLE to an event channel, registers an event callback, opens
; events (upcall_mask = 0) and blocks. Each upcall takes the pending ports, moves what console
; input is waiting with `console_io read` (at most 4 bytes, so longer input takes several
; events: the VMM raises VIRQ_CONSOLE again while bytes remain) and echoes it in brackets. After
; a newline it shuts down.
        .include "pv.s"

start:  ld      r2, [r1 + SI_SHARED_INFO]
        li      r3, shared
        st      [r3], r2
        li      r1, on_event
        call    hyp_set_callbacks
        li      r1, VIRQ_CONSOLE
        call    hyp_evtchn_bind_virq
        call    hyp_evtchn_unmask
        li      r1, shared
        ld      r1, [r1]
        li      r2, 0
        st      [r1 + SH_UPCALL_MASK], r2       ; the paravirtual sti
.wait:  li      r1, done
        ld      r1, [r1]
        cmpi    r1, 0
        jnz     .exit
        call    hyp_block
        jmp     .wait
.exit:  li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown

on_event:                               ; an upcall: frame on our stack, upcall_mask = 1
        push    r1                      ; hyp_iret's frame: r1, then the CPU frame
        push    r2
        push    r3
        push    r4
        push    r5
        li      r1, shared
        ld      r4, [r1]
        li      r1, 0
        st      [r4 + SH_UPCALL_PENDING], r1
        xchg    r1, [r4 + SH_EVTCHN_PENDING]    ; take the pending ports
        li      r1, buf + 1
        li      r2, 4
        call    hyp_console_read
        mov     r5, r1                          ; bytes moved
        li      r1, buf + 1
        add     r1, r1, r5
        li      r2, ']'
        stb     [r1], r2
        addi    r2, r5, 2                       ; "[" + bytes + "]"
        li      r1, buf
        call    hyp_console_write
        li      r1, buf
        add     r1, r1, r5
        ldb     r1, [r1]                        ; the last byte moved
        cmpi    r1, 10
        jnz     .back
        li      r1, done
        li      r2, 1
        st      [r1], r2
.back:  pop     r5
        pop     r4
        pop     r3
        pop     r2
        jmp     hyp_iret

        .data
shared: .word   0
done:   .word   0
buf:    .ascii  "["
        .space  8
