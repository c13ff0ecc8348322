; kernel.s — pvsmp with the TLB shootdown by hypercall (mmuext_op invlpg_multi): see pvsmp.s.
        SHOOTDOWN_BY_IPI = 0
        .include "pvsmp.s"
