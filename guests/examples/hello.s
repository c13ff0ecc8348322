; hello.s — the smallest complete toyvisor program.
;
; Shows: the machine starts at the image entry (the label `start`) in ring 0 with paging off,
; interrupts off and every register 0 — including sp, so the first thing to do is give it a
; stack. Console output is the privileged `out` to PORT_CONSOLE_DATA, one byte at a time
; (here through `puts` from guests/lib/console.s). `cli` + `hlt` stops the machine: with
; IF = 0 nothing can ever wake it.
;
; Run:  toyvisor run guests/examples/hello.s

start:
        li      sp, 0x8000              ; a stack below 32 KiB (the image is at 0)
        li      r1, message
        call    puts                    ; r1 = NUL-terminated string
        cli
        hlt

        .include "console.s"

message:
        .asciz  "Hello, world!\n"
