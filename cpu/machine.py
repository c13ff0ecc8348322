"""A whole toyvisor machine: memory, devices, CPUs; load an image, run it, report the result.

    >>> machine = Machine(memory_size=1 << 20, console_input=b"hi")
    >>> machine.load(image)              # anything with .entry and .segments (.address, .data)
    >>> result = machine.run(max_steps=100_000)
    >>> result.stop_reason, result.console

Runs are deterministic: the same image, memory size, console input, disk, CPU count and interleave
give the same trace and the same `RunResult`.

    >>> smp = Machine(cpus=4, interleave=100)   # CPU 0 boots; it starts the others by IPI
"""

from __future__ import annotations

from typing import Any

import attrs

from toyvisor.isa.spec import MAX_CPUS, NUM_REGS

from .cache import CacheGeometry, CoherentCaches
from .cpu import BUDGET, CPU, HALTED, IDLE, TRIPLE_FAULT, Trace
from .decode import DecodeCache
from .devices import Platform
from .errors import MachineError
from .memory import DEFAULT_MEMORY_SIZE, PhysicalMemory

DEFAULT_MAX_STEPS = 10_000_000

#: Steps each CPU of a multiprocessor runs in its turn of the round-robin: short enough that a
#: loop without a lock loses updates within a few turns, long enough that the turns cost the
#: host little next to the instructions (docs/performance.md, "Multiprocessor").
DEFAULT_INTERLEAVE = 1000

#: Stop reasons after which a CPU never runs again.
_FINAL = (HALTED, TRIPLE_FAULT)

#: The execution engines `Machine.run` offers: "interpreter" (the reference semantics, closure
#: threaded) and "fast" (binary translation of the guest code to Python functions).  Both compute
#: exactly the same results; only the host time differs.
ENGINES = ("interpreter", "fast")

#: Every stop reason `Machine.run` can report.
STOP_REASONS = (HALTED, BUDGET, TRIPLE_FAULT)


@attrs.frozen
class CPUResult:
    """What one CPU of the machine did (cumulative over every `Machine.run` call)."""

    cpu: int
    #: "halted", "triple-fault", "running" (it can run further), "idle" (halted with IF = 1,
    #: waiting for an interrupt) or "waiting" (an application processor never started)
    state: str
    guest_instructions: int
    #: this CPU's clock: its retired instructions plus idle ticks (from its start)
    ticks: int
    idle_ticks: int
    by_cause: dict[str, int]
    ipis_sent: int
    ipis_received: int
    #: `pause` instructions retired
    pauses: int
    pc: int
    registers: tuple[int, ...]
    flags: int
    cpl: int
    #: the cache model's counts (0 when the model is off)
    cache_hits: int = 0
    cache_misses: int = 0
    cache_invalidations: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["registers"] = list(self.registers)
        data["by_cause"] = dict(sorted(self.by_cause.items()))
        return data


@attrs.frozen
class RunResult:
    """What a run did and where the machine stands (CPU 0's state; counters are cumulative over
    every `Machine.run` call of this machine and summed over its CPUs; `per_cpu` has each CPU's
    own figures)."""

    #: True when the guest stopped itself with `hlt` (stop_reason == "halted").
    halted: bool
    #: "halted", "budget" (max_steps ran out; the machine can be run further) or "triple-fault".
    stop_reason: str
    #: Retired guest instructions.
    guest_instructions: int
    #: The clock: retired instructions plus idle ticks (the furthest CPU's clock).
    ticks: int
    #: Ticks spent idle in `hlt`.
    idle_ticks: int
    #: Times a monitor (VMM) was entered; 0 on bare metal.
    vmm_entries: int
    #: Exceptions, interrupts and software interrupts by cause ("page-fault", "timer", "int 0x80").
    by_cause: dict[str, int]
    #: Retired privileged instructions (all at CPL 0; the attempts at CPL > 0 are #GP faults).
    privileged_instructions: int
    #: Retired sensitive-unprivileged instructions (pushf, popf, sidt, smsw, rdcs, rdpid).
    sensitive_instructions: int
    #: The console output, decoded as UTF-8 with replacement characters.
    console: str
    pc: int
    registers: tuple[int, ...]
    flags: int
    cpl: int
    #: For a triple fault: pc, cause chain and registers; None otherwise.
    fault_report: str | None = None
    #: Each CPU's figures, by CPU number.
    per_cpu: tuple[CPUResult, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (registers as a list, by_cause sorted by name); a machine of
        several CPUs adds "cpus": the per-CPU figures, by CPU number."""
        data = attrs.asdict(self, filter=lambda field, _value: field.name != "per_cpu")
        data["registers"] = list(self.registers)
        data["by_cause"] = dict(sorted(self.by_cause.items()))
        if len(self.per_cpu) > 1:
            data["cpus"] = [each.to_dict() for each in self.per_cpu]
        return data


class Machine:
    """Memory, the platform devices, a decode cache and `cpus` CPUs sharing them.

    Each CPU has its own registers, control state, TLB, clock, local timer and local interrupt
    controller (`Platform`, its view of the devices); memory, the decode cache, the console, the
    disk and the IRQ redirection are shared.  At reset only CPU 0 runs; the others wait for a
    start IPI (docs/machine.md, "Multiprocessor").  With several CPUs, `run` interleaves them in
    a fixed round-robin of `interleave` steps each, so a run is deterministic.
    """

    def __init__(self, memory_size: int = DEFAULT_MEMORY_SIZE, console_input: bytes = b"",
                 disk: bytes | None = None, *, cpus: int = 1,
                 interleave: int = DEFAULT_INTERLEAVE,
                 cache: CacheGeometry | None = None, cache_model: Any = None) -> None:
        check_cpus(cpus)
        check_interleave(interleave)
        if cache is not None and not isinstance(cache, CacheGeometry):
            raise MachineError(f"cache must be a CacheGeometry or None, not {cache!r}")
        self.memory = PhysicalMemory(memory_size)
        self.platform = Platform(self.memory, bytes(console_input), disk)
        platforms = [self.platform] + [self.platform.add_cpu() for _ in range(cpus - 1)]
        self.code = DecodeCache(self.memory)
        self.cpus = [CPU(self.memory, platform, self.code, index=i)
                     for i, platform in enumerate(platforms)]
        #: steps each CPU runs in its turn of the round-robin
        self.interleave = interleave
        #: the cache model (off: None), see `toyvisor.cpu.cache`
        self.caches = None if cache is None else self._attach_caches(CoherentCaches(cache, cpus))
        if cache_model is not None:
            # A model shared with other machines (a hypervisor's physical CPUs' caches, which
            # vCPUs of several VMs visit): it counts, this machine reports no per-CPU figures.
            self._attach_caches(cache_model)
        shared = self.platform.shared
        shared.on_start = self._start
        shared.peers_running = self._peers_running
        #: engine name -> the objects running each CPU with it (built on first use and kept,
        #: so a translation cache survives from one `run` to the next)
        self._engines: dict[str, list[Any]] = {}
        self.reset()

    def _attach_caches(self, caches: Any) -> Any:
        """Send every access of every CPU through `caches` (``wrap(cpu, ...)`` and
        ``invalidate(pa, size)``, as `CoherentCaches` has)."""
        memory = self.memory
        # Watching every page sends every load and store of every engine through the CPUs'
        # access functions, which the model wraps; block transfers (DMA) arrive at the audit.
        previous = memory.audit

        def audit(access: str, pa: int, size: int, value) -> None:
            if previous is not None:
                previous(access, pa, size, value)
            if access == "write" and isinstance(value, bytes):
                caches.invalidate(pa, size)

        memory.audit = audit
        for cpu in self.cpus:
            cpu.cache_model = caches
        memory.watch(0, memory.size, read=True, write=True)
        for cpu in self.cpus:
            cpu._select_access_paths()
        return caches

    @property
    def cpu(self) -> CPU:
        """The boot CPU."""
        return self.cpus[0]

    @property
    def console(self):
        return self.platform.console

    @property
    def disk(self):
        return self.platform.disk

    def reset(self) -> None:
        """Power-on CPU state (docs/machine.md, "Reset"): every register 0 (sp too), pc 0,
        ring 0, IF 0, idtr 0, paging off; CPU 0 runs, the others wait for a start IPI.  Memory
        and devices are left as they are."""
        for cpu in self.cpus:
            _reset_cpu(cpu)
        #: whether each CPU has been started (CPU 0 at reset, the others by a start IPI)
        self.started = [True] + [False] * (len(self.cpus) - 1)
        self._turn = 0
        self._slice_left = self.interleave
        self._stop_reason: str | None = None

    def load(self, image: Any) -> None:
        """Copy an image's segments into RAM and point the boot CPU at its entry.

        `image` needs ``.entry`` and ``.segments`` whose items have ``.address`` and ``.data``
        (`toyvisor.asm.image.Image` fits).  Raises `MachineError` if a segment does not fit.
        """
        size = self.memory.size
        segments = list(image.segments)
        for segment in segments:
            address, data = segment.address, segment.data
            if address < 0 or address + len(data) > size:
                raise MachineError(
                    f"image segment at {address:#x} ({len(data)} bytes) does not fit in "
                    f"{_size_text(size)} of RAM (ends at {address + len(data):#x}, RAM ends at "
                    f"{size:#x})"
                )
        for segment in segments:
            self.memory.write(segment.address, bytes(segment.data))
        entry = image.entry
        if not 0 <= entry < size:
            raise MachineError(f"entry point {entry:#x} is outside RAM ({_size_text(size)})")
        self.cpu.pc = entry

    def run(self, max_steps: int = DEFAULT_MAX_STEPS, trace: Trace | None = None,
            engine: str = "interpreter") -> RunResult:
        """Run for at most `max_steps` steps (retired instructions plus delivered exceptions and
        IRQs, summed over the CPUs); `trace`, if given, receives every `InstructionEvent`,
        `TrapEvent` and `StopEvent` (each names its CPU).  `engine` is one of `ENGINES`; every
        engine gives the same result, and runs may switch engines between calls."""
        if max_steps < 0:
            raise MachineError(f"max_steps must not be negative, not {max_steps}")
        runners = self.engines(engine)
        if len(self.cpus) == 1:
            runners[0].run(max_steps, trace)
        else:
            self._run_interleaved(runners, max_steps, trace)
        return self.result()

    def engine(self, name: str):
        """The object running the boot CPU with engine `name` (anything with
        ``run(max_steps, trace)``); raises `MachineError` for an unknown name."""
        return self.engines(name)[0]

    def engines(self, name: str) -> list[Any]:
        """The objects running each CPU with engine `name`, by CPU number."""
        if name not in ENGINES:
            raise MachineError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")
        if name == "interpreter":
            return self.cpus
        engines = self._engines.get(name)
        if engines is None:
            engines = self._engines[name] = _fast_engines(self.cpus)
        return engines

    # ------------------------------------------------------------------------------------------
    # The multiprocessor
    # ------------------------------------------------------------------------------------------

    def _start(self, index: int, entry: int, clock: int) -> bool:
        """A start IPI for CPU `index` (`SharedDevices.on_start`): False if it runs already."""
        if self.started[index]:
            return False
        cpu = self.cpus[index]
        _reset_cpu(cpu)
        cpu.pc = entry
        cpu.platform.clock = clock  # its clock starts in step with the CPU that started it
        self.started[index] = True
        return True

    def _peers_running(self, index: int) -> bool:
        """Whether a CPU other than `index` could still run (and so send an IPI)."""
        return any(started and cpu.stop_reason not in _FINAL
                   for i, (cpu, started) in enumerate(zip(self.cpus, self.started)) if i != index)

    def _run_interleaved(self, runners: list[Any], max_steps: int, trace: Trace | None) -> None:
        """The round-robin: CPU after CPU, `interleave` steps each (fewer when it stops or
        idles), until every started CPU has halted, one triple-faults, or the budget is spent.
        A CPU halted with IF = 1 ("idle") idles its turn's ticks unless an interrupt is
        deliverable; when every running CPU is idle the clocks jump to the next timer
        deadline."""
        if self._stop_reason == BUDGET:
            self._stop_reason = None
        if self._stop_reason is not None:
            return
        cpus, started = self.cpus, self.started
        count = len(cpus)
        left = max_steps
        for cpu in cpus:
            cpu.slicing = True
        # The machine is re-examined (an O(N) look at every CPU) only after a turn that did
        # not end by using up its steps: a turn that did leaves everything as it was.
        check = True
        try:
            while True:
                if check:
                    if any(cpu.stop_reason == TRIPLE_FAULT for cpu in cpus):
                        self._stop_reason = TRIPLE_FAULT
                        return
                    active = [cpu for cpu, on in zip(cpus, started)
                              if on and cpu.stop_reason not in _FINAL]
                    if not active:
                        self._stop_reason = HALTED
                        return
                    if all(cpu.stop_reason == IDLE for cpu in active) \
                            and not self._skip_idle(active):
                        continue
                    check = False
                if left <= 0:
                    self._stop_reason = BUDGET
                    return
                index = self._turn
                cpu = cpus[index]
                room = min(self._slice_left, left)
                used = 0
                if started[index] and cpu.stop_reason not in _FINAL:
                    if cpu.stop_reason == IDLE:
                        room = self._idle(cpu, room)
                    if room and cpu.stop_reason != IDLE:
                        if cpu.stop_reason == BUDGET:
                            cpu.stop_reason = None
                        before = cpu.steps
                        runners[index].run(room, trace)
                        used = cpu.steps - before
                if cpu.stop_reason != BUDGET:
                    check = True  # halted, idle, triple-faulted or not started
                left -= used
                if used == room and room < self._slice_left and cpu.stop_reason == BUDGET:
                    self._slice_left -= used  # the budget ended inside this CPU's turn
                else:
                    self._turn = (index + 1) % count
                    self._slice_left = self.interleave
        finally:
            for cpu in cpus:
                cpu.slicing = False

    @staticmethod
    def _idle(cpu: CPU, room: int) -> int:
        """An idle CPU's turn: idle until an interrupt is deliverable or `room` ticks passed;
        returns the steps it may still run this turn (it is woken when that is not 0)."""
        platform = cpu.platform
        timer, pic = platform.timer, platform.pic
        timer.update(platform.clock)
        if not pic.deliverable():
            wait = room
            if timer.deadline is not None:
                wait = min(room, timer.deadline - platform.clock)
            platform.clock += wait
            cpu.idle_ticks += wait
            timer.update(platform.clock)
            room -= wait
            if not pic.deliverable():
                return 0
        cpu.stop_reason = None
        return room

    def _skip_idle(self, active: list[CPU]) -> bool:
        """Every running CPU is idle: advance their clocks together to the first unmasked timer
        deadline (or halt them all when no interrupt can ever come).  Returns whether the
        round-robin may go on."""
        waits = []
        for cpu in active:
            platform = cpu.platform
            platform.timer.update(platform.clock)
            if platform.pic.deliverable():
                return True
            deadline = platform.timer.deadline
            if deadline is not None and not platform.pic.mask & 1:
                waits.append(deadline - platform.clock)
        if not waits:
            for cpu in active:
                cpu.stop(HALTED)
            return False
        wait = max(0, min(waits))
        for cpu in active:
            cpu.platform.clock += wait
            cpu.idle_ticks += wait
        return True

    # ------------------------------------------------------------------------------------------
    # Results
    # ------------------------------------------------------------------------------------------

    def cpu_result(self, index: int) -> CPUResult:
        """CPU `index`'s figures."""
        cpu = self.cpus[index]
        platform = cpu.platform
        if not self.started[index]:
            state = "waiting"
        elif cpu.stop_reason in _FINAL or cpu.stop_reason == IDLE:
            state = cpu.stop_reason
        else:
            state = "running"
        cache = None if self.caches is None else self.caches.caches[index]
        return CPUResult(
            cpu=index, state=state, guest_instructions=cpu.retired, ticks=platform.clock,
            idle_ticks=cpu.idle_ticks, by_cause=dict(sorted(cpu.by_cause.items())),
            ipis_sent=platform.ipis_sent, ipis_received=platform.ipis_received,
            pauses=cpu.pauses, pc=cpu.pc, registers=tuple(cpu.regs), flags=cpu.flags,
            cpl=cpu.cpl,
            cache_hits=cache.hits if cache is not None else 0,
            cache_misses=cache.misses if cache is not None else 0,
            cache_invalidations=cache.invalidations if cache is not None else 0,
        )

    def result(self) -> RunResult:
        cpu = self.cpu
        cpus = self.cpus
        by_cause: dict[str, int] = {}
        for each in cpus:
            for cause, count in each.by_cause.items():
                by_cause[cause] = by_cause.get(cause, 0) + count
        if len(cpus) == 1:
            reason = cpu.stop_reason or BUDGET
            report = cpu.fault_report
        else:
            reason = self._stop_reason or BUDGET
            report = next((c.fault_report for c in cpus if c.fault_report), None)
        return RunResult(
            halted=reason == HALTED,
            stop_reason=reason,
            guest_instructions=sum(c.retired for c in cpus),
            ticks=max(c.platform.clock for c in cpus),
            idle_ticks=sum(c.idle_ticks for c in cpus),
            vmm_entries=sum(c.vmm_entries for c in cpus),
            by_cause=dict(sorted(by_cause.items())),
            privileged_instructions=sum(c.privileged_executed for c in cpus),
            sensitive_instructions=sum(c.sensitive_executed for c in cpus),
            console=self.platform.console.text,
            pc=cpu.pc,
            registers=tuple(cpu.regs),
            flags=cpu.flags,
            cpl=cpu.cpl,
            fault_report=report,
            per_cpu=tuple(self.cpu_result(i) for i in range(len(cpus))),
        )


def check_cpus(cpus: object) -> int:
    """`cpus` if it is a valid CPU count (an int, 1..MAX_CPUS); `MachineError` otherwise."""
    if not isinstance(cpus, int) or isinstance(cpus, bool) or not 1 <= cpus <= MAX_CPUS:
        raise MachineError(f"the number of CPUs must be an integer from 1 to {MAX_CPUS}, "
                           f"not {cpus!r}")
    return cpus


def check_interleave(interleave: object) -> int:
    """`interleave` if it is a valid slice length (a positive int); `MachineError` otherwise."""
    if not isinstance(interleave, int) or isinstance(interleave, bool) or interleave < 1:
        raise MachineError(f"the interleave must be a positive number of steps, not "
                           f"{interleave!r}")
    return interleave


def _reset_cpu(cpu: CPU) -> None:
    cpu.regs[:] = [0] * NUM_REGS
    cpu.pc = 0
    cpu.flags = 0
    cpu.cpl = 0
    cpu.idtr = 0
    cpu.write_cr(0, 0)
    cpu.cr2 = 0
    cpu.write_cr(3, 0)
    cpu.ksp[:] = [0, 0, 0]
    cpu.stop_reason = None
    cpu.fault_report = None


def _fast_engines(cpus: list[CPU]) -> list[Any]:
    """One translator per CPU, sharing one translation cache."""
    # Imported on first use: the translator builds on the CPU (a module-level import would be
    # circular) and costs nothing to a run that never asks for it.
    from .bt import Translator
    from .bt.engine import SharedTranslations

    shared = SharedTranslations(cpus[0].memory)
    return [Translator(cpu, shared=shared) for cpu in cpus]


def _size_text(size: int) -> str:
    if size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    return f"{size >> 10} KiB" if size % 1024 == 0 else f"{size} bytes"


__all__ = ["CPUResult", "DEFAULT_INTERLEAVE", "DEFAULT_MAX_STEPS", "ENGINES", "Machine",
           "RunResult", "STOP_REASONS", "check_cpus", "check_interleave"]
