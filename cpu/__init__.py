"""toyvisor.cpu: the toyvisor machine: physical memory, paging, devices, CPUs, interpreter.

The public entry point is `Machine`; `RunResult` is what a run returns.  See docs/machine.md for
the architecture this package implements.
"""

from .cpu import BUDGET, CPU, HALTED, TRIPLE_FAULT, cause_name
from .decode import DecodeCache
from .devices import BlockDevice, Console, InterruptController, Platform, SharedDevices, Timer
from .errors import MachineError
from .events import Event, InstructionEvent, StopEvent, TrapEvent
from .machine import (
    CPUResult,
    DEFAULT_INTERLEAVE,
    DEFAULT_MAX_STEPS,
    ENGINES,
    STOP_REASONS,
    Machine,
    RunResult,
)
from .memory import DEFAULT_MEMORY_SIZE, PhysicalMemory
from .mmu import MMU
from .monitor import Monitor

__all__ = [
    "BUDGET",
    "BlockDevice",
    "CPU",
    "CPUResult",
    "DEFAULT_INTERLEAVE",
    "Console",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MEMORY_SIZE",
    "DecodeCache",
    "ENGINES",
    "Event",
    "HALTED",
    "InstructionEvent",
    "InterruptController",
    "MMU",
    "Machine",
    "MachineError",
    "Monitor",
    "PhysicalMemory",
    "Platform",
    "RunResult",
    "SharedDevices",
    "STOP_REASONS",
    "StopEvent",
    "TRIPLE_FAULT",
    "Timer",
    "TrapEvent",
    "cause_name",
]
