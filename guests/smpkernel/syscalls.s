; syscalls.s — the system calls smpkernel and its paravirtual port (guests/pvsmp) handle alike:
; exit, yield and puts, entered from the kernel's int 0x80 handler with r13 = this CPU's data and
; the thread's registers saved (they leave through the including kernel's `switch` / `resume`).

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

