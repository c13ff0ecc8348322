"""A whole toyvisor machine: memory, devices, CPUs; load an image, run it, report the result.

    >>> machine = Machine(memory_size=1 << 20, console_input=b"hi")
    >>> machine.load(image)              # anything with .entry and .segments (.address, .data)
    >>> result = machine.run(max_steps=100_000)
    >>> result.stop_reason, result.console

Runs are deterministic: the same image, memory size, console input and disk give the same trace
and the same `RunResult`.
"""

from __future__ import annotations

from typing import Any

import attrs

from toyvisor.isa.spec import NUM_REGS

from .cpu import BUDGET, CPU, HALTED, TRIPLE_FAULT, Trace
from .decode import DecodeCache
from .devices import Platform
from .errors import MachineError
from .memory import DEFAULT_MEMORY_SIZE, PhysicalMemory

DEFAULT_MAX_STEPS = 10_000_000

#: The execution engines `Machine.run` offers: "interpreter" (the reference semantics, closure
#: threaded) and "fast" (binary translation of the guest code to Python functions).  Both compute
#: exactly the same results; only the host time differs.
ENGINES = ("interpreter", "fast")

#: Every stop reason `Machine.run` can report.
STOP_REASONS = (HALTED, BUDGET, TRIPLE_FAULT)


@attrs.frozen
class RunResult:
    """What a run did and where the machine stands (CPU 0's state; counters are cumulative over
    every `Machine.run` call of this machine)."""

    #: True when the guest stopped itself with `hlt` (stop_reason == "halted").
    halted: bool
    #: "halted", "budget" (max_steps ran out; the machine can be run further) or "triple-fault".
    stop_reason: str
    #: Retired guest instructions.
    guest_instructions: int
    #: The clock: retired instructions plus idle ticks.
    ticks: int
    #: Ticks spent idle in `hlt`.
    idle_ticks: int
    #: Times a monitor (VMM) was entered; 0 on bare metal.
    vmm_entries: int
    #: Exceptions, interrupts and software interrupts by cause ("page-fault", "timer", "int 0x80").
    by_cause: dict[str, int]
    #: Retired privileged instructions (all at CPL 0; the attempts at CPL > 0 are #GP faults).
    privileged_instructions: int
    #: Retired sensitive-unprivileged instructions (pushf, popf, sidt, smsw, rdcs).
    sensitive_instructions: int
    #: The console output, decoded as UTF-8 with replacement characters.
    console: str
    pc: int
    registers: tuple[int, ...]
    flags: int
    cpl: int
    #: For a triple fault: pc, cause chain and registers; None otherwise.
    fault_report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (registers as a list, by_cause sorted by name)."""
        data = attrs.asdict(self)
        data["registers"] = list(self.registers)
        data["by_cause"] = dict(sorted(self.by_cause.items()))
        return data


class Machine:
    """Memory, the platform devices, a decode cache and a list of CPUs sharing them.

    `cpus` holds one CPU; the structure (all per-CPU state on `CPU` objects, shared memory,
    devices and decode cache) allows more, but the platform defines no way to start a second CPU
    yet, so `run` drives ``cpus[0]`` and IRQs go to it.
    """

    def __init__(self, memory_size: int = DEFAULT_MEMORY_SIZE, console_input: bytes = b"",
                 disk: bytes | None = None) -> None:
        self.memory = PhysicalMemory(memory_size)
        self.platform = Platform(self.memory, bytes(console_input), disk)
        self.code = DecodeCache(self.memory)
        self.cpus = [CPU(self.memory, self.platform, self.code, index=0)]
        #: engine name -> the object running the boot CPU with it (built on first use and kept,
        #: so a translation cache survives from one `run` to the next)
        self._engines: dict[str, Any] = {}
        self.reset()

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
        ring 0, IF 0, idtr 0, paging off.  Memory and devices are left as they are."""
        for cpu in self.cpus:
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
        """Run the boot CPU for at most `max_steps` steps (retired instructions plus delivered
        exceptions and IRQs); `trace`, if given, receives every `InstructionEvent`,
        `TrapEvent` and `StopEvent`.  `engine` is one of `ENGINES`; every engine gives the same
        result, and runs may switch engines between calls."""
        if max_steps < 0:
            raise MachineError(f"max_steps must not be negative, not {max_steps}")
        self.engine(engine).run(max_steps, trace)
        return self.result()

    def engine(self, name: str):
        """The object running the boot CPU with engine `name` (anything with
        ``run(max_steps, trace)``); raises `MachineError` for an unknown name."""
        if name not in ENGINES:
            raise MachineError(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")
        if name == "interpreter":
            return self.cpu
        engine = self._engines.get(name)
        if engine is None:
            engine = self._engines[name] = _fast_engine(self.cpu)
        return engine

    def result(self) -> RunResult:
        cpu = self.cpu
        by_cause: dict[str, int] = {}
        for each in self.cpus:
            for cause, count in each.by_cause.items():
                by_cause[cause] = by_cause.get(cause, 0) + count
        reason = cpu.stop_reason or BUDGET
        return RunResult(
            halted=reason == HALTED,
            stop_reason=reason,
            guest_instructions=sum(c.retired for c in self.cpus),
            ticks=self.platform.clock,
            idle_ticks=sum(c.idle_ticks for c in self.cpus),
            vmm_entries=sum(c.vmm_entries for c in self.cpus),
            by_cause=dict(sorted(by_cause.items())),
            privileged_instructions=sum(c.privileged_executed for c in self.cpus),
            sensitive_instructions=sum(c.sensitive_executed for c in self.cpus),
            console=self.platform.console.text,
            pc=cpu.pc,
            registers=tuple(cpu.regs),
            flags=cpu.flags,
            cpl=cpu.cpl,
            fault_report=cpu.fault_report,
        )


def _fast_engine(cpu: CPU):
    # Imported on first use: the translator builds on the CPU (a module-level import would be
    # circular) and costs nothing to a run that never asks for it.
    from .bt import Translator

    return Translator(cpu)


def _size_text(size: int) -> str:
    if size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    return f"{size >> 10} KiB" if size % 1024 == 0 else f"{size} bytes"


__all__ = ["DEFAULT_MAX_STEPS", "ENGINES", "Machine", "RunResult", "STOP_REASONS"]
