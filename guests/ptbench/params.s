; params.s — ptbench's parameters, parsed from the console input bytes (shared by the native
; kernel, ptbench.s, and the paravirtual one, pv.s; each reads the bytes its own way into
; input_buf / input_len, then calls parse_params).
;
; Input: words separated by blanks (space, tab, CR, LF), in any order, each at most once
; (a later one wins):
;   <N>          decimal: how many page mappings the new address space gets (1..MAX_N;
;                default DEFAULT_N)
;   b=<B>        paravirtual kernel: mmu_update requests per call (1..MAX_BATCH; default
;                DEFAULT_B). The native kernel accepts and ignores it.
;   m=<M>        paravirtual kernel: mmu_update calls per multicall, i.e. per VMM entry
;                (1..MAX_CALLS; default 1). Accepted and ignored natively.
;   touch        after switching to the new address space, write and read back every page
;   quiet        print nothing (measuring: the cost of a run does not depend on the report)
; Anything else: one "ptbench: ..." line (formatted into out_buf) and parse_params returns 1.
;
; Every routine here touches only memory (no port, no privileged instruction), so it runs
; unchanged in ring 0 (native) and ring 1 (paravirtual).

INPUT_MAX       = 64                    ; bytes kept; longer input is an error
DEFAULT_N       = 256
DEFAULT_B       = 32
DEFAULT_M       = 1
MAX_N           = 2048                  ; two page tables' worth (see the kernels' memory map)
MAX_BATCH       = 512
MAX_CALLS       = 16
MAX_NUMBER      = 1000000               ; parse_dec gives up above this

; parse_params(): input_buf / input_len -> param_n, param_b, param_m, param_touch, param_quiet.
; Returns r1 = 0, or r1 = 1 with the error line in out_buf. Clobbers r1..r7, r8, r9.
parse_params:
        li      r1, param_n
        li      r2, DEFAULT_N
        st      [r1], r2
        li      r1, param_b
        li      r2, DEFAULT_B
        st      [r1], r2
        li      r1, param_m
        li      r2, DEFAULT_M
        st      [r1], r2
        li      r1, param_touch
        li      r2, 0
        st      [r1], r2
        li      r1, param_quiet
        st      [r1], r2
        call    fmt_reset
        li      r1, input_len
        ld      r9, [r1]
        cmpi    r9, INPUT_MAX
        ja      .too_long
        li      r8, input_buf           ; r8 = cursor
        add     r9, r8, r9              ; r9 = end
.word:  call    skip_blanks
        cmp     r8, r9
        jae     .ok
        li      r3, word_buf
        call    take_word
        li      r1, word_buf
        ldb     r2, [r1]
        addi    r2, r2, -'0'
        cmpi    r2, 9
        jbe     .n                      ; starts with a digit (unsigned compare)
        ldb     r3, [r1 + 1]
        cmpi    r3, '='
        jnz     .flag
        ldb     r3, [r1]
        cmpi    r3, 'b'
        jz      .b
        cmpi    r3, 'm'
        jz      .m
        jmp     .bad
.n:     li      r1, word_buf
        li      r2, MAX_NUMBER
        call    parse_dec
        li      r2, MAX_N
        li      r3, param_n
        jmp     .set
.b:     li      r1, word_buf + 2
        li      r2, MAX_NUMBER
        call    parse_dec
        li      r2, MAX_BATCH
        li      r3, param_b
        jmp     .set
.m:     li      r1, word_buf + 2
        li      r2, MAX_NUMBER
        call    parse_dec
        li      r2, MAX_CALLS
        li      r3, param_m
.set:   cmpi    r1, 0                   ; 0: not a number (or 0): out of range
        jz      .range
        cmp     r1, r2
        ja      .range
        st      [r3], r1
        jmp     .word
.flag:  li      r1, word_buf
        li      r2, word_touch
        call    streq
        cmpi    r1, 0
        jz      .quiet
        li      r1, param_touch
        li      r2, 1
        st      [r1], r2
        jmp     .word
.quiet: li      r1, word_buf
        li      r2, word_quiet
        call    streq
        cmpi    r1, 0
        jz      .bad
        li      r1, param_quiet
        li      r2, 1
        st      [r1], r2
        jmp     .word
.ok:    li      r1, 0
        ret
.too_long:
        li      r1, msg_too_long
        call    fmt_str
        li      r1, 1
        ret
.bad:   li      r1, msg_bad
        jmp     .report
.range: li      r1, msg_range
.report:
        call    fmt_str
        li      r1, word_buf
        call    fmt_str
        li      r1, msg_expected
        call    fmt_str
        li      r1, 1
        ret

word_touch:     .asciz  "touch"
word_quiet:     .asciz  "quiet"
msg_too_long:   .asciz  "ptbench: console input too long (at most 64 bytes)\n"
msg_bad:        .asciz  "ptbench: unexpected input '"
msg_range:      .asciz  "ptbench: out of range: '"
msg_expected:   .asciz  "' (expected: [N 1-2048] [b=B 1-512] [m=M 1-16] [touch] [quiet])\n"
        .align  4

        .data
param_n:        .word   DEFAULT_N
param_b:        .word   DEFAULT_B
param_m:        .word   DEFAULT_M
param_touch:    .word   0
param_quiet:    .word   0
input_len:      .word   0
input_buf:      .space  INPUT_MAX
word_buf:       .space  INPUT_MAX + 1
        .align  4
        .text
