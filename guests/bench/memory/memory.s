; memory.s — the memory-heavy loop: a load and a store every 6 instructions, with paging on.
;
; The kernel identity-maps the first 4 MiB at PL0 (code, stack, tables) and maps a 64 KiB array
; at linear ARRAY_VA onto the physical frames at ARRAY_PA, so every access of the loop goes
; through a real translation (not the identity) across 16 pages. One pass visits every 16th byte
; of the array:
;
;     ld  r3, [p];  acc += r3;  st [p], acc;  p += 16;  compare;  branch      (6 instructions)
;
; so a pass is 4096 loads, 4096 stores and 24,576 instructions, plus 3 per pass for the outer
; loop. The stored values feed the next pass's loads, so every engine must get memory right to
; print the same checksum.
;
; Input (console): the number of passes, 1 to MAX_PASSES (default DEFAULT_PASSES).
; Output: "memory: <n> passes, checksum 0x........", then halt.

DEFAULT_PASSES  = 20
MAX_PASSES      = 100000
STACK_TOP       = 0x80000
PD              = 0x90000               ; page directory
PT_LOW          = 0x91000               ; linear 0 .. 4 MiB, identity, PL0
PT_ARRAY        = 0x92000               ; linear 4 MiB .. 8 MiB
ARRAY_VA        = 0x00400000
ARRAY_PA        = 0x00100000
ARRAY_SIZE      = 0x10000               ; 64 KiB = 16 pages
STRIDE          = 16
KERNEL_PTE      = PTE_P | PTE_W | PTE_PL0

start:
        li      sp, STACK_TOP
        li      r1, DEFAULT_PASSES
        li      r2, MAX_PASSES
        call    read_count
        mov     r12, r1                 ; n, for the report
        mov     r8, r1                  ; passes left
        ; page tables: an empty directory, then the two tables
        li      r1, PD
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PT_ARRAY
        li      r2, 0
        li      r3, 1024
        call    memset32
        li      r1, PT_LOW
        li      r2, 0
        li      r3, KERNEL_PTE
        li      r4, 1024
        call    pt_fill
        li      r1, PT_ARRAY
        li      r2, ARRAY_PA
        li      r3, KERNEL_PTE
        li      r4, ARRAY_SIZE / PAGE_SIZE
        call    pt_fill
        li      r1, PD
        li      r2, 0
        li      r3, PT_LOW | KERNEL_PTE
        call    pd_set
        li      r1, PD
        li      r2, ARRAY_VA
        li      r3, PT_ARRAY | KERNEL_PTE
        call    pd_set
        li      r1, PD
        mtcr    cr3, r1
        li      r1, CR0_PG
        mtcr    cr0, r1
        ; the loop
        li      r9, 1                   ; acc (not 0: the sums must grow)
        li      r2, ARRAY_VA + ARRAY_SIZE
.pass:  li      r1, ARRAY_VA
.word:  ld      r3, [r1]
        add     r9, r9, r3
        st      [r1], r9
        addi    r1, r1, STRIDE
        cmp     r1, r2
        jb      .word
        addi    r8, r8, -1
        cmpi    r8, 0
        jnz     .pass
        li      r1, msg_head
        call    puts
        mov     r1, r12
        call    putdec
        li      r1, msg_sum
        call    puts
        mov     r1, r9
        call    puthex
        call    putnl
        cli
        hlt

        .include "../count.s"          ; with input.s and words.s
        .include "console.s"
        .include "mem.s"
        .include "paging.s"

msg_head:       .asciz  "memory: "
msg_sum:        .asciz  " passes, checksum "
