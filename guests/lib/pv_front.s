; pv_front.s — split-driver FRONT-ENDS of a paravirtual domU (docs/paravirtualization.md,
; "Split drivers"): a console and a block device, each a ring in a page the toolstack granted to
; dom0 (start_info 0x20-0x2C: event channel + gref; 0x34/0x38: the ring pages' pfns), served by
; dom0's back-ends (guests/dom0/kernel.s).
;
;   pvf_init(r1 = start_info, r2 = data page pfn for block reads (0: no block front-end),
;            r3 = 1: wait with sched_op block (the kernel takes no upcalls);
;                 0: wait by yielding (events are masked where it waits, e.g. in a syscall))
;            -> r1 = console port (0: no back-end configured)         clobbers: r1..r6
;   pvf_console_write(r1 = buf, r2 = len) -> r1 = len: requests of up to 44 bytes each, pushed
;            once at the end (the back-end is notified only if it asked, via req_event).
;                                                                    clobbers: r1..r7
;   pvf_read_sector(r1 = sector, r2 = buf) -> r1 = 0, or the back-end's (negative) status;
;            512 bytes copied from the granted data page to buf.     clobbers: r1..r7
;   pvf_console_port, pvf_block_port: words, 0 when not configured.
;
; Needs pv.s, pv_ring.s, mem.s (memcpy).

SI_CONSOLE_RING_PFN     = 0x34
SI_BLOCK_RING_PFN       = 0x38

pvf_init:
        push    r8
        mov     r8, r1
        li      r4, pvf_can_block
        st      [r4], r3
        ld      r4, [r8 + SI_SHARED_INFO]
        li      r5, pvf_shared
        st      [r5], r4
        ld      r4, [r8 + SI_CONSOLE_EVTCHN]
        li      r5, pvf_console_port
        st      [r5], r4
        ld      r4, [r8 + SI_CONSOLE_RING_PFN]
        shli    r4, r4, 12
        li      r5, pvf_console_ring
        st      [r5], r4
        ld      r4, [r8 + SI_BLOCK_EVTCHN]
        cmpi    r2, 0
        jnz     .blk
        li      r4, 0                   ; no data page: no block front-end
.blk:   li      r5, pvf_block_port
        st      [r5], r4
        cmpi    r4, 0
        jz      .done
        ld      r4, [r8 + SI_BLOCK_RING_PFN]
        shli    r4, r4, 12
        li      r5, pvf_block_ring
        st      [r5], r4
        shli    r4, r2, 12
        li      r5, pvf_data_va
        st      [r5], r4
        li      r1, 0                   ; grant the data page to dom0 (writable): gref
        li      r3, 0
        call    hyp_grant_access
        li      r5, pvf_data_gref
        st      [r5], r1
        cmpi    r1, 0
        jg      .done
        li      r5, pvf_block_port      ; no grant: no block front-end
        li      r4, 0
        st      [r5], r4
.done:  li      r1, pvf_console_port
        ld      r1, [r1]
        pop     r8
        ret

; pvf_wait(r1 = ring, r2 = port): until rsp_prod != rsp_cons.  clobbers: r1..r6
; (r2 is kept for the interface; the wait clears the pending bits of both front-end ports)
pvf_wait:
        push    r8
        push    r9
        mov     r8, r1
        mov     r9, r2
.again: ld      r3, [r8 + RING_RSP_PROD]
        ld      r4, [r8 + RING_RSP_CONS]
        cmp     r3, r4
        jnz     .done
        li      r1, pvf_shared          ; clear our ports, ask to be told, look again
        ld      r1, [r1]
        li      r2, pvf_console_port    ; (both: sched_op block must not return for an
        ld      r2, [r2]                ; old console response while we wait for a block one)
        call    evtchn_clear
        li      r1, pvf_shared
        ld      r1, [r1]
        li      r2, pvf_block_port
        ld      r2, [r2]
        call    evtchn_clear
        ld      r4, [r8 + RING_RSP_CONS]
        addi    r4, r4, 1
        st      [r8 + RING_RSP_EVENT], r4
        ld      r3, [r8 + RING_RSP_PROD]
        addi    r4, r4, -1
        cmp     r3, r4
        jnz     .done
        li      r1, pvf_can_block
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .yield
        call    hyp_block
        jmp     .again
.yield: call    hyp_yield
        jmp     .again
.done:  pop     r9
        pop     r8
        ret

; pvf_mask() -> r3 = the previous upcall_mask; events masked (local_irq_save).  clobbers: r3, r4
pvf_mask:
        li      r4, pvf_shared
        ld      r4, [r4]
        ld      r3, [r4 + SH_UPCALL_MASK]
        push    r5
        li      r5, 1
        st      [r4 + SH_UPCALL_MASK], r5
        pop     r5
        ret

; pvf_restore(r1 = previous upcall_mask) (local_irq_restore: pending events come at the next
; VMM entry).                                                        clobbers: r4
pvf_restore:
        li      r4, pvf_shared
        ld      r4, [r4]
        st      [r4 + SH_UPCALL_MASK], r1
        ret

; pvf_console_collect(): consume every console response (they only free slots).  clobbers: r1, r2
pvf_console_collect:
        li      r1, pvf_console_ring
        ld      r1, [r1]
        ld      r2, [r1 + RING_RSP_PROD]
        st      [r1 + RING_RSP_CONS], r2
        ret

pvf_console_write:
        push    r8
        push    r9
        push    r10
        push    r11
        push    r2
        call    pvf_mask                ; no upcall may re-enter the ring code
        push    r3
        mov     r8, r1                  ; source
        mov     r9, r2                  ; bytes left
        li      r10, pvf_console_ring
        ld      r10, [r10]
.next:  cmpi    r9, 0
        jz      .push
        call    pvf_console_collect
        ld      r3, [r10 + RING_RSP_CONS]
        li      r4, pvf_con_pvt
        ld      r4, [r4]
        sub     r3, r4, r3              ; outstanding
        cmpi    r3, RING_SIZE
        jb      .room
        li      r1, pvf_con_pvt         ; full: publish, wait for a response
        ld      r2, [r1]
        mov     r1, r10
        li      r3, RING_REQ_PROD
        li      r4, pvf_console_port
        ld      r4, [r4]
        call    ring_push
        mov     r1, r10
        li      r2, pvf_console_port
        ld      r2, [r2]
        call    pvf_wait
        jmp     .next
.room:  mov     r1, r10
        mov     r2, r4
        call    ring_slot
        mov     r11, r1                 ; the slot
        li      r2, pvf_con_id
        ld      r3, [r2]
        st      [r11 + REQ_ID], r3
        addi    r3, r3, 1
        st      [r2], r3
        li      r3, OP_CONSOLE_WRITE
        st      [r11 + REQ_OP], r3
        mov     r3, r9
        cmpi    r3, REQ_DATA_MAX
        jbe     .len
        li      r3, REQ_DATA_MAX
.len:   st      [r11 + REQ_ARG], r3
        sub     r9, r9, r3
        li      r2, 0
        st      [r11 + REQ_GREF], r2
        st      [r11 + REQ_OFFSET], r2
        addi    r1, r11, REQ_DATA
        mov     r2, r8
        add     r8, r8, r3
        call    memcpy
        li      r1, pvf_con_pvt
        ld      r2, [r1]
        addi    r2, r2, 1
        st      [r1], r2
        jmp     .next
.push:  li      r1, pvf_con_pvt
        ld      r2, [r1]
        mov     r1, r10
        li      r3, RING_REQ_PROD
        li      r4, pvf_console_port
        ld      r4, [r4]
        call    ring_push
        pop     r1
        call    pvf_restore
        pop     r1                      ; len
        pop     r11
        pop     r10
        pop     r9
        pop     r8
        ret

pvf_read_sector:
        push    r8
        push    r9
        push    r10
        push    r11
        call    pvf_mask                ; r3 = the previous upcall_mask (r1 kept)
        push    r3
        mov     r9, r2                  ; user buffer
        li      r10, pvf_block_ring
        ld      r10, [r10]
        mov     r8, r1                  ; sector
        li      r4, pvf_blk_pvt         ; synchronous: at most one request outstanding
        ld      r2, [r4]
        mov     r1, r10
        call    ring_slot
        mov     r11, r1
        li      r2, pvf_blk_id
        ld      r3, [r2]
        addi    r3, r3, 1
        st      [r2], r3
        st      [r11 + REQ_ID], r3
        li      r2, OP_BLOCK_READ
        st      [r11 + REQ_OP], r2
        st      [r11 + REQ_ARG], r8
        li      r2, pvf_data_gref
        ld      r2, [r2]
        st      [r11 + REQ_GREF], r2
        li      r2, 0
        st      [r11 + REQ_OFFSET], r2
        li      r1, pvf_blk_pvt
        ld      r2, [r1]
        addi    r2, r2, 1
        st      [r1], r2
        mov     r8, r3                  ; our id
        mov     r1, r10
        li      r3, RING_REQ_PROD
        li      r4, pvf_block_port
        ld      r4, [r4]
        call    ring_push
        li      r11, PV_EINVAL          ; status until our response comes
.wait:  mov     r1, r10
        li      r2, pvf_block_port
        ld      r2, [r2]
        call    pvf_wait
.take:  ld      r3, [r10 + RING_RSP_CONS]
        ld      r4, [r10 + RING_RSP_PROD]
        cmp     r3, r4
        jz      .got
        mov     r1, r10
        mov     r2, r3
        call    ring_slot               ; responses are matched by id
        ld      r2, [r1 + RSP_ID]
        cmp     r2, r8
        jnz     .skip
        ld      r11, [r1 + RSP_STATUS]
        li      r8, 0                   ; found (ids start at 1)
.skip:  ld      r3, [r10 + RING_RSP_CONS]
        addi    r3, r3, 1
        st      [r10 + RING_RSP_CONS], r3
        jmp     .take
.got:   cmpi    r8, 0
        jnz     .wait
        cmpi    r11, 0
        jnz     .out
        mov     r1, r9
        li      r2, pvf_data_va
        ld      r2, [r2]
        li      r3, 512
        call    memcpy
.out:   pop     r1
        call    pvf_restore
        mov     r1, r11
        pop     r11
        pop     r10
        pop     r9
        pop     r8
        ret

        .data
        .align  4
pvf_shared:             .word   0
pvf_can_block:          .word   0
pvf_console_port:       .word   0
pvf_console_ring:       .word   0
pvf_con_pvt:            .word   0       ; requests written (req_prod_pvt)
pvf_con_id:             .word   0
pvf_block_port:         .word   0
pvf_block_ring:         .word   0
pvf_blk_pvt:            .word   0
pvf_blk_id:             .word   0
pvf_data_va:            .word   0
pvf_data_gref:          .word   0
        .text
