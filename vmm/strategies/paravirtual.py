"""``paravirtual``: Xen-style paravirtualization (docs/paravirtualization.md).

The guest kernel is *modified*: it runs in **ring 1** on its own (validated) page tables, never
executes a privileged instruction, and asks the VMM (ring 0) for privileged work with hypercalls
(``int 0x82``; `toyvisor.vmm.paravirt.hypercalls`).  Its applications run in ring 3.  Every
domain (`toyvisor.vmm.paravirt.domain`) is a `VM` the framework schedules round-robin on the
real timer; the domain's state beyond the VM lives in the VMM's tables.

VMM entries, by cause (``by_cause`` keys):

| cause | real event | what the VMM does |
| --- | --- | --- |
| ``hypercall:<name>`` | ``int 0x82`` from ring 1 | dispatch through the hypercall table; priced as one ``hypercall`` event (not ``trap``) |
| ``vmm:privileged`` | #GP from a privileged instruction (or ``in``/``out``) | not expected from a PV kernel: #GP is bounced to the guest's trap table |
| ``vmm:pgfault`` | #PF | ``shared_info.cr2`` = the address, bounced to the guest's handler |
| ``vmm:int`` | ``int n`` that is not a fast vector (and ``int 0x82`` from ring 3) | bounced through the virtual trap table with its DPL check (#GP(8n+2) otherwise) |
| ``vmm:exception`` | #DE, #UD, #AC, #GP (not an instruction's privilege) | bounced to the guest's handler |
| ``vmm:timer`` | the real timer | virtual time, VIRQ_TIMER, scheduling |

Fast system calls do not enter the VMM at all: a ring-3 ``int n`` on a vector whose trap-table
entry has the *fast* flag is delivered by the real CPU through a real interrupt table in the VMM
hole (`toyvisor.cpu.monitor`, direct vectors).

A domain that cannot take a bounce (no handler, or its ring-1 stack is not writable) crashes:
it stops with ``shutdown:crash`` and a report, and dom0 gets ``VIRQ_DOM_EXC``.
"""

from __future__ import annotations

import time

import attrs

from toyvisor.isa.spec import PAGE_SIZE, VEC_GP, VEC_PF

from ..paravirt.abi import HYPERCALL_VECTOR, PV_IDT_VA, VIRQ_TIMER
from ..paravirt.domain import Domain, DomainSnapshot, build_domain
from ..paravirt.hypercalls import NO_RESULT, dispatch, name_of
from ..paravirt.memory import FrameTable
from ..vm import DESTROYED, STOPPED, VMError
from ..result import cost_cycles
from . import Strategy, register, vm_result


@register
class Paravirtual(Strategy):
    """The paravirtual VMM (see the module docstring)."""

    name = "paravirtual"
    #: only guests with a paravirtual port (``pv_source``) can run: `comparison` adds it for them
    in_default_comparison = False
    #: the guest runs a different (ported) kernel: equivalence is judged on its outcome
    runs_port = True
    #: SMP domains: the guest brings up its vCPUs with vcpu_op (`toyvisor.vmm.paravirt.vcpus`)
    smp_unsupported = None

    def __init__(self, variant: str | None = None) -> None:
        super().__init__(variant)
        self.domains: dict[int, Domain] = {}
        #: guests dom0 may create with ``domctl create(index)``
        self.configs: list = []
        self.frames: FrameTable | None = None
        self._next_domid = 0

    # -- the machine ---------------------------------------------------------------------------------
    def bind(self, hypervisor) -> None:
        super().bind(hypervisor)
        frames = [f for start, end in hypervisor.free for f in range(start, end, PAGE_SIZE)]
        hypervisor.free = []  # every machine frame beyond the VMM region is the PV pool's
        self.frames = FrameTable(hypervisor.machine.memory, frames)
        if hypervisor.audit and frames:
            memory = hypervisor.machine.memory
            for start, size in _runs(frames):
                memory.watch(start, size, read=True, write=True)

    def next_domid(self) -> int:
        domid, self._next_domid = self._next_domid, self._next_domid + 1
        return domid

    def create_domain(self, guest, *, privileged: bool = False, name: str | None = None,
                      vcpus: int = 1) -> Domain:
        """Build a domain of `vcpus` vCPUs (domid 0, the first, is dom0 if `privileged`)."""
        return build_domain(self, guest, privileged=privileged, name=name, vcpus=vcpus)

    def destroy_domain(self, domain: Domain) -> None:
        self.hypervisor.destroy_vm(domain.boot_vm)

    def detach(self, vm) -> None:
        domain = getattr(vm, "domain", None)
        if domain is None or domain.domid not in self.domains:
            return
        self._drop_other_vcpus(domain, vm)
        domain.vm = domain.boot_vm
        table = self.frames
        domain.grants.unmap_all()
        domain.events.close_all()
        for other in self.domains.values():  # peers' grants to it can no longer be mapped
            if other is not domain:
                for gref in [g for g, e in other.grants.entries.items() if e[0] == domain.domid]:
                    del other.grants.entries[gref]
        owned = set(domain.frames())
        for frame in list(table.maps):
            kept = {loc: w for loc, w in table.maps[frame].items() if loc[0] not in owned}
            if kept:
                table.maps[frame] = kept
            else:
                del table.maps[frame]
        for frame in owned:
            table.ftype.pop(frame, None)
            table.tcount.pop(frame, None)
            table.give_back(frame)
            self.frame_moved(frame, None)
        domain.p2m = [None] * len(domain.p2m)
        self.hypervisor.frames.release(domain.hole_table)
        self.hypervisor.frames.release(domain.idt_frame)
        del self.domains[domain.domid]

    def _drop_other_vcpus(self, domain: Domain, vm) -> None:
        """Destroying any vCPU's VM destroys the domain: the hypervisor forgets its other
        vCPUs here (it removes `vm` itself)."""
        hv = self.hypervisor
        for other in domain.vcpus:
            if other is not vm and other in hv.vms:
                hv.vms.remove(other)
                other.state = DESTROYED
                if hv.current is other:
                    hv.current = None

    def frame_moved(self, frame: int, domain: Domain | None) -> None:
        """Keep the resource audit's watch in step with a frame changing hands."""
        hv = self.hypervisor
        if not hv.audit:
            return
        if domain is not None and hv.current is domain.vm:
            hv.machine.memory.unwatch(frame, PAGE_SIZE)
        else:
            hv.machine.memory.watch(frame, PAGE_SIZE, read=True, write=True)

    def notify_dom0(self, virq: int, exclude: Domain | None = None) -> None:
        dom0 = self.domains.get(0)
        if dom0 is not None and dom0 is not exclude and dom0.privileged:
            dom0.events.raise_virq(virq)

    def flush_tlb(self, domain: Domain) -> None:
        """A change to the domain's page tables: every vCPU's TLB is flushed (`flush_vcpu`);
        priced as one flush, as before vCPUs were several."""
        for vm in domain.vcpus or [domain.vm]:
            self._flush(vm, None)
        domain.vm.count_event("tlb_flush")

    def invlpg(self, domain: Domain, va: int) -> None:
        if self.hypervisor.current is domain.vm:
            self.hypervisor.cpu.invlpg(va)

    def flush_vcpu(self, vm, va: int | None) -> None:
        """Flush one vCPU's TLB (`va` None) or one page of it, for a shootdown hypercall,
        priced as one ``tlb_flush`` of the caller."""
        self._flush(vm, va)
        vm.domain.vm.count_event("tlb_flush")

    def _flush(self, vm, va: int | None) -> None:
        """The VMM flushes the real TLB of every physical CPU `vm` is loaded on (Xen sends its
        own IPI to those CPUs: the guest takes none); a vCPU loaded nowhere is flushed before it
        runs again."""
        hv = self.hypervisor
        cpus = [p.cpu for p in getattr(hv, "pcpus", ()) if p.loaded is not None
                and p.loaded[0] is vm]
        if hv.current is vm and hv.cpu not in cpus:
            cpus.append(hv.cpu)
        for cpu in cpus:
            if va is None:
                cpu.mmu.flush()
                cpu.flush_fetch()
            else:
                cpu.invlpg(va)
        if not cpus:
            vm.flush_pending = True

    # -- hooks ----------------------------------------------------------------------------------------
    def load(self, vm, cpu, switch: bool) -> None:
        domain: Domain = vm.domain
        domain.vm = vm  # the vCPU the VMM now works for
        if switch and domain.maybe_upcall():  # events sent while it was not running
            cpu.regs[:] = vm.vcpu.regs
            cpu.pc = vm.vcpu.pc
        cpu.cpl = vm.vcpu.cpl
        cpu.pid = vm.vcpu_id  # what rdpid reads: the vCPU number (as Xen loads TSC_AUX)
        if switch or cpu.mmu.cr3 != vm.vcpu.cr3 or vm.flush_pending:
            cpu.write_cr(3, vm.vcpu.cr3)
            vm.flush_pending = False
            vm.count_event("tlb_flush")
        cpu.ksp[1] = domain.kernel_sp
        cpu.idtr = PV_IDT_VA
        cpu.direct_vectors = domain.fast_vectors
        domain.update_clocks()

    def unload(self, vm, cpu) -> None:
        cpu.direct_vectors = frozenset()
        cpu.pid = cpu.index

    def entry_event(self, vm, event) -> str:
        if event.source == "software" and event.vector == HYPERCALL_VECTOR and event.cpl == 1:
            return "hypercall"
        return "trap"

    def handle(self, vm, event) -> None:
        domain: Domain = vm.domain
        domain.vm = vm
        vcpu = vm.vcpu
        vcpu.cpl = event.cpl  # a fast system call changes the real ring without the VMM
        source, vector = event.source, event.vector
        if source == "interrupt":
            vm.count_entry("vmm:timer")
            return
        if source == "software":
            vcpu.pc = event.pc
            if vector == HYPERCALL_VECTOR and event.cpl == 1:
                self._hypercall(domain)
                return
            vm.count_entry("vmm:int")
            entry = domain.trap_table.get(vector)
            if vector == HYPERCALL_VECTOR or entry is None or event.cpl > entry[0] & 3:
                domain.bounce(VEC_GP, vector * 8 + 2, (event.pc - 4) & 0xFFFFFFFF)
            else:
                domain.bounce(vector, 0, event.pc)
            return
        if vector == VEC_PF:
            vm.count_entry("vmm:pgfault")
            domain.bounce(VEC_PF, event.error, event.pc, cr2=event.address)
            return
        if vector == VEC_GP and event.error == 0 and self._privileged_at(event.pc):
            vm.count_entry("vmm:privileged")
        else:
            vm.count_entry("vmm:exception")
        domain.bounce(vector, event.error, event.pc)

    def _privileged_at(self, pc: int) -> bool:
        try:
            decoded = self.hypervisor.cpu.fetch(pc).decoded
        except Exception:  # noqa: BLE001 - an unfetchable pc is simply not an instruction
            return False
        return decoded.definition.privilege.name == "PRIVILEGED" \
            or decoded.definition.mnemonic in ("in", "out")

    def _hypercall(self, domain: Domain) -> None:
        vm = domain.vm
        regs = vm.vcpu.regs
        number = regs[1]
        vm.count_entry(f"hypercall:{name_of(number)}")
        result = dispatch(domain, number, tuple(regs[2:7]))
        if result is not NO_RESULT:
            regs[1] = result & 0xFFFFFFFF

    def service_interrupts(self, vm) -> None:
        domain: Domain = vm.domain
        if vm.state == STOPPED:
            return
        domain.vm = vm
        platform = vm.devices.platform
        platform.timer.update(platform.clock)
        if platform.pic.pending & 1:
            platform.pic.lower_irq(0)
            platform.timer.period, platform.timer.deadline = 0, None
            domain.timer_deadline = 0
            domain.events.raise_virq(VIRQ_TIMER, vm.vcpu_id)
        domain.maybe_upcall()
        domain.update_clocks()

    # -- snapshots (a rollback of one domain) ------------------------------------------------------------
    def snapshot_domain(self, domain: Domain) -> DomainSnapshot:
        if len(domain.vcpus) > 1:
            raise VMError(f"{domain.boot_vm.name}: a snapshot holds one vCPU; this domain has "
                          f"{len(domain.vcpus)}")
        table = self.frames
        owned = set(domain.frames())
        frame_table = (
            tuple(sorted((f, table.ftype[f], table.tcount[f]) for f in owned if f in table.ftype)),
            tuple(sorted((f, tuple(sorted(m.items()))) for f, m in table.maps.items()
                         if f in owned or any(loc[0] in owned for loc in m))),
            tuple(sorted((loc, v) for loc, v in table.grant_slots.items() if loc[0] in owned)))
        tables = (tuple(sorted(domain.trap_table.items())), domain.event_callback,
                  domain.kernel_sp, domain.timer_deadline, domain.shutdown_reason,
                  tuple(sorted(domain.pins.items())), domain.events.state(),
                  domain.grants.state(), domain.vm.blocked)
        return DomainSnapshot(domain.vm.snapshot(), tuple(domain.p2m), frame_table, tables)

    def restore_domain(self, domain: Domain, snap: DomainSnapshot) -> None:
        if tuple(domain.p2m) != snap.frames:
            raise VMError(f"{domain.vm.name}: the domain's machine frames changed since the "
                          "snapshot (ballooned?)")
        table = self.frames
        owned = set(domain.frames())
        for f in owned:
            table.ftype.pop(f, None)
            table.tcount.pop(f, None)
        types, maps, slots = snap.frame_table
        for f, kind, count in types:
            table.ftype[f], table.tcount[f] = kind, count
        for f in list(table.maps):
            if f in owned or any(loc[0] in owned for loc in table.maps[f]):
                del table.maps[f]
        for f, m in maps:
            table.maps[f] = dict(m)
        for loc in [loc for loc in table.grant_slots if loc[0] in owned]:
            del table.grant_slots[loc]
        table.grant_slots.update(dict(slots))
        (trap, domain.event_callback, domain.kernel_sp, domain.timer_deadline,
         domain.shutdown_reason, pins, ports, grants, blocked) = snap.tables
        domain.trap_table = dict(trap)
        domain.pins = dict(pins)
        domain.events.ports = dict(ports)
        entries, handles = grants
        domain.grants.entries = {k: list(v) for k, v in entries}
        domain.grants.handles = dict(handles)
        domain.vm.restore(snap.vm)
        domain.vm.blocked = blocked
        domain.write_real_idt()

    # -- running ---------------------------------------------------------------------------------------
    #: the placements this VMM can have: a Xen-style hypervisor is type 1 (dom0 drives the real
    #: devices itself; there is no host OS under it whose system calls could be priced)
    placements = ("system",)

    def run(self, guest, *, placement: str = "system", max_steps: int | None = None,
            trace=None, cpus: int | None = None, pcpus: int | None = None):
        """Run `guest` as dom0 (privileged), alone, with a free pool as large as its memory,
        with `cpus` vCPUs (default: the guest's ``cpus``; vCPU 0 boots, the kernel brings up
        the others with ``vcpu_op``) on `pcpus` physical CPUs (default: one per vCPU).  The
        guest's disk is the real machine's: dom0 drives it
        through ``physdev_op``.  `placement` is ignored: the result says ``system`` (see
        `placements`).  The result sums the counts of every vCPU."""
        from ..hypervisor import Hypervisor

        size = -(-guest.memory_size // PAGE_SIZE) * PAGE_SIZE
        vcpus = guest.cpus if cpus is None else cpus
        hypervisor = Hypervisor(self, memory_size=(1 << 20) + 2 * size,
                                placement=self.placements[0],
                                pcpus=vcpus if pcpus is None else pcpus,
                                interleave=guest.interleave)
        if guest.disk:
            hypervisor.machine.platform.disk.load(guest.disk)
        domain = self.create_domain(guest, privileged=True, vcpus=vcpus)
        started = time.perf_counter()
        hypervisor.run(max_steps=max_steps, trace=trace)
        self.wall_time = time.perf_counter() - started
        domain.vm = vm = domain.boot_vm
        self.last_vm = vm
        self.last_domain = domain
        if vm.blocked and vm.stop_reason is None:
            vm.stop_reason = "blocked"
        return attrs.evolve(domain_result(self, hypervisor, domain),
                            refusals=domain.refusals.entries)

    def disk_contents(self) -> bytes:
        """The real disk after the last `run` (dom0 drives it)."""
        return bytes(self.hypervisor.machine.platform.disk.data)


def domain_result(strategy, hypervisor, domain: Domain):
    """vCPU 0's `vm_result` with every count summed over the domain's vCPUs."""
    result = attrs.evolve(vm_result(strategy, hypervisor, domain.boot_vm),
                          vcpus=len(domain.vcpus))
    others = domain.vcpus[1:]
    if not others:
        return result
    events, causes = dict(result.events), dict(result.by_cause)
    violations = list(result.resource_violations)
    instructions, entries, emulated = (result.guest_instructions, result.vmm_entries,
                                       result.emulated_instructions)
    direct = domain.boot_vm.retired_direct
    for vm in others:
        for name, n in vm.events.items():
            events[name] = events.get(name, 0) + n
        for name, n in vm.by_cause.items():
            causes[name] = causes.get(name, 0) + n
        # the audit's findings for this vCPU (the domain's structural ones are vCPU 0's)
        violations += [v for v in hypervisor.violations if v.startswith(f"{vm.name}:")]
        instructions += vm.guest_instructions
        entries += vm.entries
        emulated += vm.emulated
        direct += vm.retired_direct
    return attrs.evolve(result, events=events, by_cause=causes, guest_instructions=instructions,
                        vmm_entries=entries, emulated_instructions=emulated,
                        resource_violations=tuple(violations), cycles=cost_cycles(events),
                        efficiency=direct / instructions if instructions else 1.0)


def _runs(frames):
    start = prev = None
    for f in sorted(frames):
        if start is None:
            start = prev = f
        elif f == prev + PAGE_SIZE:
            prev = f
        else:
            yield start, prev + PAGE_SIZE - start
            start = prev = f
    if start is not None:
        yield start, prev + PAGE_SIZE - start


__all__ = ["Paravirtual", "domain_result"]
