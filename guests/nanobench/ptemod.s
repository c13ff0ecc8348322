; ptemod — change a page-table entry's frame and invlpg it, ring 0, paging on (Adams &
; Agesen: "ptemod", a PTE write, which a shadow-paging VMM must trace).
; Each iteration flips PTE_VA between PTE_FRAME_A and PTE_FRAME_B (the xor computes the new
; entry; st + invlpg are the operation).
bench_ptemod:
        li      r12, PTE_VA
        li      r13, PT_ENTRY_PTE
        li      r1, PTE_FRAME_A | PTE_P | PTE_W
        li      r2, PTE_FRAME_A ^ PTE_FRAME_B
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  xor     r1, r1, r2              ; the other frame
        st      [r13], r1
        invlpg  r12
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret
