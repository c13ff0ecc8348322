"""Helpers for the "vt" extension's tests: a guest in a control structure, run under a recording
monitor (Python VMM) that stops the machine at the first VM exit."""

from __future__ import annotations

from cpu_asm import assemble
from toyvisor.cpu import Machine, Monitor
from toyvisor.cpu.vt import ControlStructure
from toyvisor.isa import vt as V
from toyvisor.isa.spec import PTE_P, PTE_W

VMCS = 0x8000
HOST_STUB = 0x100  # the host context: cli-free hlt with IF = 0, so a forgotten stop halts


class ExitRecorder(Monitor):
    """A VMM that records every VM exit and stops the machine at the first."""

    def __init__(self) -> None:
        self.exits = []

    def vm_exit(self, cpu, exit) -> None:
        self.exits.append(exit)
        cpu.stop("vm-exit")

    @property
    def first(self):
        return self.exits[0] if self.exits else None


def guest_machine(source: str, *, origin: int = 0x10000, controls: int = 0, exceptions: int = 0,
                  cr_exits: int = 0, nested_root: int | None = None, memory_size: int = 1 << 20,
                  consts=None, **guest):
    """A machine whose CPU is about to enter the guest `source` (assembled at `origin`).

    Returns (machine, vmcs, recorder); `guest` sets guest-state fields (default: pc = the
    program's entry, sp = origin, everything else 0).
    """
    machine = Machine(memory_size=memory_size)
    image = assemble(source, consts, origin=origin)
    machine.load(image)
    machine.memory.write(HOST_STUB, bytes.fromhex("00000043"))  # hlt
    cpu = machine.cpu
    cpu.pc = HOST_STUB
    vmcs = ControlStructure(machine.memory, VMCS).initialize()
    vmcs.set_guest(**{"pc": image.entry, "r15": origin, **guest})
    vmcs[V.EXIT_CONTROLS] = controls
    vmcs[V.EXCEPTION_BITMAP] = exceptions
    vmcs[V.CR_EXITS] = cr_exits
    if nested_root is not None:
        vmcs[V.NESTED_CONTROL] = V.NESTED_ENABLE
        vmcs[V.NESTED_ROOT] = nested_root
    recorder = ExitRecorder()
    cpu.monitor = recorder
    return machine, vmcs, recorder


def enter_and_run(machine, max_steps: int = 100_000):
    machine.cpu.vm_enter(VMCS)
    return machine.run(max_steps=max_steps)


def nested_map(memory, root: int, base: int, size: int, *, writable: bool = True,
               read_only: tuple[int, ...] = ()) -> None:
    """A nested table at host-physical `root` mapping guest-physical [0, size) to [base, ...).

    Pages whose guest-physical address is in `read_only` are mapped without W.
    """
    tables: dict[int, int] = {}
    next_table = root + 0x1000
    memory.write(root, bytes(4096))
    for gpa in range(0, size, 0x1000):
        index = gpa >> 22
        if index not in tables:
            tables[index] = next_table
            memory.write(next_table, bytes(4096))
            memory.write32(root + 4 * index, next_table | PTE_P | PTE_W)
            next_table += 0x1000
        flags = PTE_P | (PTE_W if writable and gpa not in read_only else 0)
        memory.write32(tables[index] + 4 * ((gpa >> 12) & 0x3FF), (base + gpa) | flags)
