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

        ; what writes.s and params.s leave to the kernel
        .macro WRITE_VIA                ; every write goes straight to the hot page
        .endm
        .macro READ_INPUT               ; the console, at most INPUT_MAX bytes
        call    read_console
        cmpi    r1, INPUT_MAX
        ja      params_bad
        .endm
        .macro POWER_OFF
        cli
        hlt
        .endm

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
        .include "writes.s"

        .include "params.s"

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
