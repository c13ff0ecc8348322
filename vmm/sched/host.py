"""The hypervisor on a multiprocessor: P physical CPUs, VMs of V vCPUs running real guest code, and
a scheduling policy deciding which vCPU runs where.

Each VM is a `toyvisor.cpu.Machine` of V CPUs — its vCPUs, which share the VM's memory and devices
and so see their own virtual CPU number (`rdpid`), virtual IPIs (start IPIs too), virtual local
timers and their own TLBs (a TLB shootdown is the guest's IPIs and `invlpg`s).  Guest code runs by
direct execution on whichever physical CPU the policy placed the vCPU on.

Time is one host clock in ticks (one tick = one guest instruction = one cycle of a physical CPU).
The host advances it in steps of `STEP` ticks: in each step every physical CPU runs its vCPU for
up to `STEP` ticks, CPU after CPU (a deterministic interleave, so races between vCPUs of a VM on
different CPUs are real), then the scheduling points of the step's end are handled.  A vCPU's
virtual clock follows the host clock: a vCPU that was not running catches up when it runs again
(its timer deadlines that passed fire at once), and a blocked vCPU is woken as soon as an
interrupt is deliverable to it.

The physical CPUs' caches are `toyvisor.cpu.cache.CoherentCaches`, shared by every VM (each VM's
memory sits at its own host-physical base), so a vCPU that moves to another CPU finds a cold
cache, and one that comes back to its CPU may find its lines still there.
"""

from __future__ import annotations

import sys

import attrs

from toyvisor.cpu import Machine
from toyvisor.cpu.cache import CacheGeometry, CoherentCaches
from toyvisor.cpu.cpu import BUDGET, HALTED, IDLE, TRIPLE_FAULT
from toyvisor.cpu.mmu import WRITE

from toyvisor.vmm.costs import default_model

from .errors import SchedError
from .policy import USER_POLICY_PREFIX, Policy, SchedParams
from .result import PolicyRun
from .workload import Workload

#: ticks each physical CPU runs per step of the host clock
STEP = 25
#: cycles a miss of the modelled cache costs: served by the second-level cache of the
#: Pentium 4 672 of the default cost profile, 20 clocks (Intel, IA-32 Intel Architecture
#: Optimization Reference Manual, Table 1-1: second level, models 3, 4, 6, 2 MB)
MISS_CYCLES = 20
#: instructions of one iteration of the guest library's spin loops (pause, ld, cmp, branch)
SPIN_LOOP = 4
#: where the guest programs find their parameters and the smart-scheduling flags
PARAMS, FLAGS = 0x3000, 0x3100


class VCPU:
    """The hypervisor's handle on one vCPU: its CPU object inside the VM's machine, its
    scheduling state and its counts."""

    def __init__(self, vm: "GuestVM", index: int, runner) -> None:
        self.vm = vm
        self.index = index
        self.name = f"{vm.name}{index}"
        self.cpu = vm.machine.cpus[index]
        self.runner = runner
        #: "new" (not started), "ready", "running", "blocked", "done"
        self.state = "new"
        self.last_pcpu: int | None = None
        #: the physical CPU it runs on now (the cache model's view)
        self.pcpu: int | None = None
        #: consecutive ticks spent in a pause loop (pause-loop exiting)
        self.pause_run = 0

    def holds_lock(self) -> bool:
        """The guest's flag: the spinlocks this vCPU holds (guests/sched/sched.s), read from
        guest memory (a program without the PARAMS block has no flags)."""
        if not self.vm.spec.params:
            return False
        return self.vm.machine.memory.read32(FLAGS + 4 * self.index) != 0

    def __repr__(self) -> str:
        return f"<vCPU {self.name} {self.state}>"


class GuestVM:
    """One VM: its machine (the vCPUs and their shared memory) and its handles."""

    def __init__(self, spec, base: int, engine: str, caches) -> None:
        self.spec = spec
        self.name = spec.name
        self.vcpus = spec.vcpus
        self.priority = spec.priority
        self.where = spec.where
        self.base = base
        self.machine = Machine(memory_size=spec.memory, cpus=spec.vcpus,
                               cache_model=None if caches is None else _HostCaches(self, caches))
        self.machine.load(spec.image)
        if spec.params:
            memory = self.machine.memory
            memory.write32(PARAMS, spec.vcpus)
            memory.write32(PARAMS + 4, spec.work)
        runners = self.machine.engines(engine)
        self.members = [VCPU(self, i, runners[i]) for i in range(spec.vcpus)]
        for member in self.members:
            member.cpu.slicing = True  # a step's end is quiet (no stop event)


class _HostCaches:
    """The cache model as one VM's machine sees it: each access goes to the cache of the physical
    CPU its vCPU runs on now, at the host-physical address (the VM's base + guest-physical)."""

    def __init__(self, vm: GuestVM, caches: CoherentCaches) -> None:
        self.vm = vm
        self.caches = caches

    def wrap(self, cpu, load32, load8, store32, store8):
        vm, access, translate = self.vm, self.caches.access, cpu.translate
        index = cpu.index

        def where() -> int:
            return vm.members[index].pcpu

        def counted_load32(va):
            value = load32(va)
            access(where(), vm.base + translate(va), False)
            return value

        def counted_load8(va):
            value = load8(va)
            access(where(), vm.base + translate(va), False)
            return value

        def counted_store32(va, v):
            store32(va, v)
            access(where(), vm.base + translate(va, WRITE), True)

        def counted_store8(va, v):
            store8(va, v)
            access(where(), vm.base + translate(va, WRITE), True)

        return counted_load32, counted_load8, counted_store32, counted_store8

    def invalidate(self, pa: int, size: int) -> None:
        self.caches.invalidate(self.vm.base + pa, size)


@attrs.define
class PhysicalCPU:
    """One physical CPU: what it runs and what it did."""

    index: int
    current: VCPU | None = None
    last: VCPU | None = None
    quantum_left: int = 0
    busy: int = 0
    context_switches: int = 0
    world_switches: int = 0


class Hypervisor:
    """Runs a workload's VMs on `pcpus` physical CPUs under one policy."""

    def __init__(self, workload: Workload, policy_class: type[Policy], *, pcpus: int,
                 quantum: int, slot: int, cache: CacheGeometry | None, lock_cost: int = 40,
                 ple_gap: int = 128, ple_window: int = 4096, miss_cycles: int = MISS_CYCLES,
                 engine: str = "interpreter", max_ticks: int | None = None) -> None:
        if not isinstance(pcpus, int) or pcpus < 1:
            raise SchedError(f"the number of physical CPUs must be at least 1, not {pcpus}")
        for name, value in (("quantum", quantum), ("slot", slot)):
            if value < STEP or value % STEP:
                raise SchedError(f"the {name} must be a positive multiple of {STEP} ticks, not "
                                 f"{value}")
        self.workload = workload
        for name, value in (("lock cost", lock_cost), ("PLE gap", ple_gap),
                            ("PLE window", ple_window), ("miss price", miss_cycles)):
            if not isinstance(value, int) or value < 0:
                raise SchedError(f"the {name} must be a number of cycles, not {value!r}")
        self.params = SchedParams(pcpus=pcpus, quantum=quantum, slot=slot, lock_cost=lock_cost,
                                  ple_gap=ple_gap, ple_window=ple_window)
        self.policy = policy_class(self.params)
        self.policy.check(workload.vms)
        self.caches = None if cache is None else CoherentCaches(cache, pcpus)
        self.miss_cycles = miss_cycles
        self.engine = engine
        self.max_ticks = workload.max_ticks if max_ticks is None else max_ticks
        self.pcpus = [PhysicalCPU(i) for i in range(pcpus)]

    def run(self) -> PolicyRun:
        """Run the workload to its end under the policy."""
        if not type(self.policy).__module__.startswith(USER_POLICY_PREFIX):
            return self._run()
        try:
            return self._run()
        except SchedError:
            raise
        except Exception as exc:  # a user's policy file misbehaved: bad input, located
            path = sys.modules[type(self.policy).__module__].__file__
            line = ""
            tb = exc.__traceback__
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == path:
                    line = f":{tb.tb_lineno}"
                tb = tb.tb_next
            raise SchedError(f"{path}{line}: policy {self.policy.name}: "
                             f"{type(exc).__name__}: {exc}") from None

    def _run(self) -> PolicyRun:
        policy, params, pcpus = self.policy, self.params, self.pcpus
        pending = sorted(self.workload.vms, key=lambda vm: vm.arrival)
        vms: list[GuestVM] = []
        base = 0
        vcpus: list[VCPU] = []
        now = 0
        spin = lhp = migrations = ple_exits = instructions = 0
        spans: list[list] = []
        last_span: dict[int, list] = {}  # each CPU's latest span, extended while it runs on
        slots: list[list[dict[str, int]]] = []
        ple = policy.pause_loop_exiting
        dirty = True
        while True:
            # arrivals
            while pending and pending[0].arrival <= now:
                spec = pending.pop(0)
                vm = GuestVM(spec, base, self.engine, self.caches)
                base += spec.memory
                vms.append(vm)
                vcpus.extend(vm.members)
                policy.arrive(vm, now)
                dirty = True
            # wake-ups: started by a start IPI, or an interrupt deliverable to a blocked vCPU
            for vcpu in vcpus:
                if vcpu.state == "new" and vcpu.vm.machine.started[vcpu.index]:
                    vcpu.state = "ready"
                    policy.ready(vcpu, now)
                    dirty = True
                elif vcpu.state == "blocked":
                    platform = vcpu.cpu.platform
                    if platform.clock < now:
                        platform.clock = now
                    platform.timer.update(platform.clock)
                    if platform.pic.deliverable():
                        vcpu.state = "ready"
                        policy.ready(vcpu, now)
                        dirty = True
            if vcpus and all(v.state == "done" for v in vcpus) and not pending:
                break
            if now >= self.max_ticks:
                raise SchedError(f"{self.workload.path}: under {policy.name}, the workload has not "
                                 f"finished after {self.max_ticks} ticks (raise max_ticks?)")
            # scheduling points
            if policy.synchronous and now % params.slot == 0:
                for pcpu in pcpus:
                    if pcpu.current is not None:
                        lhp += self._preempt(pcpu, now)
                policy.new_slot(now)
                dirty = True
            elif not policy.synchronous:
                for pcpu in pcpus:
                    vcpu = pcpu.current
                    if vcpu is not None and pcpu.quantum_left <= 0:
                        if policy.extend(vcpu, now):
                            pcpu.quantum_left = params.quantum
                        else:
                            lhp += self._preempt(pcpu, now)
                            dirty = True
            free = [p.index for p in pcpus if p.current is None]
            if free and dirty:
                dirty = False
                chosen = policy.pick(free, now)
                for index, vcpu in sorted(chosen.items()):
                    if index not in free or vcpu is None:
                        continue
                    if not isinstance(vcpu, VCPU) or vcpu.state != "ready":
                        what = (f"{vcpu.name} ({vcpu.state})" if isinstance(vcpu, VCPU)
                                else repr(vcpu))
                        raise SchedError(f"policy {policy.name} put {what} on CPU {index}: only "
                                         f"a ready vCPU can be placed")
                    migrations += self._place(pcpus[index], vcpu)
            # one step of every physical CPU
            slot_row = now // params.slot
            while len(slots) <= slot_row:
                slots.append([{} for _ in pcpus])
            for pcpu in pcpus:
                vcpu = pcpu.current
                if vcpu is None:
                    continue
                cpu = vcpu.cpu
                platform = cpu.platform
                if platform.clock < now:
                    platform.clock = now
                platform.timer.update(platform.clock)
                if cpu.stop_reason in (BUDGET, IDLE):
                    cpu.stop_reason = None
                steps, retired, pauses = cpu.steps, cpu.retired, cpu.pauses
                vcpu.runner.run(STEP, None)
                used = cpu.steps - steps
                paused = cpu.pauses - pauses
                instructions += cpu.retired - retired
                spin += SPIN_LOOP * paused
                pcpu.busy += used
                pcpu.quantum_left -= STEP
                cell = slots[slot_row][pcpu.index]
                cell[vcpu.name] = cell.get(vcpu.name, 0) + used
                last = last_span.get(pcpu.index)
                if last is not None and last[3] == vcpu.name and last[2] == now:
                    last[2] = now + used
                else:
                    last_span[pcpu.index] = [pcpu.index, now, now + used, vcpu.name]
                    spans.append(last_span[pcpu.index])
                reason = cpu.stop_reason
                if reason == TRIPLE_FAULT:
                    raise SchedError(f"{vcpu.vm.spec.program}: vCPU {vcpu.name} triple-faulted: "
                                     f"{cpu.fault_report}")
                if reason == HALTED:
                    self._leave(pcpu, "done")
                    policy.finished(vcpu, now + used)
                    dirty = True
                elif reason == IDLE:
                    self._leave(pcpu, "blocked")
                    policy.blocked(vcpu, now + used)
                    dirty = True
                elif ple is not None:
                    gap, window = ple
                    if paused and used <= gap * paused:
                        vcpu.pause_run += used
                    else:
                        vcpu.pause_run = 0
                    if vcpu.pause_run > window:
                        ple_exits += 1
                        vcpu.pause_run = 0
                        lhp += self._preempt(pcpu, now + used)
                        dirty = True
            now += STEP
        makespan = max((s[2] for s in spans), default=0)
        return self._result(makespan, spin, lhp, migrations, ple_exits, instructions, spans,
                            slots, vms)

    # ------------------------------------------------------------------------------------------

    def _place(self, pcpu: PhysicalCPU, vcpu: VCPU) -> int:
        """Put `vcpu` on `pcpu`; returns 1 for a migration."""
        previous = pcpu.last
        if previous is not None and previous is not vcpu:
            pcpu.context_switches += 1
            if previous.vm is not vcpu.vm:
                pcpu.world_switches += 1
        migrated = int(vcpu.last_pcpu is not None and vcpu.last_pcpu != pcpu.index)
        vcpu.state = "running"
        vcpu.pcpu = vcpu.last_pcpu = pcpu.index
        pcpu.current = pcpu.last = vcpu
        pcpu.quantum_left = self.params.quantum
        return migrated

    def _leave(self, pcpu: PhysicalCPU, state: str) -> VCPU:
        vcpu = pcpu.current
        vcpu.state = state
        vcpu.pcpu = None
        vcpu.pause_run = 0
        pcpu.current = None
        return vcpu

    def _preempt(self, pcpu: PhysicalCPU, now: int) -> int:
        """Take `pcpu`'s vCPU off it (back to ready); returns 1 for a lock-holder preemption."""
        vcpu = self._leave(pcpu, "ready")
        held = vcpu.holds_lock()
        self.policy.ready(vcpu, now, preempted=True, cpu=pcpu.index)
        return int(held)

    def _result(self, makespan, spin, lhp, migrations, ple_exits, instructions, spans,
                slots, vms) -> PolicyRun:
        pcpus = self.pcpus
        rows = []
        for row in slots[:-(-makespan // self.params.slot) if makespan else 0]:
            rows.append(tuple(max(cell, key=lambda name: (cell[name], -ord(name[0])))
                              if cell else "" for cell in row))
        busy = sum(p.busy for p in pcpus)
        locks = self.policy.locks()
        hits = misses = None
        if self.caches is not None:
            hits = sum(c.hits for c in self.caches.caches)
            misses = sum(c.misses for c in self.caches.caches)
        switches = sum(p.context_switches for p in pcpus)
        worlds = sum(p.world_switches for p in pcpus)
        waits = sum(lock.wait_cycles for lock in locks)
        priced = default_model().cycles({"instruction": instructions, "vm_exit": switches,
                                         "world_switch": worlds, "tlb_flush": worlds})
        estimated = priced + waits + (misses or 0) * self.miss_cycles
        return PolicyRun(
            policy=self.policy.name, pcpus=len(pcpus), quantum=self.params.quantum,
            slot=self.params.slot, makespan=makespan, busy_ticks=busy,
            idle_ticks=len(pcpus) * makespan - busy,
            utilization=busy / (len(pcpus) * makespan) if makespan else 0.0,
            guest_instructions=instructions,
            context_switches=sum(p.context_switches for p in pcpus),
            world_switches=sum(p.world_switches for p in pcpus),
            spin_instructions=spin, lock_holder_preemptions=lhp,
            queue_lock_acquisitions=sum(lock.acquisitions for lock in locks),
            queue_lock_contended=sum(lock.contended for lock in locks),
            queue_lock_wait_cycles=sum(lock.wait_cycles for lock in locks),
            cache_hits=hits, cache_misses=misses, migrations=migrations, ple_exits=ple_exits,
            estimated_cycles=estimated,
            matrix=tuple(rows),
            consoles=tuple((vm.name, vm.machine.console.text) for vm in vms),
            spans=tuple((f"CPU {s[0]}", s[1], s[2], s[3]) for s in spans))


__all__ = ["GuestVM", "Hypervisor", "PhysicalCPU", "STEP", "SPIN_LOOP", "VCPU"]
