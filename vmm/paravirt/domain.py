"""Domains: a paravirtualized guest = a `VM` plus the tables the paravirtual VMM keeps for it.

`build_domain` is the domain builder of docs/paravirtual-abi.md ("Start of day"): it takes
machine frames from the VMM's pool, loads the image at virtual = pseudo-physical address, writes
start_info, shared_info and the p2m array, builds the initial page directory and tables (mapped
read-only; the VMM hole mapped PL 0), validates them through the frame table exactly as a guest
request would be, and leaves the vCPU at the image entry in ring 1 with events masked.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import attrs
from toyvisor.cpu.cpu import HALTED
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    COND_MASK,
    CR0_PG,
    FLAG_IF,
    GATE_DPL_SHIFT,
    GATE_P,
    GATE_RING_SHIFT,
    GATE_TRAP,
    M32,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_A,
    PTE_D,
    PTE_FRAME,
    PTE_P,
    PTE_PL_SHIFT,
    PTE_W,
    SP,
)

from ..vm import PAUSED, RUNNABLE, STOPPED, VM, VMError, VMSnapshot
from .abi import (
    EFAULT,
    GUEST_KERNEL_RING,
    HOLE_PDE,
    INVALID_MFN,
    PV_VMM_START,
    SH_EVTCHN_MASK,
    SH_EVTCHN_PENDING,
    SH_SYSTEM_TIME,
    SH_UPCALL_MASK,
    SI_CONSOLE_GREF,
    SI_NR_VCPUS,
    SI_CONSOLE_PORT,
    SI_DOMID,
    SI_FIRST_FREE,
    SI_FLAGS,
    SI_MAGIC,
    SI_NR_PAGES,
    SI_P2M,
    SI_PT_BASE,
    SI_SHARED_INFO,
    SI_VMM_START,
    SIF_PRIVILEGED,
    START_INFO_MAGIC,
    TT_DPL_MASK,
    TT_FAST,
    VI_CR2,
    VI_UPCALL_MASK,
    VI_UPCALL_PENDING,
    VI_VIRTUAL_TIME,
    VIRQ_DOM_EXC,
    HypercallError,
)
from .events import EventChannels
from .grants import GrantTable
from .log import Refusal, RefusalLog
from .memory import PD, PT, P2MMemory
from .vcpus import check_vcpu_count, vcpu_info_offset

if TYPE_CHECKING:
    from toyvisor.tools.guest import Guest

    from ..strategies.paravirtual import Paravirtual

_u32 = struct.Struct("<I")
RUNNING, BLOCKED, SHUTDOWN = "running", "blocked", "shutdown"


class DomainVM(VM):
    """The `VM` of a domain: pseudo-physical memory through the p2m, host ranges = its frames."""

    def __init__(self, hypervisor, guest, name: str, domain: Domain) -> None:
        self.domain = domain
        # a paravirtual vCPU is a VM of one vCPU of its own (`toyvisor.vmm.paravirt.vcpus`): the
        # guest's `cpus` are the domain's vCPUs, not this VM's
        if getattr(guest, "cpus", 1) != 1:
            guest = attrs.evolve(guest, cpus=1)
        super().__init__(hypervisor, guest, name, 0, len(domain.p2m) * PAGE_SIZE)
        self.owns_slice = False
        self.base = min(domain.frames())
        #: this vCPU's number in its domain (`toyvisor.vmm.paravirt.vcpus`: the others)
        self.vcpu_id = 0
        #: the ring-1 stack for traps and events from ring 3 (``stack_switch``), per vCPU
        self.kernel_sp = 0
        #: the one-shot timer's deadline in this vCPU's virtual time (0: none)
        self.timer_deadline = 0
        #: whether VCPUOP_initialise gave it a context (vCPU 0: the builder did)
        self.initialised = True
        #: a TLB flush another vCPU asked for while this one was not on the real CPU
        self.flush_pending = False

    def _guest_memory(self, host, base: int, size: int):
        return P2MMemory(host, self.domain)

    def host_ranges(self) -> list[tuple[int, int]]:
        runs: list[list[int]] = []
        for frame in sorted(self.domain.frames()):
            if runs and runs[-1][1] == frame:
                runs[-1][1] = frame + PAGE_SIZE
            else:
                runs.append([frame, frame + PAGE_SIZE])
        return [(a, b - a) for a, b in runs]

    def owns_host(self, pa: int, size: int) -> bool:
        frame = pa & PTE_FRAME
        domain = self.domain
        if (pa + size - 1) & PTE_FRAME != frame:
            return self.owns_host(pa, 1) and self.owns_host(pa + size - 1, 1)
        return domain.system.frames.owner.get(frame) == domain.domid \
            or frame in domain.grants.mapped_frames()

    def describe_host_memory(self) -> str:
        return f"{len(self.domain.frames())} machine frames (and granted ones)"

    def structural_violations(self) -> list[str]:
        return [f"{self.name}: {finding}" for finding in self.domain.audit()]

    def boot(self) -> None:
        raise VMError(f"{self.name}: a domain is booted by its builder")


@attrs.frozen
class DomainSnapshot:
    """A domain's state: the VM's snapshot plus the VMM's tables for it (for a rollback)."""

    vm: VMSnapshot
    frames: tuple[int | None, ...]
    frame_table: tuple
    tables: tuple


class Domain:
    """One paravirtualized guest (see docs/paravirtualization.md, Domains)."""

    def __init__(self, system: Paravirtual, domid: int, guest: Guest, privileged: bool) -> None:
        self.system = system
        self.domid = domid
        self.guest = guest
        self.privileged = privileged
        self.p2m: list[int | None] = []
        #: vector → (flags, handler) of the virtual trap table
        self.trap_table: dict[int, tuple[int, int]] = {}
        self.event_callback = 0
        self.shutdown_reason: str | None = None
        self.pins: dict[int, int] = {}
        self.start_info_pfn = self.shared_info_pfn = self.p2m_pfn = 0
        self.first_free_pfn = 0
        self.events = EventChannels(self)
        self.grants = GrantTable(self)
        #: refused hypercalls and why (`toyvisor.vmm.paravirt.log`, like ``xl dmesg``)
        self.refusals = RefusalLog()
        frames = system.hypervisor.frames
        #: VMM frames: the hole's page table and the real interrupt table of fast system calls
        self.hole_table = frames.alloc()
        self.idt_frame = frames.alloc()
        memory = system.hypervisor.machine.memory
        memory.write32(self.hole_table, self.idt_frame | PTE_P)  # PL 0, read-only
        #: the VM of the vCPU the VMM is working for now (the strategy sets it at each hook):
        #: what a hypercall, a bounce or an upcall acts on; vCPU 0's outside a run
        self.vm: DomainVM
        #: every vCPU's VM, by vCPU number (`toyvisor.vmm.paravirt.vcpus`)
        self.vcpus: list[DomainVM] = []

    # -- per-vCPU state (of the current vCPU, `vm`) -----------------------------------------------
    @property
    def kernel_sp(self) -> int:
        return self.vm.kernel_sp

    @kernel_sp.setter
    def kernel_sp(self, value: int) -> None:
        self.vm.kernel_sp = value

    @property
    def timer_deadline(self) -> int:
        return self.vm.timer_deadline

    @timer_deadline.setter
    def timer_deadline(self, value: int) -> None:
        self.vm.timer_deadline = value

    @property
    def boot_vm(self) -> DomainVM:
        """vCPU 0's VM: the domain's console, lifecycle and result."""
        return self.vcpus[0] if self.vcpus else self.vm

    def vcpu_info(self, field: int, vcpu_id: int | None = None) -> int:
        """The shared_info offset of a vcpu_info field (``VI_*``) of `vcpu_id` (default: the
        current vCPU)."""
        return vcpu_info_offset(self.vm.vcpu_id if vcpu_id is None else vcpu_id, field)

    # -- identity and state -----------------------------------------------------------------------
    @property
    def memory(self):
        return self.system.hypervisor.machine.memory

    @property
    def cr3(self) -> int:
        return self.vm.vcpu.cr3

    @property
    def state(self) -> str:
        vm = self.boot_vm
        if vm.state == STOPPED or self.shutdown_reason is not None:
            return SHUTDOWN
        if vm.state == PAUSED:
            return "paused"
        up = [v for v in self.vcpus if v.state == RUNNABLE] or [vm]
        return BLOCKED if all(v.blocked for v in up) else RUNNING

    def frames(self) -> list[int]:
        return [m for m in self.p2m if m is not None]

    def special_frames(self) -> set[int]:
        return {self.p2m[self.start_info_pfn], self.p2m[self.shared_info_pfn]} - {None}

    @property
    def fast_vectors(self) -> frozenset[int]:
        return frozenset(v for v, (flags, _) in self.trap_table.items() if flags & TT_FAST)

    # -- shared_info --------------------------------------------------------------------------------
    def shared(self, offset: int) -> int:
        return _u32.unpack_from(self.memory.data, self.p2m[self.shared_info_pfn] + offset)[0]

    def set_shared(self, offset: int, value: int) -> None:
        self.memory.write32(self.p2m[self.shared_info_pfn] + offset, value & M32)

    def pending_bits(self) -> int:
        return self.shared(SH_EVTCHN_PENDING) | self.shared(SH_EVTCHN_PENDING + 4) << 32

    def mask_bits(self) -> int:
        return self.shared(SH_EVTCHN_MASK) | self.shared(SH_EVTCHN_MASK + 4) << 32

    def update_clocks(self) -> None:
        self.set_shared(SH_SYSTEM_TIME, self.system.hypervisor.cpu.platform.clock)
        self.set_shared(self.vcpu_info(VI_VIRTUAL_TIME), self.vm.devices.clock)

    # -- guest virtual memory, as ring 1 sees it -----------------------------------------------------
    def translate(self, va: int, write: bool) -> int:
        """Machine address of guest `va` for a ring-1 access; EFAULT if the guest could not."""
        va &= M32
        if va >= PV_VMM_START:
            raise HypercallError(EFAULT, f"{va:#010x} is in the VMM hole")
        table = self.system.frames
        pde = table.read(self.cr3, va >> 22)
        pte = table.read(pde & PTE_FRAME, (va >> PAGE_SHIFT) & 0x3FF) if pde & PTE_P else 0
        pl = min(pde >> PTE_PL_SHIFT & 3, pte >> PTE_PL_SHIFT & 3)
        if not pte & PTE_P or pl < GUEST_KERNEL_RING or (write and not pde & pte & PTE_W):
            raise HypercallError(EFAULT, f"{va:#010x} is not {'writable' if write else 'mapped'}")
        frame = pte & PTE_FRAME
        if not self.vm.owns_host(frame, 1):
            raise HypercallError(EFAULT, f"{va:#010x} maps a foreign frame")
        return frame | (va & (PAGE_SIZE - 1))

    def read_word(self, va: int) -> int:
        if va & 3:
            raise HypercallError(EFAULT, "unaligned")
        return _u32.unpack_from(self.memory.data, self.translate(va, False))[0]

    def write_word(self, va: int, value: int) -> None:
        if va & 3:
            raise HypercallError(EFAULT, "unaligned")
        self.memory.write32(self.translate(va, True), value & M32)

    def read_words(self, va: int, n: int) -> list[int]:
        return [self.read_word((va + 4 * i) & M32) for i in range(n)]

    def read_bytes(self, va: int, n: int) -> bytes:
        data = self.memory.data
        return b"".join(data[start:start + size] for start, size in self._pages(va, n, False))

    def writable_addresses(self, va: int, n: int) -> list[int]:
        """Machine addresses of `n` bytes at `va`, all checked writable before any is written
        (so a bad buffer fails with EFAULT having changed nothing)."""
        return [a for start, size in self._pages(va, n, True) for a in range(start, start + size)]

    def _pages(self, va: int, n: int, write: bool) -> list[tuple[int, int]]:
        """(machine address, bytes) of each page-sized piece of the `n` bytes at `va`, in order:
        one translation a page, where a byte-by-byte walk would fail at the same (first) byte
        of the first bad page, as every byte of a page maps alike."""
        pieces = []
        while n > 0:
            va &= M32
            size = min(n, PAGE_SIZE - (va & (PAGE_SIZE - 1)))
            pieces.append((self.translate(va, write), size))
            va, n = va + size, n - size
        return pieces

    # -- the VMM hole and the real interrupt table ----------------------------------------------------
    def install_hole(self, directory: int) -> None:
        table = self.system.frames
        table.write(directory, HOLE_PDE, self.hole_table | PTE_P)  # PL 0, read-only
        for i in range(HOLE_PDE + 1, 1024):
            table.write(directory, i, 0)

    def write_real_idt(self) -> None:
        """The real gates of the fast vectors: DPL 3, ring 1, trap gate; all others absent."""
        data = bytearray(PAGE_SIZE)
        for vector, (flags, handler) in self.trap_table.items():
            if flags & TT_FAST:
                _u32.pack_into(data, 8 * vector, handler)
                _u32.pack_into(data, 8 * vector + 4, GATE_P | (flags & TT_DPL_MASK) << GATE_DPL_SHIFT
                               | GUEST_KERNEL_RING << GATE_RING_SHIFT | GATE_TRAP)
        self.memory.write(self.idt_frame, bytes(data))

    # -- bouncing traps and delivering events ---------------------------------------------------------
    def push_frame(self, error: int, pc: int) -> None:
        """Push the trap frame of docs/machine.md on the ring-1 stack and enter ring 1."""
        vcpu = self.vm.vcpu
        old_sp = vcpu.regs[SP]
        sp = self.kernel_sp if vcpu.cpl > GUEST_KERNEL_RING else old_sp
        flags = vcpu.flags & COND_MASK
        if not self.shared(self.vcpu_info(VI_UPCALL_MASK)):
            flags |= FLAG_IF
        for value in (old_sp, flags, vcpu.cpl, pc, error):
            sp = (sp - 4) & M32
            self.write_word(sp, value)
        vcpu.regs[SP] = sp
        vcpu.cpl = GUEST_KERNEL_RING

    def bounce(self, vector: int, error: int, pc: int, cr2: int | None = None) -> None:
        """Deliver an exception or `int n` to the guest's virtual trap-table handler."""
        vm = self.vm
        cause = f"bounce:{vector}"
        vm.guest_causes[cause] = vm.guest_causes.get(cause, 0) + 1
        vm.count_event("interrupt_injection")
        entry = self.trap_table.get(vector)
        if entry is None:
            self.crash(f"no trap-table handler for vector {vector} (error {error:#x}) "
                       f"at pc {pc:#010x}")
            return
        if cr2 is not None:
            self.set_shared(self.vcpu_info(VI_CR2), cr2)
        saved = (list(vm.vcpu.regs), vm.vcpu.cpl)
        try:
            self.push_frame(error, pc)
        except HypercallError as why:
            vm.vcpu.regs[:], vm.vcpu.cpl = saved
            self.crash(f"cannot push the frame for vector {vector} at pc {pc:#010x}: {why}")
            return
        vm.vcpu.pc = entry[1]

    def deliverable_events(self) -> bool:
        """An unmasked pending event for the current vCPU (a port notifies the vCPU it is
        bound to: `EventChannels.vcpu_ports`)."""
        return bool(self.pending_bits() & ~self.mask_bits()
                    & self.events.vcpu_ports(self.vm.vcpu_id))

    def maybe_upcall(self) -> bool:
        """At an instruction boundary: deliver an upcall if an unmasked event is pending,
        events are not masked (upcall_mask = 0) and a callback is registered."""
        if not self.deliverable_events():
            return False
        self.set_shared(self.vcpu_info(VI_UPCALL_PENDING), 1)
        if self.shared(self.vcpu_info(VI_UPCALL_MASK)) or not self.event_callback:
            return False
        vm = self.vm
        try:
            self.push_frame(0, vm.vcpu.pc)
        except HypercallError as why:
            self.crash(f"cannot push the upcall frame: {why}")
            return False
        self.set_shared(self.vcpu_info(VI_UPCALL_MASK), 1)
        vm.vcpu.pc = self.event_callback
        vm.deliveries += 1
        vm.count_event("interrupt_injection")
        vm.guest_causes["upcall"] = vm.guest_causes.get("upcall", 0) + 1
        return True

    def refuse(self, hypercall: str, code: int, reason: str) -> None:
        """Record a refused hypercall in the domain's log (the guest only gets `code`)."""
        clock = self.system.hypervisor.cpu.platform.clock
        self.refusals.record(Refusal(clock, self.domid, hypercall, code, reason))

    # -- lifecycle ------------------------------------------------------------------------------------
    def wake(self, vcpu_id: int = 0) -> None:
        if vcpu_id < len(self.vcpus):
            self.vcpus[vcpu_id].blocked = False
        else:
            self.vm.blocked = False

    def shutdown(self, reason: str, report: str | None = None) -> None:
        self.shutdown_reason = reason
        stop = HALTED if reason == "poweroff" else f"shutdown:{reason}"
        for vm in self.vcpus or [self.vm]:  # every vCPU stops; vCPU 0 carries the report
            vm.blocked = False
            vm.stop(stop, report if vm is self.boot_vm else None)
        self.system.notify_dom0(VIRQ_DOM_EXC, exclude=self)

    def crash(self, report: str) -> None:
        self.shutdown("crash", f"{self.vm.name} crashed: {report}")

    # -- audit ----------------------------------------------------------------------------------------
    def check_table(self, frame: int, kind: str) -> list[str]:
        table = self.system.frames
        found = []
        for i in range(HOLE_PDE if kind == PD else 1024):
            entry = table.read(frame, i)
            if not entry & PTE_P:
                continue
            target = entry & PTE_FRAME
            if not entry >> PTE_PL_SHIFT & 3:
                found.append(f"{kind} {frame:#x}[{i}] has PL 0")
            if kind == PD and table.ftype.get(target) != PT:
                found.append(f"directory {frame:#x}[{i}] names a non-table {target:#x}")
            if kind == PT and not self.vm.owns_host(target, 1):
                found.append(f"table {frame:#x}[{i}] maps foreign frame {target:#x}")
        # the real page walker sets the accessed bit when it goes through the hole (a fast system
        # call reads the trap table there): that bit is the hardware's, not a lost hole
        hole = table.read(frame, HOLE_PDE) & ~(PTE_A | PTE_D) if kind == PD else None
        if kind == PD and hole != self.hole_table | PTE_P:
            found.append(f"directory {frame:#x} lost the VMM hole")
        return found

    def audit(self) -> list[str]:
        table = self.system.frames
        found = []
        for frame in self.frames():
            if table.owner.get(frame) != self.domid:
                found.append(f"p2m names frame {frame:#x} owned by {table.owner.get(frame)}")
        return found


def add_secondary_vcpus(domain: Domain, n: int) -> None:
    """Give `domain` vCPUs 1 … n−1 (`toyvisor.vmm.paravirt.vcpus`): created, not initialised,
    events masked, hosted by the hypervisor like any VM."""
    boot = domain.boot_vm
    hypervisor = domain.system.hypervisor
    for i in range(1, n):
        vm = DomainVM(hypervisor, domain.guest, f"{boot.name}/v{i}", domain)
        vm.vcpu_id = i
        vm.initialised = False
        domain.vcpus.append(vm)
        domain.set_shared(vcpu_info_offset(i, VI_UPCALL_MASK), 1)
        hypervisor.add_vm(vm)


def build_domain(system: Paravirtual, guest: Guest, *, privileged: bool = False,
                 name: str | None = None, vcpus: int = 1) -> Domain:
    """Create, build and register a domain for `guest` with `vcpus` vCPUs, vCPU 0 running
    (docs/paravirtual-abi.md, Start of day; the others wait for VCPUOP_initialise/up)."""
    nr_vcpus = check_vcpu_count(vcpus)
    hypervisor = system.hypervisor
    nr_pages = -(-guest.memory_size // PAGE_SIZE)
    # A guest directory may name a paravirtual port of its kernel (guest.toml `pv_source`).
    image = guest.pv_image or guest.image
    image_end = max((s.address + len(s.data) for s in image.segments), default=0)
    n_tables = -(-nr_pages // 1024)
    n_p2m = -(-nr_pages * 4 // PAGE_SIZE)
    si = -(-image_end // PAGE_SIZE)
    layout_end = si + 2 + n_p2m + 1 + n_tables
    if layout_end >= nr_pages or nr_pages * PAGE_SIZE > PV_VMM_START:
        raise VMError(f"a domain of {nr_pages} pages cannot hold an image ending at "
                      f"{image_end:#x} plus its start-of-day pages and a stack")
    domid = system.next_domid()
    domain = Domain(system, domid, guest, privileged)
    try:
        frames = system.frames.take(domid, nr_pages)
    except HypercallError as why:
        hypervisor.frames.release(domain.hole_table)
        hypervisor.frames.release(domain.idt_frame)
        raise VMError(f"not enough machine memory for {nr_pages} pages: {why}") from None
    domain.p2m = list(frames)
    domain.start_info_pfn, domain.shared_info_pfn, domain.p2m_pfn = si, si + 1, si + 2
    pd_pfn = si + 2 + n_p2m
    pt_pfns = list(range(pd_pfn + 1, pd_pfn + 1 + n_tables))
    domain.first_free_pfn = layout_end
    vm = DomainVM(hypervisor, guest, name or f"{guest.name}#d{domid}", domain)
    domain.vm = vm
    domain.vcpus.append(vm)
    memory = vm.memory
    for segment in image.segments:
        memory.write(segment.address, bytes(segment.data))
    words = {SI_MAGIC: START_INFO_MAGIC, SI_DOMID: domid,
             SI_FLAGS: SIF_PRIVILEGED if privileged else 0, SI_NR_PAGES: nr_pages,
             SI_SHARED_INFO: (si + 1) * PAGE_SIZE, SI_PT_BASE: pd_pfn * PAGE_SIZE,
             SI_P2M: (si + 2) * PAGE_SIZE, SI_FIRST_FREE: layout_end,
             SI_VMM_START: PV_VMM_START}
    for offset, value in words.items():
        memory.write32(si * PAGE_SIZE + offset, value)
    memory.write((si + 2) * PAGE_SIZE, b"".join(_u32.pack(f) for f in frames))
    domain.set_shared(SH_UPCALL_MASK, 1)  # events masked at start of day
    memory.write32(si * PAGE_SIZE + SI_NR_VCPUS, nr_vcpus)
    read_only = {si, pd_pfn, *pt_pfns}
    pd = frames[pd_pfn]
    for i, pt_pfn in enumerate(pt_pfns):
        memory.write32(pd_pfn * PAGE_SIZE + 4 * i,
                       frames[pt_pfn] | PTE_P | PTE_W | 3 << PTE_PL_SHIFT)  # the PTE decides
    for pfn in range(nr_pages):
        entry = frames[pfn] | PTE_P | GUEST_KERNEL_RING << PTE_PL_SHIFT
        if pfn not in read_only:
            entry |= PTE_W
        memory.write32(pt_pfns[pfn // 1024] * PAGE_SIZE + 4 * (pfn % 1024), entry)
    system.domains[domid] = domain
    hypervisor.add_vm(vm)
    system.frames.get_type(domain, pd, PD)  # validated like any guest directory; base pointer
    vcpu = vm.vcpu
    vcpu.pc = image.entry
    vcpu.cpl = GUEST_KERNEL_RING
    vcpu.cr0 = CR0_PG
    vcpu.cr3 = pd
    vcpu.regs[1] = si * PAGE_SIZE
    vcpu.regs[SP] = nr_pages * PAGE_SIZE
    domain.kernel_sp = nr_pages * PAGE_SIZE
    domain.write_real_idt()
    domain.update_clocks()
    vm.state = RUNNABLE
    add_secondary_vcpus(domain, nr_vcpus)
    return domain


__all__ = [
    "BLOCKED",
    "INVALID_MFN",
    "RUNNING",
    "SHUTDOWN",
    "SI_CONSOLE_GREF",
    "SI_CONSOLE_PORT",
    "Domain",
    "DomainSnapshot",
    "DomainVM",
    "GuestFault",
    "build_domain",
]
