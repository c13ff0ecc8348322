; pv_refused.s — a paravirtual kernel whose one mmu_update is refused (tests/vmm/test_pv_log.py).
;
; It asks to point entry 1 of its own page directory at machine frame 0x1000 (the VMM's, not
; the domain's): the VMM refuses with EPERM and logs why; the kernel then powers off.
start:  ld      r2, [r1+0x14]           ; start_info.pt_base: the directory's pseudo-physical address
        shri    r2, r2, 12
        shli    r2, r2, 2
        ld      r3, [r1+0x18]           ; start_info.p2m
        add     r2, r2, r3
        ld      r2, [r2]                ; the directory's machine frame
        addi    r2, r2, 4               ; its entry 1
        li      r3, req
        st      [r3], r2
        li      r1, 1                   ; mmu_update(req, 1)
        li      r2, req
        li      r3, 1
        int     0x82
        li      r1, 6                   ; sched_op shutdown(poweroff)
        li      r2, 2
        li      r3, 0
        int     0x82
        hlt
        .align  4
req:    .word   0, 0x1000 | 1 | 4       ; {entry address, frame 0x1000 | P | PL 1}
