"""The handlers of the hypercall table (`toyvisor.vmm.paravirt.hypercalls`).

Each takes the calling `Domain` and its arguments already checked and converted by kind (a
``domid`` argument arrives as a `Domain`, an ``mfn`` as a machine address), returns the result,
or raises `HypercallError` having changed nothing (batches: nothing beyond the requests before
the failing one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toyvisor.isa.spec import (
    COND_MASK,
    FLAG_IF,
    M32,
    PAGE_SIZE,
    PORT_DISK_ADDR,
    PORT_PIC_MASK,
    PORT_PIC_PENDING,
    PORT_TIMER_PERIOD,
    SECTOR_SIZE,
    SP,
)

from .abi import (
    EACCES,
    EBUSY,
    EINVAL,
    ENOMEM,
    ENOSPC,
    EPERM,
    GUEST_KERNEL_RING,
    HYPERCALL_VECTOR,
    INVALID_MFN,
    PV_VMM_START,
    SHUTDOWN_REASONS,
    TT_DPL_MASK,
    TT_FAST,
    VI_UPCALL_MASK,
    VIRQ_CONSOLE,
    VIRQ_TIMER,
    HypercallError,
)
from .memory import PD, PT

if TYPE_CHECKING:
    from .domain import Domain

NO_RESULT = object()
MAX_TRAP_ENTRIES = 256


# -- traps, callbacks, stacks, iret -----------------------------------------------------------------
def set_trap_table(d: Domain, table: int) -> int:
    entries: dict[int, tuple[int, int]] = {}
    for i in range(MAX_TRAP_ENTRIES + 1):
        vector, flags, handler = d.read_words((table + 12 * i) & M32, 3)
        if handler == 0:
            break
        if i == MAX_TRAP_ENTRIES:
            raise HypercallError(EINVAL, "more than 256 entries")
        if vector > 255 or flags & ~(TT_DPL_MASK | TT_FAST) or handler >= PV_VMM_START:
            raise HypercallError(EINVAL, f"bad entry {i}")
        if flags & TT_FAST and (vector < 32 or vector == HYPERCALL_VECTOR):
            raise HypercallError(EINVAL, f"vector {vector} cannot be fast")
        entries[vector] = (flags, handler)
    d.trap_table = entries
    d.write_real_idt()
    return 0


def set_callbacks(d: Domain, callback: int) -> int:
    d.event_callback = callback
    return 0


def stack_switch(d: Domain, sp: int) -> int:
    d.kernel_sp = sp
    return 0


def iret(d: Domain) -> object:
    vcpu = d.vm.vcpu
    sp = vcpu.regs[SP]
    r1, _error, pc, cs, flags, old_sp = d.read_words(sp, 6)
    ring = cs & 3
    if cs > 3 or ring not in (GUEST_KERNEL_RING, 3) or pc >= PV_VMM_START:
        raise HypercallError(EINVAL, f"bad iret frame (cs {cs}, pc {pc:#x})")
    vcpu.regs[1] = r1
    vcpu.regs[SP] = old_sp
    vcpu.pc = pc
    vcpu.cpl = ring
    vcpu.flags = (vcpu.flags & ~COND_MASK) | (flags & COND_MASK)
    if flags & FLAG_IF:
        d.set_shared(d.vcpu_info(VI_UPCALL_MASK), 0)
    return NO_RESULT


# -- memory -------------------------------------------------------------------------------------------
def mmu_update(d: Domain, reqs: int, count: int) -> int:
    table = d.system.frames
    done = 0
    try:
        for i in range(count):
            ptr, val = d.read_words((reqs + 8 * i) & M32, 2)
            table.update_entry(d, ptr, val)
            done += 1
    finally:
        if done:
            d.system.flush_tlb(d)
    return count


def update_va_mapping(d: Domain, va: int, pte: int, flags: int) -> int:
    if flags & ~3:
        raise HypercallError(EINVAL, "flags")
    table = d.system.frames
    slot, index = table.pte_slot(d, va)
    table.update_entry(d, slot + 4 * index, pte)
    if flags & 2:
        d.system.flush_tlb(d)
    else:
        d.system.invlpg(d, va)
    return 0


def _owned_table(d: Domain, frame: int) -> None:
    if d.system.frames.owner.get(frame) != d.domid:
        raise HypercallError(EPERM, f"frame {frame:#x} is not the domain's")


def _pin(d: Domain, frame: int, kind: str) -> int:
    _owned_table(d, frame)
    if frame in d.pins:
        raise HypercallError(EINVAL, f"frame {frame:#x} is already pinned")
    d.system.frames.get_type(d, frame, kind)
    d.pins[frame] = kind
    return 0


def pin_table(d: Domain, frame: int) -> int:
    return _pin(d, frame, PT)


def pin_directory(d: Domain, frame: int) -> int:
    return _pin(d, frame, PD)


def unpin(d: Domain, frame: int) -> int:
    _owned_table(d, frame)
    if frame not in d.pins:
        raise HypercallError(EINVAL, f"frame {frame:#x} is not pinned")
    table = d.system.frames
    if table.tcount[frame] == 1 and any(loc[0] == frame for loc in table.grant_slots):
        raise HypercallError(EBUSY, "the table holds grant mappings")
    del d.pins[frame]
    table.put_type(frame)
    d.system.flush_tlb(d)
    return 0


def new_baseptr(d: Domain, frame: int) -> int:
    _owned_table(d, frame)
    table = d.system.frames
    table.get_type(d, frame, PD)
    old = d.cr3
    d.vm.vcpu.cr3 = frame
    table.put_type(old)
    d.system.flush_tlb(d)
    return 0


def tlb_flush(d: Domain) -> int:
    d.system.flush_tlb(d)
    return 0


def invlpg(d: Domain, va: int) -> int:
    d.system.invlpg(d, va)
    return 0


def _write_p2m(d: Domain, pfn: int, value: int) -> None:
    """Keep the guest's p2m array (start_info.p2m) in step with the VMM's."""
    offset = d.p2m_pfn * PAGE_SIZE + 4 * pfn
    frame = d.p2m[offset // PAGE_SIZE] if offset // PAGE_SIZE < len(d.p2m) else None
    if frame is not None:
        d.memory.write32(frame + offset % PAGE_SIZE, value)


def release_pfn(d: Domain, pfn: int) -> None:
    """Balloon one pfn out (checks first, then: unmap everywhere in the domain, free)."""
    table = d.system.frames
    frame = d.p2m[pfn]
    if frame is None:
        raise HypercallError(EINVAL, f"pfn {pfn} has no frame")
    if frame in d.special_frames():
        raise HypercallError(EPERM, "start_info / shared_info")
    if pfn in d.grants.granted_pfns():
        raise HypercallError(EBUSY, f"pfn {pfn} is granted")
    if frame in table.ftype:
        raise HypercallError(EBUSY, f"pfn {pfn} is a {table.ftype[frame]}")
    table.unmap_all(frame)
    d.p2m[pfn] = None
    table.give_back(frame)
    _write_p2m(d, pfn, INVALID_MFN)
    d.system.frame_moved(frame, None)


def back_pfn(d: Domain) -> int:
    table = d.system.frames
    pfn = next((p for p, m in enumerate(d.p2m) if m is None), None)
    if pfn is None:
        raise HypercallError(ENOSPC, "every pfn is backed")
    if not table.pool:
        raise HypercallError(ENOMEM, "no free machine frame")
    (frame,) = table.take(d.domid, 1)
    d.p2m[pfn] = frame
    _write_p2m(d, pfn, frame)
    d.system.frame_moved(frame, d)
    return pfn


def decrease_reservation(d: Domain, lst: int, count: int) -> int:
    done = 0
    try:
        for i in range(count):
            pfn = d.read_word((lst + 4 * i) & M32)
            if pfn >= len(d.p2m):
                raise HypercallError(EINVAL, f"pfn {pfn}")
            release_pfn(d, pfn)
            done += 1
    finally:
        if done:
            d.system.flush_tlb(d)
    return count


def increase_reservation(d: Domain, lst: int, count: int) -> int:
    for i in range(count):  # the list must be writable before any frame moves
        d.translate((lst + 4 * i) & M32, True)
    for i in range(count):
        d.write_word((lst + 4 * i) & M32, back_pfn(d))
    return count


# -- time and scheduling -----------------------------------------------------------------------------
def set_timer_op(d: Domain, deadline: int) -> int:
    d.timer_deadline = deadline
    timer = d.vm.devices.platform.timer
    if deadline == 0:
        timer.period, timer.deadline = 0, None
    else:
        timer.period, timer.deadline = 1 << 62, max(deadline, d.vm.devices.clock)
    return 0


def sched_yield(d: Domain) -> int:
    d.system.hypervisor.end_slice()
    return 0


def sched_block(d: Domain) -> int:
    d.set_shared(d.vcpu_info(VI_UPCALL_MASK), 0)
    if d.deliverable_events():
        return 0
    vm = d.vm
    timer = vm.devices.platform.timer
    if timer.deadline is not None:
        idle = timer.deadline - vm.devices.clock
        if idle > 0:  # nothing else can happen to this domain first: idle to the deadline
            vm.devices.clock += idle
            vm.idle_ticks += idle
        return 0
    vm.blocked = True
    return 0


def sched_shutdown(d: Domain, reason: int) -> int:
    d.shutdown(SHUTDOWN_REASONS.get(reason, "crash" if reason > 3 else "poweroff"))
    return 0


# -- events ------------------------------------------------------------------------------------------
def evtchn_alloc_unbound(d: Domain, remote: Domain) -> int:
    return d.events.alloc_unbound(remote)


def evtchn_bind_interdomain(d: Domain, remote: Domain, port: int) -> int:
    return d.events.bind_interdomain(remote, port)


def evtchn_bind_virq(d: Domain, virq: int) -> int:
    port = d.events.bind_virq(virq, d.vm.vcpu_id)
    if virq == VIRQ_CONSOLE and d.boot_vm.devices.platform.console.waiting:
        d.events.raise_virq(VIRQ_CONSOLE)  # input that arrived before anyone listened
    return port


def evtchn_send(d: Domain, port: int) -> int:
    return d.events.send(port)


def evtchn_close(d: Domain, port: int) -> int:
    return d.events.close(port)


def evtchn_unmask(d: Domain, port: int) -> int:
    return d.events.unmask(port)


# -- grants ------------------------------------------------------------------------------------------
def grant_access(d: Domain, grantee: Domain, pfn: int, readonly: int) -> int:
    return d.grants.grant_access(grantee, pfn, readonly)


def grant_map(d: Domain, granter: Domain, gref: int, va: int) -> int:
    return d.grants.map(granter, gref, va)


def grant_unmap(d: Domain, handle: int) -> int:
    return d.grants.unmap(handle)


def grant_end_access(d: Domain, gref: int) -> int:
    return d.grants.end_access(gref)


# -- console and devices ---------------------------------------------------------------------------------
def console_write(d: Domain, count: int, buf: int) -> int:
    data = d.read_bytes(buf, count)
    d.boot_vm.devices.platform.console.output.extend(data)  # one console per domain
    # one call of the virtual console model for the whole buffer (priced as one device access;
    # trap-and-emulate pays one per byte, each `out` being an access of its own)
    d.vm.count_event("device_access")
    return count


def console_read(d: Domain, count: int, buf: int) -> int:
    console = d.boot_vm.devices.platform.console
    targets = d.writable_addresses(buf, min(count, console.waiting))  # EFAULT consumes nothing
    for address in targets:  # through `write`: decoded or translated code there is dropped
        d.memory.write(address, bytes((console.read(),)))
    d.vm.count_event("device_access")
    if console.waiting:  # level-triggered, as IRQ 1 natively: more input, another event
        d.events.raise_virq(VIRQ_CONSOLE)
    return len(targets)


_VMM_PORTS = (PORT_TIMER_PERIOD, PORT_PIC_MASK, PORT_PIC_PENDING)


def physdev_in(d: Domain, port: int) -> int:
    if port in _VMM_PORTS:
        raise HypercallError(EPERM, "the VMM's device")
    d.vm.count_event("port_io")
    return d.system.hypervisor.machine.platform.port_in(port) & 0x7FFFFFFF


def physdev_out(d: Domain, port: int, value: int) -> int:
    if port in _VMM_PORTS:
        raise HypercallError(EPERM, "the VMM's device")
    if port == PORT_DISK_ADDR:
        first, last = value & ~0xFFF, (value + SECTOR_SIZE - 1) & ~0xFFF
        owner = d.system.frames.owner
        if owner.get(first) != d.domid or owner.get(last) != d.domid:
            raise HypercallError(EACCES, "DMA outside dom0's frames")
    d.vm.count_event("port_io")
    d.system.hypervisor.machine.platform.port_out(port, value)
    return 0


# -- multicall ---------------------------------------------------------------------------------------
def multicall(d: Domain, calls: int, count: int) -> int:
    from .hypercalls import dispatch

    for i in range(count):
        entry = (calls + 28 * i) & M32
        words = d.read_words(entry, 7)
        d.translate((entry + 24) & M32, True)
        result = dispatch(d, words[0], tuple(words[1:6]), nested=True)
        d.write_word((entry + 24) & M32, result & M32)
    return 0


# -- domain control (dom0) ---------------------------------------------------------------------------------
_STATE_CODES = {"running": 0, "blocked": 1, "paused": 2, "shutdown": 3}


def domctl_pause(d: Domain, target: Domain) -> int:
    if target is d:
        raise HypercallError(EINVAL, "a domain cannot pause itself")
    if target.vm.state != "runnable":
        raise HypercallError(EINVAL, f"domain {target.domid} is {target.state}: only a running "
                                     "or blocked domain can be paused")
    target.vm.pause()
    return 0


def domctl_unpause(d: Domain, target: Domain) -> int:
    if target.vm.state != "paused":
        raise HypercallError(EINVAL, f"domain {target.domid} is {target.state}, not paused")
    target.vm.resume()
    vm = target.vm
    vm.step_limit = max(vm.step_limit, vm.steps + vm.guest.max_steps)
    return 0


def domctl_destroy(d: Domain, target: Domain) -> int:
    if target is d:
        raise HypercallError(EINVAL, "use sched_op shutdown")
    if target.grants.mapped_by_others():
        raise HypercallError(EBUSY, "its grants are mapped")
    d.system.destroy_domain(target)
    return 0


def domctl_list(d: Domain, buf: int, limit: int) -> int:
    doms = sorted(d.system.domains.values(), key=lambda x: x.domid)[:limit]
    for i in range(4 * len(doms)):
        d.translate((buf + 4 * i) & M32, True)
    for i, dom in enumerate(doms):
        record = (dom.domid, _STATE_CODES[dom.state], len(dom.frames()), int(dom.privileged))
        for j, word in enumerate(record):
            d.write_word((buf + 16 * i + 4 * j) & M32, word)
    return len(doms)


def domctl_create(d: Domain, index: int) -> int:
    from ..vm import VMError

    configs = d.system.configs
    if index >= len(configs):
        raise HypercallError(EINVAL, f"no configuration {index}")
    try:
        new = d.system.create_domain(configs[index])
    except VMError as why:
        raise HypercallError(ENOMEM, str(why)) from None
    vm = new.vm
    vm.step_limit = vm.steps + vm.guest.max_steps
    return new.domid


def domctl_balloon(d: Domain, target: Domain, pages: int) -> int:
    if pages > len(target.p2m):
        raise HypercallError(EINVAL, f"target beyond the domain's {len(target.p2m)} pfns")
    while len(target.frames()) < pages and d.system.frames.pool:
        back_pfn(target)
    if len(target.frames()) > pages:
        for pfn in range(len(target.p2m) - 2, target.first_free_pfn - 1, -1):
            if len(target.frames()) <= pages:
                break
            try:
                release_pfn(target, pfn)
            except HypercallError:
                continue
        target.system.flush_tlb(target)
    return len(target.frames())


def fire_timer(d: Domain) -> None:
    d.timer_deadline = 0
    d.events.raise_virq(VIRQ_TIMER, d.vm.vcpu_id)


__all__ = ["NO_RESULT", "fire_timer"]
