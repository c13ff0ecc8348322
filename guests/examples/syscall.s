; syscall.s — from ring 0 down to ring 3 and back up through a syscall gate.
;
; Shows:
;   * an interrupt gate that ring 3 may call: int 0x80 with GATE_DPL3 (the DPL is the highest
;     ring allowed to `int` it) and GATE_RING0 (its handler runs in ring 0);
;   * ksp0: the stack the CPU switches to when ring 3 traps into ring 0;
;   * how to ENTER ring 3 the first time: there is no "call into ring 3", so ring 0 builds the
;     frame a trap would have pushed (old sp, flags, cs, pc, error code) and executes `iret`;
;   * the trap frame a syscall arrives with — from sp upward: error code, pc, cs, flags, old sp;
;   * `rdcs` is unprivileged: ring 3 can read its own CPL without trapping.
; Paging stays off, so there is no memory protection here: see pagefault.s and the minikernel.
;
; Syscall ABI of this toy: r1 = number, r2 = argument, result in r1, other registers kept.
;   1 = print r2 as a decimal number, 2 = print the string at r2, 3 = exit (halts the machine)
;
; Run:  toyvisor run guests/examples/syscall.s

KSTACK_TOP      = 0x8000                ; ring-0 stack, also ksp0
USTACK_TOP      = 0x9000                ; ring-3 stack
IDT             = 0xA000
SYS_PUTNUM      = 1
SYS_PUTS        = 2
SYS_EXIT        = 3

start:
        li      sp, KSTACK_TOP
        li      r1, IDT                 ; every gate absent ...
        li      r2, 0
        li      r3, 256 * 2
        call    memset32
        li      r1, IDT                 ; ... but the syscall gate, open to ring 3
        li      r2, 0x80
        li      r3, sys_entry
        li      r4, GATE_P | GATE_DPL3 | GATE_RING0
        call    idt_set
        li      r1, IDT                 ; and #GP, in case ring 3 tries something privileged
        li      r2, VEC_GP
        li      r3, gp_entry
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_set
        li      r1, IDT
        lidt    r1
        li      r1, KSTACK_TOP
        mtcr    ksp0, r1                ; traps from ring 3 land here

        li      r1, msg_drop
        call    puts
        ; a hand-made trap frame, pushed in the CPU's order: old sp, flags, cs, pc, error code
        li      r1, USTACK_TOP
        push    r1                      ; sp in ring 3
        li      r1, 0
        push    r1                      ; flags (IF = 0: no interrupts in this example)
        li      r1, 3
        push    r1                      ; cs: CPL 3
        li      r1, user_main
        push    r1                      ; pc
        li      r1, 0
        push    r1                      ; error code (iret discards it)
        iret                            ; -> ring 3

; ---- ring 3 ----------------------------------------------------------------------------
user_main:
        li      r1, SYS_PUTS
        li      r2, msg_user
        int     0x80
        rdcs    r2                      ; not privileged: reads the CPL (3)
        li      r1, SYS_PUTNUM
        int     0x80
        li      r1, SYS_PUTS
        li      r2, msg_nl
        int     0x80
        li      r1, SYS_EXIT
        li      r2, 42
        int     0x80
.hang:  jmp     .hang                   ; exit does not return

; ---- ring 0: the syscall handler ----------------------------------------------------------
; On entry (interrupt gate: IF = 0, CPL = 0, sp = ksp0 - 20):
;   [sp] error code, [sp+4] pc after the int, [sp+8] cs (3), [sp+12] flags, [sp+16] ring-3 sp
sys_entry:
        push    r2                      ; keep the caller's registers (the library clobbers r1..r5)
        push    r3
        push    r4
        push    r5
        cmpi    r1, SYS_PUTS
        jz      .puts
        cmpi    r1, SYS_PUTNUM
        jz      .num
        cmpi    r1, SYS_EXIT
        jz      .exit
        li      r1, -1                  ; unknown syscall
        jmp     .ret
.puts:  mov     r1, r2                  ; (no paging, so no pointer to check in this toy)
        call    puts
        li      r1, 0
        jmp     .ret
.num:   mov     r1, r2
        call    putdec
        li      r1, 0
.ret:   pop     r5
        pop     r4
        pop     r3
        pop     r2
        iret                            ; back to ring 3, after the `int`
.exit:  mov     r8, r2
        li      r1, msg_exit
        call    puts
        mov     r1, r8
        call    putdec
        li      r1, msg_cs
        call    puts
        ld      r1, [sp + 16 + 8]       ; the frame's cs, above our 4 pushes
        call    putdec
        li      r1, msg_usp
        call    puts
        ld      r1, [sp + 16 + 16]      ; the frame's ring-3 sp
        call    puthex
        call    putnl
        cli
        hlt

gp_entry:
        li      r1, msg_gp
        call    puts
        ld      r1, [sp + 4]
        call    puthex
        call    putnl
        cli
        hlt

        .include "console.s"
        .include "mem.s"
        .include "idt.s"

msg_drop:       .asciz  "ring 0: interrupt table loaded, dropping to ring 3 with iret\n"
msg_user:       .asciz  "ring 3: hello through int 0x80; rdcs says my CPL is "
msg_nl:         .asciz  "\n"
msg_exit:       .asciz  "ring 0: exit syscall, code "
msg_cs:         .asciz  "; the trap frame says cs = "
msg_usp:        .asciz  ", ring-3 sp = "
msg_gp:         .asciz  "ring 0: #GP from ring 3 at pc "
