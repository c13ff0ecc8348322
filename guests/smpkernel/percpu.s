; percpu.s — a CPU's data block, shared by smpkernel and its paravirtual port (guests/pvsmp).

; r13 = percpu(r1 = cpu)   clobbers r1
percpu:
        shli    r1, r1, PERCPU_SHIFT
        li      r13, PERCPU
        add     r13, r13, r1
        ret
