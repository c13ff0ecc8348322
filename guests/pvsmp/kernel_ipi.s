; kernel_ipi.s — pvsmp with the TLB shootdown by IPIs, as natively (one event-channel IPI per
; other vCPU, acknowledged): the baseline that measures what invlpg_multi saves (pvsmp.s).
        SHOOTDOWN_BY_IPI = 1
        .include "pvsmp.s"
