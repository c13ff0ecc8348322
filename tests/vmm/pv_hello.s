; pv_hello.s — a tiny paravirtual guest kernel (docs/paravirtual-abi.md) for the tests.
;
; Ring 1 kernel: installs a trap table with a *fast* int 0x80 (ring 3 reaches it with no VMM
; entry) and a #GP handler, prints through console_io, makes one page of user code and one of
; user stack PL 3 with update_va_mapping, drops to ring 3 with the iret hypercall.  The user
; program makes N_CALLS fast system calls (each prints "."), tries `int 0x82` (a #GP bounced to
; the kernel, which prints "G" and skips it), then asks to exit; the kernel shuts down.
HC              = 0x82
HC_TRAPS        = 0
HC_CONSOLE      = 2
HC_UPDATE_VA    = 4
HC_SCHED        = 6
HC_STACK_SWITCH = 12
HC_IRET         = 13
N_CALLS         = 5
USER_CODE       = 0x2000
USER_STACK      = 0x3000

start:  mov     r10, r1                 ; start_info
        li      r1, HC_TRAPS
        li      r2, traps
        int     HC
        li      r1, HC_STACK_SWITCH
        mov     r2, sp
        int     HC
        li      r1, HC_CONSOLE
        li      r2, 0
        li      r3, 9
        li      r4, hello
        int     HC
        ; user pages: PL 3 (p2m[pfn] | P | W | PL3)
        ld      r11, [r10+0x18]         ; p2m array
        li      r5, USER_CODE
        call    make_user
        li      r5, USER_STACK
        call    make_user
        ; enter ring 3: frame {r1, error, pc, cs, flags, old sp}
        li      r1, USER_STACK + 0x1000
        push    r1
        li      r1, 0x200
        push    r1
        li      r1, 3
        push    r1
        li      r1, user_main
        push    r1
        li      r1, 0
        push    r1
        push    r1                      ; saved r1
        li      r1, HC_IRET
        int     HC

make_user:                              ; r5 = va
        shri    r6, r5, 12
        shli    r6, r6, 2
        add     r6, r6, r11
        ld      r3, [r6]
        ori     r3, r3, 0xF
        li      r1, HC_UPDATE_VA
        mov     r2, r5
        li      r4, 1
        int     HC
        ret

sys_entry:                              ; fast int 0x80 from ring 3: r1 = 1 print, 2 exit
        push    r1
        cmpi    r1, 2
        jz      .exit
        li      r1, HC_CONSOLE
        li      r2, 0
        li      r3, 1
        li      r4, dot
        int     HC
        li      r1, HC_IRET
        int     HC
.exit:  li      r1, HC_CONSOLE
        li      r2, 0
        li      r3, 5
        li      r4, bye
        int     HC
        li      r1, HC_SCHED
        li      r2, 2
        li      r3, 0
        int     HC

gp_entry:                               ; #GP: print G, skip the 4-byte instruction
        li      r1, HC_CONSOLE
        li      r2, 0
        li      r3, 1
        li      r4, gee
        int     HC
        ld      r1, [sp+4]
        addi    r1, r1, 4
        st      [sp+4], r1
        push    r1
        li      r1, HC_IRET
        int     HC

traps:  .word   0x80, 3 | 4, sys_entry  ; DPL 3, fast
        .word   13, 0, gp_entry
        .word   0, 0, 0
hello:  .ascii  "pv hello\n"
dot:    .ascii  "."
gee:    .ascii  "G"
bye:    .ascii  " bye\n"

        .org    USER_CODE
user_main:
        li      r7, N_CALLS
.loop:  li      r1, 1
        int     0x80
        addi    r7, r7, -1
        cmpi    r7, 0
        jnz     .loop
        int     0x82                    ; not allowed from ring 3: #GP
        li      r1, 2
        int     0x80
.spin:  jmp     .spin
        .org    USER_STACK
        .space  4
