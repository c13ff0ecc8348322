; syscalls.s — the system calls smpkernel and its paravirtual port (guests/pvsmp) handle alike.
; Included in the kernel's int 0x80 handler once it has saved the thread's registers and loaded
; r1 = number, r2 = argument (r13 = this CPU's data): the dispatch by number, then exit, yield
; and puts (they leave through the including kernel's `switch` / `resume`; `sys_remap`, the
; shootdown, is each kernel's own).

        cmpi    r1, SYS_EXIT
        jz      sys_exit
        cmpi    r1, SYS_YIELD
        jz      sys_yield
        cmpi    r1, SYS_PUTS
        jz      sys_puts
        cmpi    r1, SYS_REMAP
        jz      sys_remap
        jmp     resume                                  ; unknown: nothing happens

sys_exit:
        ld      r1, [r13 + PC_CURRENT]
        shli    r1, r1, TCB_SHIFT
        li      r2, TCBS
        add     r1, r1, r2
        li      r2, DEAD
        st      [r1 + TCB_STATE], r2
        li      r1, alive
        li      r2, -1
        call    atomic_add
sys_yield:
        li      r1, yields
        li      r2, 1
        call    atomic_add
        call    pick_next
        jmp     switch

sys_puts:
        mov     r8, r2
        li      r1, console_lock
        li      r4, 0
        call    spin_lock
        mov     r1, r8
        call    puts
        li      r1, console_lock
        call    spin_unlock
        jmp     resume

