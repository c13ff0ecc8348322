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
; The code is count_parse.s, which a paravirtual port (e.g. compute/pv.s) includes with
; pv_input.s instead of input.s.

        .macro COUNT_STOP               ; bad input stops a ring-0 guest here
        cli
        hlt
        .endm

        .include "count_parse.s"
        .include "input.s"
        .include "words.s"
