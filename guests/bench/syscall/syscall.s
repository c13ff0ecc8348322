; syscall.s — the syscall-heavy loop: a ring-3 task calling the kernel through int 0x80.
;
; Ring 0 installs two gates callable from ring 3 (0x80: add, 0x81: exit), sets ksp0 and drops to
; ring 3 with a hand-made trap frame and `iret` (as guests/examples/syscall.s does). Paging and
; interrupts stay off: the cost measured is the trap round trip.
;
;   ring 3, per iteration (6 instructions):   r2 = i;  int 0x80;  sum += r1;  i -= 1;  compare;  branch
;   ring 0, per call (7 instructions):        push r3;  total += r2 (a load and a store);  r1 = total;
;                                             pop r3;  iret
;
; so an iteration is 13 retired instructions and one software interrupt.
;
; Input (console): the number of calls, 1 to MAX_CALLS (default DEFAULT_CALLS).
; Output: "syscall: <n> calls, sum 0x........, total 0x........", then halt.

DEFAULT_CALLS   = 10000
MAX_CALLS       = 10000000
KSTACK_TOP      = 0x80000               ; ring-0 stack at boot, also ksp0
USTACK_TOP      = 0x90000               ; ring-3 stack
IDT             = 0xA0000
SYSCALL_GATE    = GATE_P | GATE_DPL3 | GATE_RING0

start:
        li      sp, KSTACK_TOP
        li      r1, DEFAULT_CALLS
        li      r2, MAX_CALLS
        call    read_count
        li      r2, calls
        st      [r2], r1
        mov     r8, r1                  ; handed to ring 3 in r8
        li      r1, IDT                 ; every gate absent ...
        li      r2, 0
        li      r3, 256 * 2
        call    memset32
        li      r1, IDT                 ; ... but the two syscalls
        li      r2, 0x80
        li      r3, sys_add
        li      r4, SYSCALL_GATE
        call    idt_set
        li      r1, IDT
        li      r2, 0x81
        li      r3, sys_exit
        li      r4, SYSCALL_GATE
        call    idt_set
        li      r1, IDT
        lidt    r1
        li      r1, KSTACK_TOP
        mtcr    ksp0, r1
        ; a trap frame in the CPU's order: old sp, flags, cs, pc, error code
        li      r1, USTACK_TOP
        push    r1
        li      r1, 0
        push    r1                      ; flags: IF = 0
        li      r1, 3
        push    r1                      ; cs: CPL 3
        li      r1, user_loop
        push    r1
        li      r1, 0
        push    r1
        li      r9, 0                   ; ring 3's sum
        iret

; ---- ring 3 ------------------------------------------------------------------------------
user_loop:
        mov     r2, r8
        int     0x80
        add     r9, r9, r1
        addi    r8, r8, -1
        cmpi    r8, 0
        jnz     user_loop
        int     0x81                    ; does not return

; ---- ring 0 ------------------------------------------------------------------------------
; add(r2): total += r2; r1 = the new total. Keeps every other register.
sys_add:
        push    r3
        li      r3, total
        ld      r1, [r3]
        add     r1, r1, r2
        st      [r3], r1
        pop     r3
        iret

; exit: report and halt
sys_exit:
        li      r1, msg_head
        call    puts
        li      r1, calls
        ld      r1, [r1]
        call    putdec
        li      r1, msg_sum
        call    puts
        mov     r1, r9
        call    puthex
        li      r1, msg_total
        call    puts
        li      r1, total
        ld      r1, [r1]
        call    puthex
        call    putnl
        cli
        hlt

        .include "../count.s"          ; with input.s and words.s
        .include "console.s"
        .include "mem.s"
        .include "idt.s"

msg_head:       .asciz  "syscall: "
msg_sum:        .asciz  " calls, sum "
msg_total:      .asciz  ", total "

        .data
calls:          .word   0
total:          .word   0
        .text
