"""`VCPU`: one virtual CPU of a VM — the guest's architectural state as the guest believes it,
plus everything else that is per CPU on a real multiprocessor.

While a vCPU is loaded on a physical CPU its general registers, pc and condition flags live in
that real CPU (that is what *direct execution* means); the hypervisor copies them into the vCPU at
every VMM entry and back before resuming.  What never lives in the real CPU is kept here only:
the virtual CPL, the virtual IF, the virtual idtr, cr0, cr2, cr3 and ksp0–2.

Per-vCPU, besides the registers (docs/vmm-design.md, "SMP VMs"):

| attribute | what |
| --- | --- |
| ``index`` | the virtual CPU number (`rdpid`; 0 = the boot vCPU) |
| ``mmu`` | its virtual TLB and page walker (`toyvisor.cpu.mmu.MMU` over guest-physical memory) |
| ``platform`` | its local view of the VM's devices: virtual clock, local timer, local interrupt controller (`toyvisor.cpu.devices.Platform`; console and disk are the VM's, shared) |
| ``context`` | the emulation adapter (`toyvisor.vmm.emulate.GuestCPU`) bound to this vCPU |
| ``run_state`` | `WAITING` (no start IPI yet), `READY`, `IDLE` (``hlt`` with IF = 1), `HALTED` |
| ``hardware``, ``hidden_streak`` | strategy state of this vCPU (its VMCS; the shadow-fill progress check) |
| ``pcpu`` | the physical CPU it is placed on (an index of the host's CPUs) |
"""

from __future__ import annotations

import attrs

from toyvisor.isa.spec import NUM_REGS

#: run states of a vCPU
WAITING, READY, IDLE, HALTED = "waiting", "ready", "idle", "halted"


@attrs.frozen
class VCPUState:
    """An immutable copy of a vCPU's registers (part of a VM snapshot)."""

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
    """Registers, pc, flags (with the *virtual* IF), virtual CPL, idtr, cr0/cr2/cr3, ksp0–2,
    and (set by its `VM`) the per-CPU machinery listed in the module docstring."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self.regs: list[int] = [0] * NUM_REGS
        self.pc = 0
        self.flags = 0
        self.cpl = 0
        self.idtr = 0
        self.cr0 = 0
        self.cr2 = 0
        self.cr3 = 0
        self.ksp: list[int] = [0, 0, 0]
        self.run_state = READY if index == 0 else WAITING
        #: the physical CPU's clock when this vCPU went idle (its idle time is counted from it)
        self.idle_mark = 0
        self.pcpu = 0
        self.mmu = None
        self.platform = None
        self.context = None
        self.hardware = None
        self.hidden_streak = (None, 0)

    def state(self) -> VCPUState:
        return VCPUState(tuple(self.regs), self.pc, self.flags, self.cpl, self.idtr, self.cr0,
                         self.cr2, self.cr3, tuple(self.ksp))

    def load(self, state: VCPUState) -> None:
        self.regs[:] = state.regs
        self.pc, self.flags, self.cpl = state.pc, state.flags, state.cpl
        self.idtr, self.cr0, self.cr2, self.cr3 = state.idtr, state.cr0, state.cr2, state.cr3
        self.ksp[:] = state.ksp

    def reset(self, entry: int) -> None:
        """Power-on state (docs/machine.md, "Reset") at `entry`: what a start IPI gives."""
        self.regs[:] = [0] * NUM_REGS
        self.pc = entry
        self.flags = self.cpl = self.idtr = self.cr0 = self.cr2 = self.cr3 = 0
        self.ksp[:] = [0, 0, 0]

    def __repr__(self) -> str:
        return f"<vCPU {self.index} {self.run_state}>"


__all__ = ["HALTED", "IDLE", "READY", "VCPU", "VCPUState", "WAITING"]
