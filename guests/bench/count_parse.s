; count_parse.s — read_count without its console reader (count.s says what it does): included
; by count.s for a ring-0 guest and by a paravirtual port, which brings pv_input.s instead.
; The includer defines the macro COUNT_STOP first: how a guest stops on bad input.

COUNT_INPUT_MAX = 32                    ; bytes kept; longer input is an error

read_count:
        push    r8
        push    r9
        push    r10
        push    r11
        mov     r10, r1                 ; default
        mov     r11, r2                 ; maximum
        li      r1, count_input
        li      r2, COUNT_INPUT_MAX
        call    read_console            ; r1 = bytes that were waiting
        cmpi    r1, COUNT_INPUT_MAX
        ja      .bad
        li      r8, count_input         ; r8 = cursor
        add     r9, r8, r1              ; r9 = end
        call    skip_blanks
        cmp     r8, r9
        jae     .default                ; empty or blank input
        li      r3, count_word
        call    take_word
        call    skip_blanks
        cmp     r8, r9
        jb      .bad                    ; a second word
        li      r1, count_word
        mov     r2, r11
        call    parse_dec               ; 0 = not a number from 1 to the maximum
        cmpi    r1, 0
        jz      .bad
        jmp     .done
.default:
        mov     r1, r10
.done:  pop     r11
        pop     r10
        pop     r9
        pop     r8
        ret
.bad:   li      r1, msg_count_bad
        call    puts
        mov     r1, r11
        call    putdec
        call    putnl
        COUNT_STOP

msg_count_bad:  .asciz  "bench: the console input must be one iteration count from 1 to "

        .data
count_input:    .space  COUNT_INPUT_MAX
count_word:     .space  COUNT_INPUT_MAX + 1
        .align  4
        .text
