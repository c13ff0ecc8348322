; smp_boot.s — the start of the SMP test guests (smp_identity.s, test_vmm_smp_generated.py):
; CPU 0 fills the interrupt table at IDT (every vector `unexpected`) and jumps to `smp_gates`,
; where the program sets its own gates and comes back by `jmp smp_start_aps`; CPU 0 then starts
; every other CPU, each CPU gets a 1 KiB stack of its own (CPU 0 keeps 0x7000) and loads the
; table, and every CPU continues at `smp_main` with r9 = the number of CPUs.
IDT     = 0xA000

start:  li      sp, 0x7000
        li      r1, IDT
        li      r2, unexpected
        li      r3, GATE_P | GATE_DPL0 | GATE_RING0
        call    idt_fill
        jmp     smp_gates
smp_start_aps:
        in      r9, PORT_CPU_COUNT
        li      r8, 1
.ap:    cmp     r8, r9
        jae     smp_common
        out     PORT_IPI_DEST, r8
        li      r1, ap_entry
        out     PORT_CPU_START, r1
        addi    r8, r8, 1
        jmp     .ap
ap_entry:
        rdpid   r1
        addi    r1, r1, 1
        shli    r1, r1, 10
        li      sp, 0x8000
        add     sp, sp, r1
        in      r9, PORT_CPU_COUNT
smp_common:
        li      r1, IDT
        lidt    r1
        jmp     smp_main

; gate(r2 = vector, r3 = handler): a ring-0 gate in IDT.          clobbers: r1, r4
gate:   li      r1, IDT
        li      r4, GATE_P | GATE_DPL0 | GATE_RING0
        jmp     idt_set

unexpected:
        li      r12, 0xBAD
        cli
        hlt
