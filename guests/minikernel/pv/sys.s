; sys.s — read_sector in the paravirtual port (the rest of the syscall layer is the native
; kernel's: ../common_sys.s).

; sys_read_sector(r1 = sector, r2 = user buffer) -> SECTOR_SIZE, E_FAULT for a bad buffer,
; or E_IO. A domU has no disk: the disk ports are dom0's (physdev_op). With a block back-end
; configured (start_info's block event channel; front_init set pvf_block_port) the sector comes
; through the block front-end (../../lib/pv_front.s: a request on the ring shared with dom0,
; the data in a page granted to dom0) and a back-end error is E_IO. Without one the buffer is
; checked exactly as natively, and a good request fails with E_IO and a kernel message.
;                                                                    clobbers: r1..r7
sys_read_sector:
        mov     r7, r1                  ; sector
        mov     r1, r2
        li      r2, SECTOR_SIZE
        li      r3, 1
        call    user_range_ok
        cmpi    r1, 0
        jz      .fault
        li      r1, pvf_block_port
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .noblk
        mov     r1, r7                  ; the block front-end: a request on dom0's ring
        ld      r2, [r8 + F_R3]         ; the user buffer (the task's mapping is current)
        call    pvf_read_sector
        cmpi    r1, 0
        jnz     .eio
        li      r1, SECTOR_SIZE
        ret
.eio:   li      r1, E_IO
        ret
.noblk: call    kline
        li      r1, msg_noblk
        call    puts
        call    knl
        li      r1, E_IO
        ret
.fault: li      r1, E_FAULT
        ret

        .data
msg_noblk:      .asciz  "read_sector: no block front-end yet (physdev_op is dom0-only): E_IO"
        .text
