; select.s — which benchmarks to run, from the console input read at boot.
;
; Input (words separated by blanks — space, tab, CR, LF; leading/trailing blanks are ignored):
;   (nothing)                   run every benchmark, N times each (the default)
;   <name> [<count>] [quiet]    run only that benchmark, <count> times (default N), print its
;                               line(s) and "nanobench: done" (nothing with `quiet`), halt
; <name> is a benchmark as it prints itself (`call/ret` may also be spelled `callret`); <count>
; is decimal, 1 to MAX_COUNT (leading zeros allowed); `quiet` and <count> may come in either
; order. Anything else prints one "nanobench: ..." error line and halts.
;
; `quiet` and <count> exist for measuring (toyvisor.vmm.nanobench): a quiet run's cost does not
; depend on how many characters a report has, and two runs of one benchmark that differ only in
; <count> differ only in loop iterations.
;
; The variables live in .data, on pages of their own: no store of the parser lands on a page
; holding code.
;
; read_input must run before anything sets IF: IRQ 1 (console input) is level-triggered and
; stays pending while an input byte waits. read_input drains every byte (polled, IF = 0), so
; the popf loop, which sets IF for a few instructions, cannot take an interrupt for it.

INPUT_MAX       = 64                    ; bytes kept; longer input is an error
MAX_COUNT       = 1000000               ; largest iteration count accepted
ENTRY_SIZE      = 16                    ; bench_table entry: 4 words, see below

; read_input(): drain the console input into input_buf / input_len. Clobbers r1..r5.
read_input:
        li      r2, iterations
        li      r1, N
        st      [r2], r1
        li      r2, sel_entry
        li      r1, 0
        st      [r2], r1
        li      r2, sel_quiet
        st      [r2], r1
        li      r1, input_buf
        li      r2, INPUT_MAX
        call    read_console
        li      r2, input_len
        st      [r2], r1
        ret

; parse_input(): sets sel_entry (0: run all, else the bench_table entry) and sel_quiet (0/1),
; or prints an error and halts. Every name in the table is compared (no early exit), so the
; cost of the look-up barely depends on which benchmark is named. Clobbers r1..r5, r8, r9, r11.
parse_input:
        li      r1, input_len
        ld      r9, [r1]
        cmpi    r9, INPUT_MAX
        ja      .too_long
        li      r8, input_buf           ; r8 = cursor
        add     r9, r8, r9              ; r9 = end
        call    skip_blanks
        cmp     r8, r9
        jae     .done                   ; only blanks: run all
        li      r3, word_buf
        call    take_word
        li      r11, 0                  ; the matching entry
        li      r5, bench_table
.look:  ld      r2, [r5]
        cmpi    r2, 0
        jz      .looked
        li      r1, word_buf
        call    streq
        cmpi    r1, 0
        jz      .miss
        mov     r11, r5
.miss:  addi    r5, r5, ENTRY_SIZE
        jmp     .look
.looked:
        cmpi    r11, 0
        jz      .unknown
        li      r1, sel_entry
        st      [r1], r11
.word:  call    skip_blanks
        cmp     r8, r9
        jae     .done
        li      r3, word_buf
        call    take_word
        li      r1, word_buf
        li      r2, word_quiet
        call    streq
        cmpi    r1, 0
        jz      .count
        li      r1, sel_quiet
        li      r2, 1
        st      [r1], r2
        jmp     .word
.count: call    parse_count             ; r1 = the count, or 0 if word_buf is not one
        cmpi    r1, 0
        jz      .extra
        li      r2, iterations
        st      [r2], r1
        jmp     .word
.extra: li      r1, msg_extra
        call    puts
        li      r1, word_buf
        call    puts
        li      r1, msg_extra_end
        call    puts
        cli
        hlt
.done:  ret
.too_long:
        li      r1, msg_too_long
        call    puts
        cli
        hlt
.unknown:
        li      r1, msg_unknown
        call    puts
        li      r1, word_buf
        call    puts
        li      r1, msg_known
        call    puts
        li      r5, bench_table
.list:  ld      r1, [r5]
        cmpi    r1, 0
        jz      .listed
        call    puts
        addi    r5, r5, ENTRY_SIZE
        ld      r1, [r5]
        cmpi    r1, 0
        jz      .listed
        li      r1, ' '
        call    putc
        jmp     .list
.listed:
        li      r1, ')'
        call    putc
        call    putnl
        cli
        hlt

; parse_count(): r1 = the decimal number in word_buf if it is one from 1 to MAX_COUNT, else 0.
; Clobbers r1..r4.
parse_count:
        li      r1, word_buf
        li      r2, MAX_COUNT
        jmp     parse_dec

; run_selected(): run the benchmark of sel_entry; unless quiet, print its line (and its
; observation line, for popf and cpl) and "nanobench: done". Then halt.
run_selected:
        li      r1, sel_entry
        ld      r13, [r1]
        push    r13                     ; the routines clobber every register but sp
        ld      r1, [r13 + 4]           ; the routine
        callr   r1
        pop     r13
        li      r3, sel_quiet
        ld      r3, [r3]
        cmpi    r3, 0
        jnz     .halt
        mov     r14, r2                 ; the observed value, if any
        mov     r2, r1
        ld      r1, [r13 + 8]           ; the name it prints
        call    report
        ld      r1, [r13 + 12]          ; its observation message, or 0
        cmpi    r1, 0
        jz      .done
        call    puts
        mov     r1, r14
        call    putdec
        call    putnl
.done:  li      r1, msg_done
        call    puts
.halt:  cli
        hlt

; One entry per accepted name: the name, the routine, the name printed, the observation message.
        .align  4
bench_table:
        .word   name_empty, bench_empty, name_empty, 0
        .word   name_syscall, bench_syscall, name_syscall, 0
        .word   name_in, bench_in, name_in, 0
        .word   name_cr8wr, bench_cr8wr, name_cr8wr, 0
        .word   name_callret, bench_callret, name_callret, 0
        .word   alias_callret, bench_callret, name_callret, 0
        .word   name_pgfault, bench_pgfault, name_pgfault, 0
        .word   name_divzero, bench_divzero, name_divzero, 0
        .word   name_ptemod, bench_ptemod, name_ptemod, 0
        .word   name_popf, bench_popf, name_popf, msg_popf
        .word   name_cpl, bench_cpl, name_cpl, msg_cpl
        .word   0

alias_callret:  .asciz  "callret"
word_quiet:     .asciz  "quiet"
msg_unknown:    .asciz  "nanobench: unknown benchmark '"
msg_known:      .asciz  "' (known: "
msg_extra:      .asciz  "nanobench: unexpected input '"
msg_extra_end:  .asciz  "' after the benchmark name (expected an iteration count from 1 to 1000000 or 'quiet')\n"
msg_too_long:   .asciz  "nanobench: console input too long (at most 64 bytes)\n"

        .data
iterations:     .word   N               ; the loop count of every benchmark (read_input sets it)
sel_entry:      .word   0               ; 0: run all, else the bench_table entry
sel_quiet:      .word   0
input_len:      .word   0
input_buf:      .space  INPUT_MAX
word_buf:       .space  INPUT_MAX + 1
        .text
