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
        call    parse_dec
        li      r2, MAX_N
        li      r3, param_n
        jmp     .set
.b:     li      r1, word_buf + 2
        call    parse_dec
        li      r2, MAX_BATCH
        li      r3, param_b
        jmp     .set
.m:     li      r1, word_buf + 2
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

; skip_blanks(r8 = cursor, r9 = end): advance r8 past blanks. Clobbers r1, r2.
skip_blanks:
.loop:  cmp     r8, r9
        jae     .done
        ldb     r1, [r8]
        call    is_blank
        cmpi    r2, 0
        jz      .done
        addi    r8, r8, 1
        jmp     .loop
.done:  ret

; take_word(r8 = cursor, r9 = end): the bytes up to the next blank into word_buf (NUL-terminated);
; r8 moves past them. Clobbers r1..r3.
take_word:
        li      r3, word_buf
.loop:  cmp     r8, r9
        jae     .done
        ldb     r1, [r8]
        call    is_blank
        cmpi    r2, 0
        jnz     .done
        stb     [r3], r1
        addi    r3, r3, 1
        addi    r8, r8, 1
        jmp     .loop
.done:  li      r1, 0
        stb     [r3], r1
        ret

; is_blank(r1 = byte): r2 = 1 for space, tab, CR or LF, else 0.
is_blank:
        li      r2, 1
        cmpi    r1, ' '
        jz      .yes
        cmpi    r1, '\t'
        jz      .yes
        cmpi    r1, '\r'
        jz      .yes
        cmpi    r1, '\n'
        jz      .yes
        li      r2, 0
.yes:   ret

; parse_dec(r1 = NUL-terminated string): r1 = its value if it is a decimal number from 1 to
; MAX_NUMBER (leading zeros allowed), else 0. Clobbers r1..r4.
parse_dec:
        mov     r2, r1
        li      r1, 0
        ldb     r3, [r2]
        cmpi    r3, 0
        jz      .bad
.loop:  ldb     r3, [r2]
        cmpi    r3, 0
        jz      .end
        addi    r3, r3, -'0'
        cmpi    r3, 9
        ja      .bad
        li      r4, 10
        mul     r1, r1, r4
        add     r1, r1, r3
        li      r4, MAX_NUMBER
        cmp     r1, r4
        ja      .bad
        addi    r2, r2, 1
        jmp     .loop
.end:   ret
.bad:   li      r1, 0
        ret

; streq(r1, r2 = NUL-terminated strings): r1 = 1 if equal, else 0. Clobbers r1..r4.
streq:
.loop:  ldb     r3, [r1]
        ldb     r4, [r2]
        cmp     r3, r4
        jnz     .no
        cmpi    r3, 0
        jz      .yes
        addi    r1, r1, 1
        addi    r2, r2, 1
        jmp     .loop
.yes:   li      r1, 1
        ret
.no:    li      r1, 0
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
