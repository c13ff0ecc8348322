; common_sys.s — the syscall layer, shared by the native minikernel (kernel.s) and its
; paravirtual port (pv/kernel.s): `int 0x80` from ring 3 (natively a gate with DPL 3 into ring 0,
; interrupts off; in the port a *fast* trap into ring 1, events masked). Everything but
; sys_read_sector (each kernel's own sys.s: the disk is an architecture matter) is here.
;
; ABI: r1 = number, arguments in r2..r4, result in r1 (negative = error, see layout.s);
; every other register comes back unchanged (trap_return restores them from the frame).
; Pointers are checked against the calling task's user mappings before the kernel touches
; them, so a bad pointer returns E_FAULT instead of faulting in ring 0.

; on_syscall: reached from trap_dispatch with r8 = frame, r9 = current task.
on_syscall:
        li      r1, stat_syscalls
        call    stat_inc
        ld      r5, [r8 + F_R1]         ; number
        ld      r1, [r8 + F_R2]         ; arguments, shifted to the r1.. calling convention
        ld      r2, [r8 + F_R3]
        ld      r3, [r8 + F_R4]
        cmpi    r5, SYS_WRITE
        jz      .write
        cmpi    r5, SYS_YIELD
        jz      .yield
        cmpi    r5, SYS_EXIT
        jz      .exit
        cmpi    r5, SYS_READ_SECTOR
        jz      .read
        cmpi    r5, SYS_GETPID
        jz      .getpid
        li      r1, E_NOSYS
        jmp     .done
.write: call    sys_write
        jmp     .done
.read:  call    sys_read_sector
        jmp     .done
.getpid:
        ld      r1, [r9 + T_ID]
        jmp     .done
.yield: li      r1, 0
        st      [r8 + F_R1], r1
        jmp     schedule
.exit:  st      [r9 + T_EXIT], r1
        li      r2, ST_EXITED
        st      [r9 + T_STATE], r2
        call    kline
        mov     r1, r9
        call    print_task
        li      r1, msg_exit
        call    puts
        ld      r1, [r9 + T_EXIT]
        call    putdec_s
        call    knl
        jmp     schedule
.done:  st      [r8 + F_R1], r1         ; the result, returned in the task's r1
        mov     r1, r8
        ret

; range_check(r1 = addr, r2 = len, r4 = lo, r5 = hi) -> r6 = 1 if [addr, addr+len) lies in
; [lo, hi), else 0. Written so that addr + len cannot wrap around.  clobbers: r6
range_check:
        cmp     r1, r4
        jb      .no
        cmp     r1, r5
        ja      .no
        sub     r6, r5, r1              ; room left above addr
        cmp     r2, r6
        ja      .no
        li      r6, 1
        ret
.no:    li      r6, 0
        ret

; user_range_ok(r1 = addr, r2 = len, r3 = 1 if the kernel will write there)
;   -> r1 = 1 if the whole range is mapped for the task (and writable if asked), else 0.
; The task's user mappings are the same in every task: the stack page (read/write) and the
; user text (read-only).                                             clobbers: r1, r4..r6
user_range_ok:
        li      r4, USTACK_BASE
        li      r5, USTACK_TOP
        call    range_check
        cmpi    r6, 0
        jnz     .ok
        cmpi    r3, 0
        jnz     .no                     ; the text is read-only
        li      r4, UTEXT_BASE
        li      r5, UTEXT_END
        call    range_check
        cmpi    r6, 0
        jnz     .ok
.no:    li      r1, 0
        ret
.ok:    li      r1, 1
        ret

; sys_write(r1 = buf, r2 = len) -> len, or E_FAULT                  clobbers: r1..r7
sys_write:
        li      r3, 0
        mov     r7, r1
        call    user_range_ok
        cmpi    r1, 0
        jz      .fault
        mov     r1, r7
        cmpi    r2, 0
        jz      .done
        ; Console line discipline: a write that ends with '\n' is a line, and a line always
        ; starts at the left margin (tasks' "A3 " tokens may be cut off mid-line).
        add     r3, r1, r2
        ldb     r3, [r3 - 1]            ; the last byte of this write
        li      r4, last_char
        ld      r5, [r4]                ; the last byte on the console so far
        st      [r4], r3                ; (kline uses it too)
        cmpi    r3, '\n'
        jnz     .emit
        cmpi    r5, '\n'
        jz      .emit
        mov     r5, r1
        call    putnl
        mov     r1, r5
.emit:  push    r2
        call    putsn                   ; the task's buffer, read through its own mapping
        pop     r2
.done:  mov     r1, r2
        ret
.fault: li      r1, E_FAULT
        ret

        .data
msg_exit:       .asciz  " exited with code "
        .text
