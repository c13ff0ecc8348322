; domu_hello — a tiny paravirtual domU for the split-driver tests: it prints through the console
; FRONT-END (guests/lib/pv_front.s), reads disk sector 1 through the block front-end, prints its
; first line, and shuts down. It takes no upcalls: the front-ends wait with sched_op block.
start:
        mov     r8, r1                  ; start_info
        li      r2, data_page
        shri    r2, r2, 12
        li      r3, 1
        call    pvf_init
        cmpi    r1, 0
        jz      .alone
        li      r9, 3                   ; three lines, each one write (batched on the ring)
.line:  li      r1, hello
        li      r2, hello_end - hello
        call    pvf_console_write
        addi    r9, r9, -1
        cmpi    r9, 0
        jnz     .line
        li      r1, pvf_block_port
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .off
        li      r1, 1                   ; sector 1 through dom0's block back-end
        li      r2, buffer
        call    pvf_read_sector
        cmpi    r1, 0
        jnz     .off
        li      r1, buffer              ; its first line
        li      r2, 0
.len:   add     r3, r1, r2
        ldb     r3, [r3]
        addi    r2, r2, 1
        cmpi    r3, '\n'
        jnz     .len
        call    pvf_console_write
.off:   li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
.alone: li      r1, no_backend
        li      r2, no_backend_end - no_backend
        call    hyp_console_write
        jmp     .off

        .include "pv_front.s"
        .include "pv_ring.s"
        .include "mem.s"
        .include "pv.s"

        .data
hello:          .ascii  "hello through the console front-end\n"
hello_end:
no_backend:     .ascii  "no console back-end\n"
no_backend_end:
        .align  4
buffer:         .space  512
        .align  4096
data_page:      .space  4096
