; pv.s — the compute loop's paravirtual port (docs/paravirtual-abi.md), so the loop can be timed
; under the paravirtual VMM too: the same body.s, run by a ring-1 kernel that the VMM starts with
; paging on and a stack set aside.  Where compute.s polls the console ports, halts and prints
; with `out`, this kernel reads and prints through `console_io` hypercalls (pv_input.s,
; pv_console.s) and ends with a shutdown hypercall; its console output is compute.s's.

        .macro COUNT_STOP               ; bad input powers the domain off (a halt natively)
        li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
        .endm

start:                                  ; ring 1; r1 = start_info, sp = the VMM's boot stack
        call    pv_start
        cmpi    r1, 0
        jnz     .crash
        .include "body.s"
        COUNT_STOP
.crash: li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.dead:  jmp     .dead                   ; not reached: shutdown does not return

        .include "../count_parse.s"
        .include "pv_input.s"
        .include "words.s"
        .include "../../lib/pv.s"
        .include "pv_console.s"

        .include "messages.s"
