; pgfault — a page fault on a not-present page, resolved by the handler (Adams & Agesen:
; "pgfault", a user-level page fault the kernel resolves). Ring 0, paging on.
;
; Each iteration: the load touches PF_VA (not present) -> #PF; pf_handler writes the PTE
; (frame PF_FRAME) and invlpg's, then irets; the load is retried and succeeds; the loop then
; unmaps the page again (PTE = 0 + invlpg) for the next iteration.
bench_pgfault:
        li      r12, PF_VA
        li      r13, PT_ENTRY_PF
        li      r11, 0
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        in      r8, PORT_CLOCK
.loop:  ld      r1, [r12]               ; -> #PF, then retried
        st      [r13], r11              ; unmap again ...
        invlpg  r12                     ; ... and forget the translation
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .loop
        in      r9, PORT_CLOCK
        sub     r1, r9, r8
        ret

; #PF: map PF_VA -> PF_FRAME and retry. Any other fault address is a bug: report and stop.
pf_handler:
        push    r1
        push    r2
        push    r3
        mfcr    r2, cr2
        shri    r3, r2, 12
        shli    r3, r3, 12              ; the faulting page
        li      r1, PF_VA
        cmp     r3, r1
        jnz     .other
        li      r1, PT
        li      r3, PF_FRAME | PTE_P | PTE_W
        call    pt_set                  ; PT[cr2] = entry (clobbers r2)
        mfcr    r2, cr2
        invlpg  r2
        pop     r3
        pop     r2
        pop     r1
        iret
.other: addi    sp, sp, 12
        jmp     unexpected
