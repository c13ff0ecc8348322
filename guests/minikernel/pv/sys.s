; sys.s — read_sector in the paravirtual port (the rest of the syscall layer is the native
; kernel's: ../common_sys.s).

; sys_read_sector(r1 = sector, r2 = user buffer) -> SECTOR_SIZE, E_FAULT for a bad buffer,
; E_INVAL or E_IO, as natively. Where the sector comes from depends on the domain:
; * with a block back-end configured (start_info's block event channel; front_init set
;   pvf_block_port): through the block front-end (../../lib/pv_front.s: a request on the ring
;   shared with dom0, the data in a page granted to dom0); a back-end error is E_IO;
; * as dom0 (SIF_PRIVILEGED): from the real disk, the native driver with each port access a
;   physdev_op hypercall and the DMA address a machine address (Xen's dom0 drives the real
;   hardware the same way);
; * otherwise there is no disk: a good request fails with E_IO and a kernel message.
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
.noblk: li      r1, start_info
        ld      r1, [r1]
        ld      r1, [r1 + SI_FLAGS]
        andi    r1, r1, SIF_PRIVILEGED
        cmpi    r1, 0
        jnz     .dom0
        call    kline
        li      r1, msg_noblk
        call    puts
        call    knl
        li      r1, E_IO
        ret
.fault: li      r1, E_FAULT
        ret
.dom0:  li      r1, PHYSDEVOP_in
        li      r2, PORT_DISK_SECTORS
        li      r3, 0
        call    hyp_physdev_op
        cmp     r7, r1
        jae     .inval                  ; no such sector (or no disk: 0 sectors)
        li      r1, p2m                 ; DMA into DISK_BUF: its machine address
        ld      r1, [r1]
        li      r2, DISK_BUF >> 12
        call    pv_ma
        addi    r2, r1, DISK_BUF & 0xFFF
        mov     r1, r7
        call    pv_disk_read
        cmpi    r1, DISK_OK
        jnz     .eio
        ld      r1, [r8 + F_R3]         ; the user buffer (the task's mapping is current)
        li      r2, DISK_BUF
        li      r3, SECTOR_SIZE
        call    memcpy
        li      r1, SECTOR_SIZE
        ret
.inval: li      r1, E_INVAL
        ret

        .data
msg_noblk:      .asciz  "read_sector: no block front-end yet (physdev_op is dom0-only): E_IO"
        .text
