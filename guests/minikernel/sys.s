; sys.s — the native read_sector (the rest of the syscall layer: common_sys.s).

; sys_read_sector(r1 = sector, r2 = user buffer) -> SECTOR_SIZE, or E_FAULT / E_INVAL / E_IO
; The disk DMAs into the kernel's DISK_BUF (a physical address); the kernel then copies the
; sector into the task's buffer once it knows the buffer is the task's, writable memory.
;                                                                    clobbers: r1..r7
sys_read_sector:
        mov     r7, r1                  ; sector
        push    r2
        mov     r1, r2
        li      r2, SECTOR_SIZE
        li      r3, 1
        call    user_range_ok
        pop     r2                      ; user buffer
        cmpi    r1, 0
        jz      .fault
        in      r3, PORT_DISK_SECTORS
        cmp     r7, r3
        jae     .inval                  ; no such sector (or no disk: 0 sectors)
        out     PORT_DISK_SECTOR, r7
        li      r3, DISK_BUF
        out     PORT_DISK_ADDR, r3
        li      r3, DISK_CMD_READ
        out     PORT_DISK_CMD, r3
        in      r3, PORT_DISK_STATUS
        cmpi    r3, 0
        jnz     .eio
        mov     r1, r2
        li      r2, DISK_BUF
        li      r3, SECTOR_SIZE
        call    memcpy
        li      r1, SECTOR_SIZE
        ret
.fault: li      r1, E_FAULT
        ret
.inval: li      r1, E_INVAL
        ret
.eio:   li      r1, E_IO
        ret
