"""The vCPUs of a paravirtual SMP domain (docs/paravirtual-abi.md, "Several vCPUs").

As in Xen, a domain is built with a fixed number of vCPUs and only vCPU 0 runs at start of day;
the guest brings up each other vCPU with ``vcpu_op initialise`` (an initial context: pc, stack,
ring-1 stack, page directory, r1 — Xen's ``VCPUOP_initialise`` with a ``vcpu_guest_context``)
then ``vcpu_op up``.  Each vCPU is a `DomainVM` of its own — its registers, cr3, ring-1 stack,
virtual time and one-shot timer, its ``vcpu_info`` in shared_info (upcall pending / mask) — and the
hypervisor schedules it like any VM; all of them share the domain's machine frames, page-frame
types, trap table, event callback, event channels and grants.

A vCPU knows who it is from its initial context (the guest passes the number in r1 and keeps it
per CPU, as Linux's Xen port does); ``rdpid`` gives the same number, because the VMM loads it into
the real CPU's TSC_AUX at every vCPU switch (as Xen does for RDPID/RDTSCP).

TLB shootdown by hypercall (``mmuext_op tlb_flush_multi`` / ``invlpg_multi``, Xen's
MMUEXT_TLB_FLUSH_MULTI / MMUEXT_INVLPG_MULTI): the VMM flushes the named vCPUs itself — the one on
the real CPU at once, the others before they run again — so no IPI, upcall, handler, ``iret`` or
acknowledgement spin happens in the guest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toyvisor.isa.spec import CR0_PG, M32, NUM_REGS, PAGE_SHIFT, SP

from ..vm import CREATED, RUNNABLE, VMError
from .abi import (
    CTX_FLAGS,
    CTX_KERNEL_SP,
    CTX_PC,
    CTX_PD_MFN,
    CTX_R1,
    CTX_SP,
    CTX_WORDS,
    EEXIST,
    EINVAL,
    GUEST_KERNEL_RING,
    MAX_VCPUS,
    PV_VMM_START,
    SH_CR2,
    SH_VCPU_INFO,
    SH_VIRTUAL_TIME,
    VCPU_INFO_SIZE,
    VI_CR2,
    VI_UPCALL_MASK,
    VI_VIRTUAL_TIME,
    HypercallError,
)
from .memory import PD
from .ops import set_timer_op

if TYPE_CHECKING:
    from .domain import Domain, DomainVM

#: vCPU 0's vcpu_info fields where the single-vCPU shared_info layout has them
_VCPU0 = {VI_CR2: SH_CR2, VI_VIRTUAL_TIME: SH_VIRTUAL_TIME}


def vcpu_info_offset(vcpu_id: int, field: int) -> int:
    """The shared_info byte offset of `field` (``VI_*``) of `vcpu_id`'s vcpu_info."""
    if vcpu_id == 0:
        return _VCPU0.get(field, field)
    return SH_VCPU_INFO + VCPU_INFO_SIZE * vcpu_id + field


def check_vcpu_count(n: int) -> int:
    if not 1 <= n <= MAX_VCPUS:
        raise VMError(f"a paravirtual domain has 1 to {MAX_VCPUS} vCPUs, not {n}")
    return n


def vcpu_of(domain: Domain, vcpu_id: int) -> DomainVM:
    return domain.vcpus[vcpu_id]


def is_up(vm: DomainVM) -> bool:
    return vm.state == RUNNABLE


# -- vcpu_op handlers ---------------------------------------------------------------------------
def initialise(d: Domain, target: DomainVM, ctx: int) -> int:
    """Give a vCPU that never ran its initial context, validated whole before anything moves."""
    if target.initialised:
        raise HypercallError(EEXIST, f"vCPU {target.vcpu_id} is already initialised")
    words = d.read_words(ctx, CTX_WORDS)
    pc, sp, kernel_sp, pd_mfn, r1, flags = (words[i // 4] for i in (
        CTX_PC, CTX_SP, CTX_KERNEL_SP, CTX_PD_MFN, CTX_R1, CTX_FLAGS))
    if flags:
        raise HypercallError(EINVAL, f"context flags {flags:#x} (must be 0)")
    for name, value in (("pc", pc), ("sp", sp), ("kernel_sp", kernel_sp)):
        if value >= PV_VMM_START:
            raise HypercallError(EINVAL, f"context {name} {value:#010x} is in the VMM hole")
    if pd_mfn >= 1 << (32 - PAGE_SHIFT):
        raise HypercallError(EINVAL, f"context page directory mfn {pd_mfn:#x}")
    directory = pd_mfn << PAGE_SHIFT
    if d.system.frames.owner.get(directory) != d.domid:
        raise HypercallError(EINVAL, f"context page directory {directory:#x} is not the "
                             "domain's")
    d.system.frames.get_type(d, directory, PD)  # validated as a new_baseptr would be
    vcpu = target.vcpu
    vcpu.regs[:] = [0] * NUM_REGS
    vcpu.regs[1], vcpu.regs[SP] = r1 & M32, sp
    vcpu.pc, vcpu.cpl, vcpu.cr0, vcpu.cr3 = pc, GUEST_KERNEL_RING, CR0_PG, directory
    target.kernel_sp = kernel_sp
    target.initialised = True
    d.set_shared(vcpu_info_offset(target.vcpu_id, VI_UPCALL_MASK), 1)
    return 0


def up(d: Domain, target: DomainVM) -> int:
    """Make an initialised vCPU runnable (a no-op for one that is up), its virtual time the
    caller's and its step budget the guest's."""
    if not target.initialised:
        raise HypercallError(EINVAL, f"vCPU {target.vcpu_id} has no context (initialise it)")
    if is_up(target):
        return 0
    target.devices.clock = max(target.devices.clock, d.vm.devices.clock)
    target.state = RUNNABLE
    target.stop_reason = None
    target.step_limit = target.steps + target.guest.max_steps
    return 0


def down(d: Domain, target: DomainVM) -> int:
    """Stop scheduling a vCPU (its context is kept: ``up`` resumes it); vCPU 0 carries the
    domain and cannot go down."""
    if target.vcpu_id == 0:
        raise HypercallError(EINVAL, "vCPU 0 cannot go down")
    if is_up(target):
        target.state = CREATED
        target.blocked = False
        if d.system.hypervisor.current is target:
            d.system.hypervisor.end_slice()
    return 0


def query_up(d: Domain, target: DomainVM) -> int:
    return int(is_up(target))


def _own_vcpu(d: Domain, target: DomainVM) -> None:
    if target is not d.vm:
        raise HypercallError(EINVAL, f"vCPU {d.vm.vcpu_id} cannot set vCPU {target.vcpu_id}'s "
                             "timer")


def set_singleshot_timer(d: Domain, target: DomainVM, deadline: int) -> int:
    """The caller's own one-shot timer (VCPUOP_set_singleshot_timer is for the calling vCPU)."""
    _own_vcpu(d, target)
    if deadline == 0:
        raise HypercallError(EINVAL, "deadline 0 (use stop_singleshot_timer)")
    return set_timer_op(d, deadline)


def stop_singleshot_timer(d: Domain, target: DomainVM) -> int:
    _own_vcpu(d, target)
    return set_timer_op(d, 0)


# -- TLB shootdown ------------------------------------------------------------------------------
def targets(d: Domain, mask: int) -> list[DomainVM]:
    """The vCPUs of `mask` (checked against the domain by the ``vcpumask`` kind)."""
    return [vm for vm in d.vcpus if mask >> vm.vcpu_id & 1]


def tlb_flush_multi(d: Domain, mask: int) -> int:
    for vm in targets(d, mask):
        d.system.flush_vcpu(vm, None)
    return 0


def invlpg_multi(d: Domain, va: int, mask: int) -> int:
    for vm in targets(d, mask):
        d.system.flush_vcpu(vm, va)
    return 0


def bind_ipi(d: Domain, target: DomainVM) -> int:
    return d.events.bind_ipi(target.vcpu_id)


def bind_vcpu(d: Domain, port: int, target: DomainVM) -> int:
    return d.events.bind_vcpu(port, target.vcpu_id)


__all__ = ["check_vcpu_count", "vcpu_info_offset", "vcpu_of"]
