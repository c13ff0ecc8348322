"""`VCPU`: the guest's architectural state as the guest believes it.

While a VM is loaded on the real CPU its general registers, pc and condition flags live in the real
CPU (that is what *direct execution* means); the hypervisor copies them into the vCPU at every VMM
entry and back before resuming.  What never lives in the real CPU is kept here only: the virtual
CPL, the virtual IF, the virtual idtr, cr0, cr2, cr3 and ksp0–2.
"""

from __future__ import annotations

import attrs

from toyvisor.isa.spec import NUM_REGS


@attrs.frozen
class VCPUState:
    """An immutable copy of a vCPU (part of a VM snapshot)."""

    regs: tuple[int, ...]
    pc: int
    flags: int
    cpl: int
    idtr: int
    cr0: int
    cr2: int
    cr3: int
    ksp: tuple[int, int, int]


class VCPU:
    """Registers, pc, flags (with the *virtual* IF), virtual CPL, idtr, cr0/cr2/cr3, ksp0–2."""

    def __init__(self) -> None:
        self.regs: list[int] = [0] * NUM_REGS
        self.pc = 0
        self.flags = 0
        self.cpl = 0
        self.idtr = 0
        self.cr0 = 0
        self.cr2 = 0
        self.cr3 = 0
        self.ksp: list[int] = [0, 0, 0]

    def state(self) -> VCPUState:
        return VCPUState(tuple(self.regs), self.pc, self.flags, self.cpl, self.idtr, self.cr0,
                         self.cr2, self.cr3, tuple(self.ksp))

    def load(self, state: VCPUState) -> None:
        self.regs[:] = state.regs
        self.pc, self.flags, self.cpl = state.pc, state.flags, state.cpl
        self.idtr, self.cr0, self.cr2, self.cr3 = state.idtr, state.cr0, state.cr2, state.cr3
        self.ksp[:] = state.ksp


__all__ = ["VCPU", "VCPUState"]
