; dom0 — a minimal privileged paravirtual kernel (ring 1) running the BACK-ENDS of the split
; drivers (docs/paravirtualization.md, "Split drivers").
;
; The toolstack (vmm/paravirt/setup.py, boot_system) wired every domU before we start: start_info
; 0x44 = number of back-end records, from 0x48 records {domid, console port, console gref, block
; port, block gref} (20 bytes). dom0 maps each ring page (grant_table_op map) at RING_VA, binds
; VIRQ_DOM_EXC, and loops:
;
;   clear evtchn_pending; serve every console ring (bytes -> physdev_op out PORT_CONSOLE_DATA,
;   a whole line at a time in one multicall, prefixed "[d<domid>] "), serve every block ring (physdev_op disk read, DMA into
;   dom0's own frame found with the p2m, copy into the domU's granted data page mapped for the
;   copy); push the responses (notify only if the front-end asked via rsp_event); set req_event
;   and look again (Xen's final check); shut down when no domU is left running (domctl list);
;   else sched_op block.
;
; No upcalls: events stay masked (no callback); sched_op block returns when a port is pending.
;
; Management (mgmt.s, docs/paravirtualization.md "Domains"): after mapping the rings dom0 reads
; toolstack commands from the real console input (list, pause, unpause, balloon, destroy, each
; optionally "@T"); the loop runs them when due (mgmt_wait: sched_op yield while some wait).

RING_VA         = 0x00200000            ; mapped rings: record i -> console 2i, block 2i+1 pages
DATA_VA         = 0x00300000            ; a domU data page, mapped for one copy
MAX_BACKENDS    = 8
; our per-connection table (words)
C_DOMID         = 0
C_CPORT         = 4
C_CRING         = 8
C_BPORT         = 12
C_BRING         = 16
C_LEN           = 20                    ; bytes in the line buffer
C_BUF           = 24                    ; the line being assembled: printed whole
LINE_MAX        = 128
C_SIZE          = C_BUF + LINE_MAX

start:
        li      r2, start_info
        st      [r2], r1
        mov     r8, r1
        ld      r2, [r8 + SI_SHARED_INFO]
        li      r3, shared
        st      [r3], r2
        ld      r2, [r8 + SI_P2M]
        li      r3, p2m
        st      [r3], r2
        li      r1, VIRQ_DOM_EXC
        call    hyp_evtchn_bind_virq
        ld      r9, [r8 + 0x44]         ; number of domUs
        cmpi    r9, MAX_BACKENDS
        jbe     .n
        li      r9, MAX_BACKENDS
.n:     li      r2, nconn
        st      [r2], r9
        addi    r10, r8, 0x48           ; toolstack records
        li      r11, conns
        li      r12, RING_VA
.map:   cmpi    r9, 0
        jz      mapped
        ld      r1, [r10]
        st      [r11 + C_DOMID], r1
        li      r2, 0
        st      [r11 + C_LEN], r2
        ld      r2, [r10 + 4]
        st      [r11 + C_CPORT], r2
        ld      r2, [r10 + 8]           ; console gref
        mov     r3, r12
        call    hyp_grant_map
        cmpi    r1, 0
        jl      fail
        st      [r11 + C_CRING], r12
        addi    r12, r12, 0x1000
        ld      r2, [r10 + 12]
        st      [r11 + C_BPORT], r2
        li      r2, 0
        st      [r11 + C_BRING], r2
        ld      r2, [r10 + 16]          ; block gref (0: none)
        cmpi    r2, 0
        jz      .nob
        ld      r1, [r10]
        mov     r3, r12
        call    hyp_grant_map
        cmpi    r1, 0
        jl      fail
        st      [r11 + C_BRING], r12
.nob:   addi    r12, r12, 0x1000
        addi    r10, r10, 20
        addi    r11, r11, C_SIZE
        addi    r9, r9, -1
        jmp     .map

mapped: call    mgmt_init               ; management commands (mgmt.s): read, run what is due

loop:
        li      r1, shared              ; clear every pending port: we look at every ring
        ld      r1, [r1]
        li      r2, 0
        st      [r1 + SH_EVTCHN_PENDING], r2
        st      [r1 + SH_EVTCHN_PENDING + 4], r2
        li      r11, conns
        li      r9, nconn
        ld      r9, [r9]
.each:  cmpi    r9, 0
        jz      .alive
        call    serve_console
        ld      r1, [r11 + C_BRING]
        cmpi    r1, 0
        jz      .skip
        call    serve_block
.skip:  addi    r11, r11, C_SIZE
        addi    r9, r9, -1
        jmp     .each
.alive: li      r1, DOMCTL_list         ; any domU not shut down?
        li      r2, domlist
        li      r3, MAX_BACKENDS + 1
        call    hyp_domctl
        li      r2, domlist
        li      r4, 0                   ; running domUs
.rec:   cmpi    r1, 0
        jle     .done
        ld      r3, [r2]                ; domid
        cmpi    r3, 0
        jz      .next
        ld      r3, [r2 + 4]            ; state: 3 = shutdown
        cmpi    r3, 3
        jz      .next
        addi    r4, r4, 1
.next:  addi    r2, r2, 16
        addi    r1, r1, -1
        jmp     .rec
.done:  cmpi    r4, 0
        jz      .last
        call    mgmt_wait               ; run due commands; block (yield while some wait)
        jmp     loop
.last:  call    mgmt_flush              ; commands still waiting run now
        li      r1, final               ; every domU is down: drain the rings once more
        ld      r2, [r1]
        cmpi    r2, 0
        jnz     bye
        li      r2, 1
        st      [r1], r2
        jmp     loop

bye:    li      r11, conns              ; partial last lines
        li      r9, nconn
        ld      r9, [r9]
.fl:    cmpi    r9, 0
        jz      .off
        call    flush_line
        addi    r11, r11, C_SIZE
        addi    r9, r9, -1
        jmp     .fl
.off:   li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
fail:   li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.dead:  jmp     .dead

; serve_console(r11 = connection): buffer every request's bytes (whole lines are printed),
; answer it, push the responses, notify if asked, re-arm.          clobbers: r1..r8, r12..r14
serve_console:
        ld      r12, [r11 + C_CRING]
.more:  ld      r13, [r12 + RING_REQ_CONS]
        ld      r2, [r12 + RING_REQ_PROD]
        cmp     r13, r2
        jz      .idle
        mov     r1, r12
        mov     r2, r13
        call    ring_slot
        mov     r14, r1                 ; the slot: print its bytes
        ld      r7, [r14 + REQ_ARG]
        cmpi    r7, REQ_DATA_MAX
        jbe     .ok
        li      r7, REQ_DATA_MAX
.ok:    addi    r8, r14, REQ_DATA
.byte:  cmpi    r7, 0
        jz      .answer
        ldb     r1, [r8]                ; into the line buffer; a whole line is printed at once
        ld      r2, [r11 + C_LEN]
        add     r3, r11, r2
        stb     [r3 + C_BUF], r1
        addi    r2, r2, 1
        st      [r11 + C_LEN], r2
        cmpi    r1, '\n'
        jz      .flush
        cmpi    r2, LINE_MAX
        jb      .step
.flush: call    flush_line
.step:  addi    r8, r8, 1
        addi    r7, r7, -1
        jmp     .byte
.answer:                                ; in place: {id (kept), status, len}
        li      r1, 0
        st      [r14 + RSP_STATUS], r1
        ld      r1, [r14 + REQ_ARG]
        st      [r14 + RSP_LEN], r1
        addi    r13, r13, 1
        st      [r12 + RING_REQ_CONS], r13
        li      r1, stat_con_reqs
        call    bump
        jmp     .more
.idle:  mov     r1, r12                 ; responses: rsp_prod = req_cons (answered in order)
        mov     r2, r13
        li      r3, RING_RSP_PROD
        ld      r4, [r11 + C_CPORT]
        call    ring_push
        addi    r2, r13, 1              ; final check: ask for the next request, look again
        st      [r12 + RING_REQ_EVENT], r2
        ld      r2, [r12 + RING_REQ_PROD]
        cmp     r2, r13
        jnz     .more
        ret

; flush_line(): print connection r11's buffered line, prefixed "[d<domid>] ", with ONE
; multicall of physdev_op out PORT_CONSOLE_DATA entries (one VMM entry per line, not per byte).
;                                                                   clobbers: r1..r6
flush_line:
        ld      r5, [r11 + C_LEN]
        cmpi    r5, 0
        jz      .done
        push    r7
        li      r7, mc_line             ; next entry
        li      r1, '['
        call    mc_byte
        li      r1, 'd'
        call    mc_byte
        ld      r1, [r11 + C_DOMID]
        addi    r1, r1, '0'
        call    mc_byte
        li      r1, ']'
        call    mc_byte
        li      r1, ' '
        call    mc_byte
        addi    r6, r11, C_BUF
.out:   ldb     r1, [r6]
        call    mc_byte
        addi    r6, r6, 1
        addi    r5, r5, -1
        cmpi    r5, 0
        jnz     .out
        li      r1, mc_line
        sub     r2, r7, r1
        li      r3, MC_ENTRY_SIZE
        divu    r2, r2, r3
        call    hyp_multicall
        li      r1, 0
        st      [r11 + C_LEN], r1
        pop     r7
.done:  ret

; mc_byte(r1 = byte, r7 = entry): fill {physdev_op, out, PORT_CONSOLE_DATA, byte}, r7 += one.
;                                                                   clobbers: r2
mc_byte:
        st      [r7 + MC_ARG3], r1
        li      r2, HYPERVISOR_physdev_op
        st      [r7 + MC_OP], r2
        li      r2, PHYSDEVOP_out
        st      [r7 + MC_ARG1], r2
        li      r2, PORT_CONSOLE_DATA
        st      [r7 + MC_ARG2], r2
        addi    r7, r7, MC_ENTRY_SIZE
        ret

; serve_block(r11 = connection): read each requested sector from the real disk into dom0's DMA
; page, copy it into the domU's granted data page, answer; push, notify if asked, re-arm.
;                                                                   clobbers: r1..r8, r12..r14
serve_block:
        ld      r12, [r11 + C_BRING]
.more:  ld      r13, [r12 + RING_REQ_CONS]
        ld      r2, [r12 + RING_REQ_PROD]
        cmp     r13, r2
        jz      .idle
        mov     r1, r12
        mov     r2, r13
        call    ring_slot
        mov     r14, r1
        li      r8, -5                  ; E_IO unless all goes well
        ld      r1, [r14 + REQ_OP]
        cmpi    r1, OP_BLOCK_READ
        jnz     .answer
        li      r1, p2m                 ; DMA into our own frame: machine address via the p2m
        ld      r1, [r1]
        li      r2, dma_page
        shri    r2, r2, 12
        call    pv_ma
        mov     r2, r1
        ld      r1, [r14 + REQ_ARG]     ; the real disk: sector, DMA address, read
        call    pv_disk_read
        cmpi    r1, DISK_OK
        jnz     .answer
        ld      r1, [r11 + C_DOMID]     ; map the domU's data page, copy, unmap
        ld      r2, [r14 + REQ_GREF]
        li      r3, DATA_VA
        call    hyp_grant_map
        cmpi    r1, 0
        jl      .answer
        push    r1
        li      r1, DATA_VA
        ld      r2, [r14 + REQ_OFFSET]
        andi    r2, r2, 0xE00           ; a whole sector inside the page
        add     r1, r1, r2
        li      r2, dma_page
        li      r3, SECTOR_SIZE
        call    memcpy
        pop     r1
        call    hyp_grant_unmap
        li      r8, 0
        li      r1, stat_blk_reads
        call    bump
.answer:
        st      [r14 + RSP_STATUS], r8
        li      r1, SECTOR_SIZE
        st      [r14 + RSP_LEN], r1
        addi    r13, r13, 1
        st      [r12 + RING_REQ_CONS], r13
        jmp     .more
.idle:  mov     r1, r12
        mov     r2, r13
        li      r3, RING_RSP_PROD
        ld      r4, [r11 + C_BPORT]
        call    ring_push
        addi    r2, r13, 1
        st      [r12 + RING_REQ_EVENT], r2
        ld      r2, [r12 + RING_REQ_PROD]
        cmp     r2, r13
        jnz     .more
        ret

bump:   ld      r2, [r1]
        addi    r2, r2, 1
        st      [r1], r2
        ret

        .include "mgmt.s"
        .include "mem.s"
        .include "pv_ring.s"
        .include "pv.s"

        .data
        .align  4
start_info:     .word   0
shared:         .word   0
p2m:            .word   0
nconn:          .word   0
final:          .word   0
stat_con_reqs:  .word   0
stat_blk_reads: .word   0
conns:          .space  MAX_BACKENDS * C_SIZE
domlist:        .space  (MAX_BACKENDS + 1) * 16
mc_line:        .space  (LINE_MAX + 5) * MC_ENTRY_SIZE
        .align  4096
dma_page:       .space  4096
