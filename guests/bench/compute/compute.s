; compute.s — the compute loop: register arithmetic only (ring 0, paging off, no loads/stores).
;
; Each iteration is 7 instructions:  acc += i;  x ^= acc;  t = x << 3;  x += t;  i -= 1;
; compare;  branch.  toyvisor.tools.bench runs the same arithmetic as a plain Python `while`
; loop (one statement per instruction, the `while` test standing for cmpi + jnz) to measure the
; ceiling a Python-hosted CPU can approach, and checks that it gets the checksum printed here.
;
; Input (console): the iteration count, 1 to MAX_ITERATIONS (default DEFAULT_ITERATIONS).
; Output: "compute: <n> iterations, acc 0x........, x 0x........", then halt.
; Instructions retired: 7 per iteration plus a fixed start-up and report (deterministic).

STACK_TOP       = 0x80000

start:
        li      sp, STACK_TOP
        .include "body.s"               ; (the loop and its report, shared with pv.s)
        cli
        hlt

        .include "../count.s"          ; with input.s and words.s
        .include "console.s"

        .include "messages.s"
