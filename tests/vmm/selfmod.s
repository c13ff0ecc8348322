; selfmod.s — a ring-0 kernel that rewrites its own code, for the binary translator.
;
; Three rounds add to r9 through one instruction that the kernel patches between rounds:
;   1. `patch` adds 1, five times (the loop is now translated);
;   2. the kernel copies `tmpl_100` over `patch` — a store into code it already executed — and
;      the loop adds 100, five times;
;   3. a loop stores `tmpl_10000` over the instruction right after the store, in the block being
;      executed: the very next instruction must already be the new one (it adds 10000, 3 times).
; Prints "selfmod: 30505", then halts.
start:  li      sp, 0x8000
        li      r9, 0                   ; sum
        li      r8, 0                   ; round
round: li      r10, 5
inner:
patch:  addi    r9, r9, 1               ; rewritten before round 2
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     inner
        addi    r8, r8, 1
        cmpi    r8, 2
        jz      third
        li      r1, tmpl_100
        ld      r2, [r1]
        li      r1, patch
        st      [r1], r2
        jmp     round
third: li      r1, tmpl_10000
        ld      r2, [r1]
        li      r3, patch2
        li      r10, 3
selfloop:  st      [r3], r2                ; rewrites the next instruction
patch2: addi    r9, r9, 7
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     selfloop
        li      r1, msg
        call    puts
        mov     r1, r9
        call    putdec
        call    putnl
        cli
        hlt

tmpl_100:   addi    r9, r9, 100
tmpl_10000: addi    r9, r9, 10000

        .include "console.s"
msg:    .asciz  "selfmod: "
