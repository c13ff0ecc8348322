; dom0.s — the privileged domain of a migration host (docs/migration.md, "Paravirtual").
;
; Xen's migration daemon is a process in dom0's user space that drives the hypervisor with
; dom0-only hypercalls.  toyvisor's daemon (toyvisor.vmm.migration.daemon) makes those
; hypercalls with this domain's identity and keeps its buffers (the domain list, the dirty
; bitmap) in this domain's first free page; the kernel itself has nothing to do but wait, so it
; blocks for good (no callback, no timer: nothing ever wakes it).

start:
.idle:  li      r1, HYPERVISOR_sched_op
        li      r2, SCHEDOP_block
        int     HYPERVISOR_VECTOR
        jmp     .idle

        .include "pv.s"
