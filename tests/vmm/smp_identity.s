; smp_identity.s — every CPU of a multiprocessor shows who it is (`rdpid`), counts its own local
; timer's ticks and takes an IPI; CPU 0 prints what each saw.  Natively and under a VMM the
; report is the same: a VMM that gave two vCPUs one number, a vCPU another's timer or lost an
; IPI changes it (tests/vmm/test_vmm_smp.py).
TICKS   = 3                             ; local timer ticks each CPU waits for

        .include "smp_boot.s"

smp_gates:
        li      r2, 32                  ; IRQ 0: this CPU's local timer
        li      r3, tick
        call    gate
        li      r2, 48                  ; the first IPI vector
        li      r3, ipi
        call    gate
        jmp     smp_start_aps

smp_main:
        rdpid   r10
        shli    r11, r10, 2             ; r11 = 4 * my number
        li      r1, seen                ; seen[me] += 1: two CPUs of one number make it 2
        add     r1, r1, r11
        li      r2, 1
        xadd    r2, [r1]
        li      r1, 100 + 37            ; a local timer of its own period
        add     r1, r1, r10
        out     PORT_TIMER_PERIOD, r1
        sti
.ticks: li      r1, ticks
        add     r1, r1, r11
        ld      r2, [r1]
        cmpi    r2, TICKS
        jb      .ticks
        cli
        li      r1, 0
        out     PORT_TIMER_PERIOD, r1
        li      r1, arrived
        li      r2, 1
        xadd    r2, [r1]
        cmpi    r10, 0
        jnz     .park
.all:   li      r1, arrived             ; CPU 0: every CPU has its ticks
        ld      r2, [r1]
        cmp     r2, r9
        jnz     .all
        li      r1, 48 | IPI_TO_OTHERS  ; an IPI to each of the others
        out     PORT_IPI_SEND, r1
.acks:  li      r1, acked
        ld      r2, [r1]
        addi    r2, r2, 1
        cmp     r2, r9
        jnz     .acks
        li      r8, 0                   ; the report, CPU by CPU
.line:  cmp     r8, r9
        jae     .done
        li      r1, msg_cpu
        call    puts
        mov     r1, r8
        call    putdec
        li      r1, msg_seen
        call    puts
        shli    r12, r8, 2
        li      r1, seen
        add     r1, r1, r12
        ld      r1, [r1]
        call    putdec
        li      r1, msg_ticks
        call    puts
        li      r1, ticks
        add     r1, r1, r12
        ld      r1, [r1]
        call    putdec
        li      r1, msg_ipis
        call    puts
        li      r1, ipis
        add     r1, r1, r12
        ld      r1, [r1]
        call    putdec
        call    putnl
        addi    r8, r8, 1
        jmp     .line
.done:  cli
        hlt
.park:  sti                             ; the others wait for their IPI in `hlt`
.idle:  hlt
        li      r1, ipis
        add     r1, r1, r11
        ld      r2, [r1]
        cmpi    r2, 0
        jz      .idle
        cli
        hlt

tick:   push    r1                      ; ticks[me] += 1 (until TICKS: then the timer stops)
        push    r2
        rdpid   r1
        shli    r1, r1, 2
        li      r2, ticks
        add     r2, r2, r1
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        pop     r2
        pop     r1
        iret

ipi:    push    r1                      ; ipis[me] += 1, acked += 1
        push    r2
        rdpid   r1
        shli    r1, r1, 2
        li      r2, ipis
        add     r2, r2, r1
        ld      r1, [r2]
        addi    r1, r1, 1
        st      [r2], r1
        li      r1, acked
        li      r2, 1
        xadd    r2, [r1]
        pop     r2
        pop     r1
        iret

        .include "console.s"
        .include "mem.s"
        .include "idt.s"

        .align 4
arrived:        .word 0
acked:          .word 0
seen:           .space 4 * 64
ticks:          .space 4 * 64
ipis:           .space 4 * 64
msg_cpu:        .asciz "cpu "
msg_seen:       .asciz ": seen "
msg_ticks:      .asciz ", ticks "
msg_ipis:       .asciz ", IPIs "
