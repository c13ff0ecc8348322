; paging.s — page-directory / page-table construction helpers (ring 0).
;
; Convention (see console.s): args r1..r4, result r1; r0 and r8..r14 preserved.
; Tables are addressed through the current linear view: call these before paging is on, or
; while the tables are identity-mapped (linear = physical), as the kernels here do.
;
; An entry is  frame | flags  where flags combine PTE_P, PTE_W, PTE_PL0..PTE_PL3 (see docs/machine.md).
;
;   pt_fill(r1 = &table[i], r2 = first phys frame, r3 = flags, r4 = count)
;         writes count consecutive entries: table[i+k] = (r2 + k*PAGE_SIZE) | r3.
;         Identity map the first 4 MiB:  pt_fill(pt, 0, PTE_P|PTE_W, 1024).     clobbers: r1, r4..r7
;   pd_set(r1 = dir, r2 = linear, r3 = entry)
;         dir[linear >> 22] = entry   (entry = table | flags).                  clobbers: r2
;   pt_set(r1 = table, r2 = linear, r3 = entry)
;         table[(linear >> 12) & 1023] = entry.                                 clobbers: r2
;   map_page(r1 = dir, r2 = linear, r3 = entry)
;         finds the table through dir (must be present) and sets the entry for linear.
;         returns r1 = 0, or -1 if the directory entry is not present.          clobbers: r1, r4, r5
;         (does not invlpg: do it yourself if the page may be in the TLB)

pt_fill:
        or      r5, r2, r3              ; first entry
        shli    r4, r4, 2
        add     r6, r1, r4              ; end of the entries to write
        li      r7, PAGE_SIZE
.loop:  cmp     r1, r6
        jae     .done
        st      [r1], r5
        addi    r1, r1, 4
        add     r5, r5, r7
        jmp     .loop
.done:  ret

pd_set:
        shri    r2, r2, 22
        shli    r2, r2, 2
        add     r2, r2, r1
        st      [r2], r3
        ret

pt_set:
        shri    r2, r2, 12
        andi    r2, r2, 1023
        shli    r2, r2, 2
        add     r2, r2, r1
        st      [r2], r3
        ret

map_page:
        shri    r4, r2, 22
        shli    r4, r4, 2
        add     r4, r4, r1
        ld      r4, [r4]                ; directory entry
        andi    r5, r4, PTE_P
        cmpi    r5, 0
        jz      .fail
        shri    r4, r4, 12              ; table frame
        shli    r4, r4, 12
        shri    r5, r2, 12
        andi    r5, r5, 1023
        shli    r5, r5, 2
        add     r4, r4, r5
        st      [r4], r3
        li      r1, 0
        ret
.fail:  li      r1, -1
        ret
