; dirty.s — the migration workload with a controllable writable working set.
;
; Input (console): "PERIOD HOT WRITES" — one page write every PERIOD instructions (at least
; 16), cycling over HOT pages (1 to MAX_HOT), WRITES writes in all.  The dirty rate is
; therefore 4096 / PERIOD bytes per tick, and the writable working set HOT pages: what decides
; whether pre-copy converges (docs/migration.md).
;
; The kernel identity-maps its 2 MiB at PL0 and turns paging on, so every write goes through the
; VMM's memory virtualization (shadow tables, nested tables).  Write k stores the value k into
; word (k mod 1024) of page (k mod HOT) of the hot region: each visit changes one word of a page
; (small deltas, as an XBZRLE cache likes), and memory never written stays zero (zero pages).
;
; Output: "dirty: <writes> writes over <hot> pages, checksum 0x........" (the sum of every 15th
; word of the hot region, so a stale or lost page shows), then halt.

STACK_TOP       = 0xC000
PD              = 0xE000
PT              = 0xF000
HOT_PA          = 0x10000               ; page 16 ..
RAM_END         = 0x200000              ; .. the end of the 2 MiB
MAX_HOT         = (RAM_END - HOT_PA) / PAGE_SIZE
MIN_PERIOD      = 16
LOOP_COST       = 15                    ; instructions of one write, without the spin
KERNEL_PTE      = PTE_P | PTE_W | PTE_PL0
INPUT_MAX       = 64
CHECK_STRIDE    = 60                    ; bytes between checksummed words (visits every word offset mod 1024 over 15 pages)

start:
        li      sp, STACK_TOP
        call    read_params             ; r10 = spin count, r11 = hot pages, r12 = writes
        ; paging: identity map of the 2 MiB
        li      r1, PD
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PT
        li      r2, 0
        li      r3, KERNEL_PTE
        li      r4, RAM_END / PAGE_SIZE
        call    pt_fill
        li      r1, PD
        li      r2, 0
        li      r3, PT | KERNEL_PTE
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        ; the writes: r8 = k, r9 = page index, r13 = writes left
        li      r8, 0
        li      r9, 0
        mov     r13, r12
        li      r7, HOT_PA
.write: shli    r1, r9, 12
        add     r1, r1, r7
        andi    r2, r8, 1023
        shli    r2, r2, 2
        add     r1, r1, r2
        st      [r1], r8
        addi    r8, r8, 1
        addi    r9, r9, 1
        cmp     r9, r11
        jb      .same
        li      r9, 0
.same:  mov     r5, r10
.spin:  addi    r5, r5, -1
        cmpi    r5, 0
        jnz     .spin
        addi    r13, r13, -1
        cmpi    r13, 0
        jnz     .write
        ; the report
        li      r1, msg_head
        call    puts
        mov     r1, r12
        call    putdec
        li      r1, msg_over
        call    puts
        mov     r1, r11
        call    putdec
        li      r1, msg_sum
        call    puts
        li      r1, HOT_PA              ; checksum of the hot region
        shli    r2, r11, 12
        add     r2, r2, r1
        li      r3, 0
.sum:   ld      r4, [r1]
        add     r3, r3, r4
        addi    r1, r1, CHECK_STRIDE
        cmp     r1, r2
        jb      .sum
        mov     r1, r3
        call    puthex
        call    putnl
        cli
        hlt

; read_params: r10 = spin iterations per write, r11 = hot pages, r12 = writes.  Bad input prints
; one "dirty: ..." line and halts.  Clobbers r1..r9.
read_params:
        li      r1, input
        li      r2, INPUT_MAX
        call    read_console
        cmpi    r1, INPUT_MAX
        ja      params_bad
        li      r8, input
        add     r9, r8, r1
        call    next_number             ; PERIOD
        cmpi    r1, MIN_PERIOD
        jb      params_bad
        addi    r1, r1, -LOOP_COST
        li      r2, 3                   ; 3 instructions per spin iteration
        divu    r10, r1, r2
        cmpi    r10, 0
        jnz     .hot
        li      r10, 1
.hot:   call    next_number             ; HOT
        li      r2, MAX_HOT
        cmp     r1, r2
        ja      params_bad
        mov     r11, r1
        call    next_number             ; WRITES
        mov     r12, r1
        call    skip_blanks
        cmp     r8, r9
        jb      params_bad
        ret

params_bad:
        li      r1, msg_bad
        call    puts
        cli
        hlt

; next_number: the next word of the input as a decimal number from 1 to 10^9 (0 if it is not one).
next_number:
        call    skip_blanks
        li      r3, word
        call    take_word
        li      r1, word
        li      r2, 1000000000
        call    parse_dec
        cmpi    r1, 0
        jz      params_bad
        ret

        .include "input.s"
        .include "words.s"
        .include "console.s"
        .include "mem.s"
        .include "paging.s"

        .data
msg_head:       .asciz  "dirty: "
msg_over:       .asciz  " writes over "
msg_sum:        .asciz  " pages, checksum "
msg_bad:        .asciz  "dirty: the console input must be PERIOD (>= 16) HOT (1 to 496) WRITES\n"

input:          .space  INPUT_MAX
word:           .space  INPUT_MAX + 1
        .align  4
        .text
