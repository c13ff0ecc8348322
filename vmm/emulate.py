"""Emulation of guest instructions and events against the vCPU, reusing the one definition.

`GuestCPU` is an adapter object that stands in for ``cpu`` in the ISA table's generated handlers
(`toyvisor.isa.codegen.FACTORIES`) and in the CPU's own delivery (`CPU._enter`), ``iret`` and
``hlt`` code.  It maps every word of the semantics' vocabulary onto the guest's *virtual* state:

| vocabulary | maps to |
| --- | --- |
| ``cpl``, ``flags`` (IF), ``idtr``, ``pc``, ``regs``, ``ksp`` | the vCPU (virtual CPL, virtual IF, ...) |
| ``read_cr``/``write_cr``/``invlpg`` | the vCPU's control registers and the VM's virtual TLB (which tells the strategy to switch/flush its shadow) |
| ``load32``… ``store8``, ``read_linear32``/``write_linear32`` | guest memory, translated by the guest's own page tables at the right (virtual) privilege, A/D bits exactly as the hardware sets them |
| ``port_in``/``port_out`` | the VM's virtual devices |
| ``software_interrupt`` | virtual delivery through the guest's interrupt table |
| ``halt`` | the virtual ``hlt``: idle the virtual clock to the next virtual interrupt, or stop the VM |

So an emulated instruction has exactly the semantics of the table, and a virtual delivery writes
exactly the frame the hardware would: there is no second copy of either.
"""

from __future__ import annotations

from operator import attrgetter

from toyvisor.cpu.cpu import CPU, HALTED
from toyvisor.cpu.mmu import READ, WRITE
from toyvisor.isa.codegen import FACTORIES
from toyvisor.isa.encoding import Decoded
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    CR0_PG,
    FLAG_IF,
    FLAGS_MASK,
    GATE_DPL_SHIFT,
    GATE_P,
    GATE_RING_SHIFT,
    GATE_SIZE,
    GATE_TRAP,
    M32,
    PAGE_SHIFT,
    SP,
    VEC_AC,
    VEC_UD,
)

# `VM` in annotations is toyvisor.vmm.vm.VM, this module's user: not imported (not even for
# type checkers), so the VM depends on its emulator and not the other way round.


class GuestCPU:
    """The ``cpu`` of the table's handlers when the VMM emulates an instruction of `vm`."""

    def __init__(self, vm: VM, vcpu=None) -> None:
        self.vm = vm
        #: the vCPU this context emulates for (each vCPU of an SMP VM has its own context)
        self.vcpu = vcpu = vm.vcpu if vcpu is None else vcpu
        self.regs = vcpu.regs
        self.ksp = vcpu.ksp
        #: host RAM: `CPU._enter` and `CPU.iret` move a frame's words in it at the host-physical
        #: address `_frame_pa` returns (every other access goes through `vm.memory`)
        self.memory = vm.hypervisor.machine.memory

    #: whether `_frame_pa` may move frames in one go (False: every word the careful way; the
    #: differential tests run both)
    fast_frames = True

    # -- state ------------------------------------------------------------------------------------
    # (getters by `attrgetter`: delivery and `iret` read them several times per VMM entry)
    pc = property(attrgetter("vcpu.pc"), lambda self, v: setattr(self.vcpu, "pc", v & M32))
    flags = property(attrgetter("vcpu.flags"), lambda self, v: setattr(self.vcpu, "flags", v))
    cpl = property(attrgetter("vcpu.cpl"), lambda self, v: setattr(self.vcpu, "cpl", v))
    idtr = property(attrgetter("vcpu.idtr"), lambda self, v: setattr(self.vcpu, "idtr", v))
    platform = property(attrgetter("vcpu.platform"))
    idle_ticks = property(lambda self: self.vm.idle_ticks,
                          lambda self, v: setattr(self.vm, "idle_ticks", v))

    # -- memory at the current virtual CPL --------------------------------------------------------
    def load32(self, va: int) -> int:
        if va & 3:
            raise GuestFault(VEC_AC, 0)
        return self.vm.memory.read32(self.vm.translate(va, READ, self.vcpu.cpl))

    def load8(self, va: int) -> int:
        return self.vm.memory.read8(self.vm.translate(va, READ, self.vcpu.cpl))

    def store32(self, va: int, value: int) -> None:
        if va & 3:
            raise GuestFault(VEC_AC, 0)
        self.vm.memory.write32(self.vm.translate(va, WRITE, self.vcpu.cpl), value)

    def store8(self, va: int, value: int) -> None:
        self.vm.memory.write8(self.vm.translate(va, WRITE, self.vcpu.cpl), value)

    def read_linear32(self, va: int, cpl: int) -> int:
        if va & 3:
            raise GuestFault(VEC_AC, 0)
        return self.vm.memory.read32(self.vm.translate(va, READ, cpl))

    def write_linear32(self, va: int, value: int, cpl: int) -> None:
        if va & 3:
            raise GuestFault(VEC_AC, 0)
        self.vm.memory.write32(self.vm.translate(va, WRITE, cpl), value)

    # -- the rest of the vocabulary ---------------------------------------------------------------
    def read_cr(self, number: int) -> int:
        return self.vm.read_cr(number)

    def write_cr(self, number: int, value: int) -> None:
        self.vm.write_cr(number, value)

    def invlpg(self, va: int) -> None:
        self.vm.invlpg(va)

    def port_in(self, port: int) -> int:
        return self.vm.devices.port_in(port) & M32

    def port_out(self, port: int, value: int) -> None:
        self.vm.devices.port_out(port, value)

    def cpu_number(self) -> int:
        """`rdpid` under the VMM: the virtual CPU's number (0 for a one-vCPU VM)."""
        return self.vcpu.index

    def software_interrupt(self, vector: int, npc: int) -> None:
        self.vm.deliver(vector, 0, npc, "software")

    def iret(self) -> None:
        """`CPU.iret` against the vCPU; its common case (`_frame_pa` says the frame is plain, the
        return to the same or an outer ring) read in one go, every other by the CPU's code."""
        if self.fast_frames:
            vcpu = self.vcpu
            R = vcpu.regs
            cpl = vcpu.cpl
            pa = self._frame_pa(R[SP], cpl, False)
            if pa is not None:
                words = self.memory.words
                index = pa >> 2
                cs = words[index + 2]
                if cs & 3 >= cpl:
                    vcpu.pc = words[index + 1] & M32
                    vcpu.cpl = cs & 3
                    vcpu.flags = words[index + 3] & FLAGS_MASK
                    R[SP] = words[index + 4]
                    return
        CPU.iret(self)  # the CPU's own code, run against the vCPU

    def _frame_pa(self, va: int, ring: int, write: bool, size: int = 20) -> int | None:
        """`CPU._frame_pa` for a virtual delivery or an emulated ``iret``: the host-physical
        address of the `size` bytes at guest-linear `va` when the careful path (`read_linear32`
        / `write_linear32` word by word through the guest's translation) would only move words:
        aligned, on one guest page that the guest's TLB maps with the access allowed at virtual
        `ring` (so no walk, no A/D update, no fault), and a guest frame the VM calls plain
        (`VM.plain_frame`: no hook, no shadowed table, no watch or code on the host page).
        None otherwise (the caller takes the careful path)."""
        if va & 3 or (va & 0xFFF) > 0x1000 - size or not self.fast_frames:
            return None
        vm = self.vm
        if self.vcpu.cr0 & CR0_PG:
            e = vm.mmu.tlb.get(va >> PAGE_SHIFT)
            if e is None or ring > e[1] or (write and not e[2]):
                return None
            return vm.plain_frame(e[0] | (va & 0xFFF), size, write)
        return vm.plain_frame(va, size, write)

    def halt(self, npc: int) -> None:
        """``hlt`` at virtual CPL 0 (docs/machine.md, Time): idle the virtual clock to the next
        virtual interrupt, or stop the VM when nothing could ever wake it."""
        self.vcpu.pc = npc
        if self.vm.smp:  # other vCPUs run on: this one halts or idles alone
            self.vm.halt_vcpu(self.vcpu)
            return
        platform = self.vcpu.platform
        if not self.vcpu.flags & FLAG_IF or not platform.can_wake():
            self.vm.stop(HALTED)
            return
        if not platform.pic.deliverable():
            idle = platform.timer.deadline - platform.clock
            if idle > 0:
                platform.clock += idle
                self.vm.idle_ticks += idle

    def __getattr__(self, name: str):
        # Vocabulary this adapter does not virtualize (e.g. a hardware-virtualization extension's
        # instructions): the guest gets #UD, and the equivalence check reports the difference.
        if name.startswith("_"):
            raise AttributeError(name)

        def unsupported(*_args, **_kwargs):
            raise GuestFault(VEC_UD, 0)

        return unsupported

    def stop(self, reason: str, report: str | None = None) -> None:
        self.vm.stop(reason, report)

    def enter(self, vector: int, error: int, pc: int, software: bool) -> None:
        """Steps 1–6 of the delivery algorithm (docs/machine.md) against the vCPU: the common
        case in one go (`_enter_plain`), every other by the CPU's own code."""
        if not self._enter_plain(vector, error, pc, software):
            CPU._enter(self, vector, error, pc, software)

    def _enter_plain(self, vector: int, error: int, pc: int, software: bool) -> bool:
        """`CPU._enter` against the vCPU when its gate and its frame are both plain (what
        `_frame_pa` accepts: one guest page in the guest's TLB with the access allowed, a plain
        guest frame) and the gate lets the event through: the same words read and written,
        straight on the vCPU's attributes.  False, with nothing changed, for anything else
        (no table, an absent or refusing gate, a careful frame): `CPU._enter` then runs, and
        raises the same faults it always does."""
        vcpu = self.vcpu
        idtr = vcpu.idtr
        if not idtr:
            return False
        gate = (idtr + GATE_SIZE * vector) & M32
        if gate & 7:
            return False
        pa = self._frame_pa(gate, 0, False, 8)  # (the gate is read at ring 0)
        if pa is None:
            return False
        words = self.memory.words
        index = pa >> 2
        word1 = words[index + 1]
        cpl = vcpu.cpl
        if not word1 & GATE_P or (software and cpl > (word1 >> GATE_DPL_SHIFT) & 3):
            return False
        ring = (word1 >> GATE_RING_SHIFT) & 3
        if ring > cpl:
            return False
        handler = words[index]
        R = vcpu.regs
        old_sp = R[SP]
        sp = vcpu.ksp[ring] if ring < cpl else old_sp
        base = (sp - 20) & M32
        if sp < 20:
            return False
        pa = self._frame_pa(base, ring, True)
        if pa is None:
            return False
        index = pa >> 2
        flags = vcpu.flags
        words[index] = error
        words[index + 1] = pc
        words[index + 2] = cpl
        words[index + 3] = flags
        words[index + 4] = old_sp
        R[SP] = base
        vcpu.cpl = ring
        if not word1 & GATE_TRAP:
            vcpu.flags = flags & ~FLAG_IF
        vcpu.pc = handler & M32
        return True


def emulate(vm: VM, decoded: Decoded, *, event: str | None = "emulated_instruction",
            handler=None) -> None:
    """Execute one decoded guest instruction against `vm`'s vCPU with the table's own handler.

    The virtual clock counts the instruction as it takes effect (``in CLOCK`` sees itself), as on
    the bare machine; a fault leaves no trace and propagates as `GuestFault`.  A retired
    instruction counts in ``vm.emulated`` and as `event` (None: the caller prices it itself, as a
    binary translator's ``callout`` does).  `handler`: the table's handler already bound to
    `decoded` (a `CodeEntry`'s, which the decode cache built from the same factory), else it is
    bound here.
    """
    if handler is None:
        definition = decoded.definition
        pc = decoded.pc
        handler = FACTORIES[definition.opcode](**decoded.fields, pc=pc,
                                               npc=(pc + definition.length) & M32)
    devices = vm.devices.platform
    devices.clock += 1
    try:
        handler(vm.context, vm.vcpu.regs)
    except GuestFault:
        devices.clock -= 1
        raise
    vm.emulated += 1
    if event is not None:
        vm.count_event(event)


__all__ = ["GuestCPU", "emulate"]
