; syscall — ring 3 `int 0x80` -> ring-0 handler (a bare `iret`) -> back to ring 3.
; (Adams & Agesen: "syscall", a native system call.)
;
; Ring 0 reads the clock, enters ring 3 with `iret` on a hand-made trap frame, ring 3 runs the
; loop and leaves through `int 0x81`, whose handler reads the clock and returns to our caller
; on the kernel stack saved before the drop. So the count also includes that one iret and one
; int 0x81 (and the handler's clock read), about 2 ticks over the whole run.
; Gates (set up by nanobench.s): 0x80 -> sys_null, 0x81 -> sys_back, both DPL 3, ring 0;
; traps from ring 3 land on ksp0.
bench_syscall:
        li      r1, saved_ksp
        st      [r1], sp                ; where sys_back finds our return address
        li      r10, iterations        ; N, or the count given on the console
        ld      r10, [r10]
        ; the frame a trap from ring 3 would have pushed: old sp, flags, cs, pc, error code
        li      r1, USTACK_TOP
        push    r1
        li      r1, 0                   ; flags: IF = 0
        push    r1
        li      r1, 3                   ; cs: CPL 3
        push    r1
        li      r1, .user_loop
        push    r1
        li      r1, 0
        push    r1
        in      r8, PORT_CLOCK
        iret                            ; -> ring 3
.user_loop:
        int     0x80
        addi    r10, r10, -1
        cmpi    r10, 0
        jnz     .user_loop
        int     0x81                    ; back to ring 0 for good
.hang:  jmp     .hang                   ; not reached

; int 0x80: the null system call
sys_null:
        iret

; int 0x81: stop the clock, drop the trap frame and return from bench_syscall in ring 0
sys_back:
        in      r9, PORT_CLOCK
        li      r1, saved_ksp
        ld      sp, [r1]
        sub     r1, r9, r8
        ret

saved_ksp:
        .word   0
