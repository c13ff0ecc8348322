; count.s — a benchmark guest's iteration count, read from the console input at boot.
;
; The count is the only input of the workloads in guests/bench, so `toyvisor bench` can size a
; run (and a test can make it tiny) without reassembling anything.
;
; read_count(r1 = default, r2 = maximum): r1 = the decimal number the console input holds
; (surrounding blanks ignored, 1 to the maximum), or the default if the input is empty or blank.
; Anything else prints one "bench: ..." line and halts (cli; hlt).
; Ring 0 with IF = 0 (polled console, drained before anything can set IF). Clobbers r1..r7;
; keeps r8..r14 (library convention, guests/README.md).
;
; Includes input.s and words.s itself (so a guest must not include them again); needs console.s.

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
        cli
        hlt

msg_count_bad:  .asciz  "bench: the console input must be one iteration count from 1 to "

        .include "input.s"
        .include "words.s"

        .data
count_input:    .space  COUNT_INPUT_MAX
count_word:     .space  COUNT_INPUT_MAX + 1
        .align  4
        .text
