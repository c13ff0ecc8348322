"""The "vt" extension's mechanism: root and non-root mode, VM entry and exit, nested paging.

docs/hardware-virtualization.md is the user-level description; `toyvisor.isa.vt` holds the
control structure's layout and the constants.  This module is what the CPU calls at the few
places where it already leaves its fast path (see `toyvisor.cpu.cpu.CPU`):

- `VirtualizationUnit.enter` — ``vmrun rs`` and `CPU.vm_enter`: save the host context, load the
  guest state from the control structure, switch to non-root mode.
- `VirtualizationUnit.instruction_exit` — on the careful path, before a sensitive instruction
  runs: does it exit (its table row's ``nonroot``/``exit_control`` and the control fields)?
- `VirtualizationUnit.intercept_event` — at the start of `CPU.deliver`: exception-bitmap exits and
  nested page faults.
- `VirtualizationUnit.service` — between instruction chunks, in place of the bare-metal interrupt
  check: event injection, external-interrupt and interrupt-window exits.
- `VirtualizationUnit.exit` — store the guest state and the exit information, restore the host
  context, then hand the exit to ``cpu.monitor.vm_exit`` when the monitor has one.

In non-root mode the CPU's own architectural fields (``regs``, ``pc``, ``flags``, ``cpl``,
``idtr``, ``cr0``, ``cr2``, ``ksp``, ``mmu.cr3``) *are* the guest's: every instruction that does not
exit acts on them exactly as on bare metal.  The host's are kept aside in a `HostState` (the
"host save area") and its MMU, with its TLB, is kept too: the guest gets a fresh MMU at each entry
(a plain one, or a `NestedMMU` with nested paging), so the TLB is in effect tagged by mode.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import attrs
from toyvisor.isa import vt as V
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import (
    CR0_MASK,
    FLAG_IF,
    FLAGS_MASK,
    M32,
    NUM_REGS,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_A,
    PTE_D,
    PTE_FRAME,
    PTE_P,
    PTE_PL_SHIFT,
    PTE_W,
    VEC_BP,
    VEC_GP,
    VEC_IRQ0,
    VEC_PF,
)
from toyvisor.isa.table import EXIT

from .errors import MachineError
from .memory import PhysicalMemory
from .mmu import FETCH, MMU, READ, WRITE, page_fault_error

if TYPE_CHECKING:
    from .cpu import CPU
    from .decode import CodeEntry

_WORDS = V.VMCS_SIZE // 4
_VMCS = struct.Struct(f"<{_WORDS}I")


def _run_of_words(*offsets: int) -> slice:
    """The slice of the structure's words at `offsets`, which must be consecutive words (the
    layout of `toyvisor.isa.vt`; a change there that breaks this fails at import)."""
    first = offsets[0] >> 2
    if [offset >> 2 for offset in offsets] != list(range(first, first + len(offsets))):
        raise AssertionError("the control structure's areas are no longer consecutive words")
    return slice(first, first + len(offsets))


#: The guest-state area in the order `VirtualizationUnit.exit` stores it
_GUEST_STATE = _run_of_words(
    *(V.GUEST_REGS + 4 * n for n in range(NUM_REGS)), V.GUEST_PC, V.GUEST_FLAGS, V.GUEST_CPL,
    V.GUEST_IDTR, V.GUEST_CR0, V.GUEST_CR2, V.GUEST_CR3, *(V.GUEST_KSP + 4 * n for n in range(3)))
#: The exit-information area likewise
_EXIT_INFO = _run_of_words(
    V.EXIT_REASON, V.EXIT_QUALIFICATION, V.EXIT_GUEST_PHYSICAL, V.EXIT_GUEST_LINEAR,
    V.EXIT_INSTRUCTION_LENGTH, V.EXIT_PC, V.EXIT_INTERRUPTION, V.EXIT_INTERRUPTION + 4,
    V.EXIT_VECTORING, V.EXIT_VECTORING + 4)
#: the control fields VM entry loads, in that order
_CONTROLS = _run_of_words(V.EXIT_CONTROLS, V.EXCEPTION_BITMAP, V.CR_EXITS, V.CR0_GUEST_HOST_MASK,
                          V.CR0_READ_SHADOW)
_NPF_ACCESS = {READ: V.NPF_READ, WRITE: V.NPF_WRITE, FETCH: V.NPF_FETCH}
#: the guest-state and exit-information areas as packed words (the plain structure's stores)
_GUEST_WORDS = struct.Struct(f"<{_GUEST_STATE.stop - _GUEST_STATE.start}I")
_EXIT_WORDS = struct.Struct(f"<{_EXIT_INFO.stop - _EXIT_INFO.start}I")


def _plain_structure(memory: PhysicalMemory, address: int) -> bool:
    """Whether the structure at `address` lies on pages with no flag (no code, no watch): its
    words may then be read and written in RAM directly, which is all the careful
    `PhysicalMemory.read`/`write` would do there (no audit, no code invalidation)."""
    flags = memory.page_flags
    return not flags[address >> PAGE_SHIFT] and \
        not flags[(address + V.VMCS_SIZE - 1) >> PAGE_SHIFT]


@attrs.frozen
class VMExit:
    """One VM exit, as handed to ``monitor.vm_exit(cpu, exit)`` (also written to the structure).

    `pc` is where the guest resumes (`EXIT_PC`): the exiting instruction for instruction exits and
    faults, the saved pc for traps and interrupts.  `interruption` is ``(vector, error, source)``
    for an "exception" exit; `vectoring` the event whose delivery was interrupted by the exit
    (re-inject it), or None.
    """

    reason: str
    vmcs: int
    pc: int
    qualification: int = 0
    instruction_length: int = 0
    guest_physical: int | None = None
    guest_linear: int | None = None
    interruption: tuple[int, int, str] | None = None
    vectoring: tuple[int, int, str] | None = None

    @property
    def number(self) -> int:
        """The basic exit-reason number (`toyvisor.isa.vt.EXIT_REASONS`)."""
        return V.REASON_NUMBERS[self.reason]


@attrs.define
class HostState:
    """The root-mode context saved at VM entry and restored at VM exit."""

    regs: list[int]
    pc: int
    flags: int
    cpl: int
    idtr: int
    cr0: int
    cr2: int
    ksp: list[int]
    mmu: MMU


class ControlStructure:
    """Named access to a control structure in physical memory (for VMMs and tests).

        vmcs = ControlStructure(machine.memory, 0x8000).initialize()
        vmcs.set_guest(pc=0x1000, flags=0, cpl=0)
        vmcs[EXIT_CONTROLS] = EXIT_HLT | EXIT_EXTERNAL_INTERRUPT
    """

    def __init__(self, memory: PhysicalMemory, address: int) -> None:
        if address & 3 or address < 0 or address + V.VMCS_SIZE > memory.size:
            raise MachineError(f"a control structure at {address:#x} does not fit in RAM "
                               f"(needs {V.VMCS_SIZE} bytes, 4-byte aligned)")
        self.memory = memory
        self.address = address

    def initialize(self) -> ControlStructure:
        """Zero the structure and write its revision word."""
        self.memory.write(self.address, bytes(V.VMCS_SIZE))
        self[V.REVISION] = V.VMCS_REVISION
        return self

    #: whether `read`, `write` and item stores move words straight in RAM when the structure's
    #: pages have no flag (`_plain_structure`: what the careful path would do there); False:
    #: always the careful path (the reference the differential tests compare with)
    plain_access = True

    def __getitem__(self, offset: int) -> int:
        return self.memory.read32(self.address + offset)

    def __setitem__(self, offset: int, value: int) -> None:
        memory = self.memory
        address = self.address + offset
        if self.plain_access and not address & 3 and _plain_structure(memory, self.address):
            memory.words[address >> 2] = value & M32
        else:
            memory.write32(address, value & M32)

    def read(self, layout: struct.Struct, offset: int) -> tuple[int, ...]:
        """The words `layout` unpacks from the structure at `offset`."""
        memory = self.memory
        if self.plain_access and _plain_structure(memory, self.address):
            return layout.unpack_from(memory.data, self.address + offset)
        return layout.unpack(memory.read(self.address + offset, layout.size))

    def write(self, offset: int, data: bytes) -> None:
        """Store the bytes `data` into the structure at `offset`."""
        memory = self.memory
        address = self.address + offset
        if self.plain_access and _plain_structure(memory, self.address):
            memory.data[address:address + len(data)] = data
        else:
            memory.write(address, data)

    def guest_state(self) -> dict[str, int]:
        """The guest-state area by name (r0..r15, pc, flags, cpl, idtr, cr0, cr2, cr3, ksp0..2)."""
        return {name: self[offset] for name, offset in V.GUEST_STATE_FIELDS}

    def set_guest(self, **fields: int) -> None:
        """Write guest-state fields by name (`guest_state`'s names)."""
        offsets = dict(V.GUEST_STATE_FIELDS)
        for name, value in fields.items():
            if name not in offsets:
                raise MachineError(f"no guest-state field {name!r}")
            self[offsets[name]] = value

    def inject(self, vector: int, source: str = "interrupt", error: int = 0) -> None:
        """Ask the next VM entry to deliver `vector` through the guest's table."""
        self[V.INJECT_ERROR] = error
        self[V.INJECT_EVENT] = V.event_word(vector, source)


def nested_translate(memory: PhysicalMemory, root: int, gpa: int) -> tuple[int, bool] | None:
    """(host-physical address, writable) of guest-physical `gpa` under the nested table at `root`,
    or None when it is not mapped.  What a VMM uses to reach guest memory in generation 2."""
    pde_address = (root & PTE_FRAME) | ((gpa >> 22) << 2)
    if pde_address + 4 > memory.size:
        return None
    pde = memory.read32(pde_address)
    if not pde & PTE_P:
        return None
    pte_address = (pde & PTE_FRAME) | (((gpa >> PAGE_SHIFT) & 0x3FF) << 2)
    if pte_address + 4 > memory.size:
        return None
    pte = memory.read32(pte_address)
    if not pte & PTE_P or (pte & PTE_FRAME) >= memory.size:
        return None
    return (pte & PTE_FRAME) | (gpa & PAGE_MASK), bool(pde & pte & PTE_W)


class NestedMMU(MMU):
    """The guest's MMU with nested paging: guest-virtual → guest-physical → host-physical.

    With the guest's paging off its linear addresses are guest-physical; with it on, the two-level
    walk of docs/machine.md runs on guest-physical addresses, and each access of the walk (the
    directory entry, the table entry, their A/D updates) and the final access are translated
    through the nested table at `root` (same two-level format; P and W are honoured, PL is ignored
    and the nested table's own A/D bits are not set).  A nested miss or a write to a nested
    read-only page raises the nested-page-fault pseudo-exception, which the CPU turns into a VM
    exit.  The TLB caches the combined translation with the intersection of permissions; its
    entries extend the base MMU's (frame, pl, write_ok, ...) so the CPU's fast paths use them
    unchanged.
    """

    nested = True

    def __init__(self, memory: PhysicalMemory, cpu: CPU, root: int, *, dirty: bool = False) -> None:
        super().__init__(memory)
        self.cpu = cpu
        self.root = root & PTE_FRAME
        #: ``NESTED_DIRTY``: a write sets D in the nested entry of the page written (and the TLB
        #: caches a page as writable only once its write was seen, so no write goes unmarked)
        self.dirty = dirty

    def _mark_dirty(self, gpa: int) -> None:
        memory = self.memory
        pde = memory.read32(self.root | ((gpa >> 22) << 2))
        pte_address = (pde & PTE_FRAME) | (((gpa >> PAGE_SHIFT) & 0x3FF) << 2)
        pte = memory.read32(pte_address)
        if not pte & PTE_D:
            memory.write32(pte_address, pte | PTE_D)

    def translate(self, va: int, cpl: int, access: int) -> int:
        vpn = va >> PAGE_SHIFT
        entry = self.tlb.get(vpn)
        if entry is None:
            entry = self._walk(va, cpl, access)
        (frame, pl, write_ok, writable, pte_hpa, frame_w, frame_gpa, pte_gpa,
         pte_w) = entry
        if cpl > pl or (access == WRITE and not writable):
            raise GuestFault(VEC_PF, page_fault_error(True, access, cpl), va)
        if access == WRITE and not write_ok:
            if not frame_w:
                self._fault(frame_gpa | (va & PAGE_MASK), va, WRITE, True, False)
            if pte_hpa is not None:
                if not pte_w:
                    self._fault(pte_gpa, va, WRITE, True, True)
                memory = self.memory
                old = memory.read32(pte_hpa)
                if not old & PTE_D or not self.dirty:
                    memory.write32(pte_hpa, old | PTE_D)
                    if self.dirty:
                        self._mark_dirty(pte_gpa)
            if self.dirty:
                self._mark_dirty(frame_gpa)
            self.tlb[vpn] = (frame, pl, True, True, pte_hpa, True, frame_gpa, pte_gpa, pte_w)
        return frame | (va & PAGE_MASK)

    def _fault(self, gpa: int, linear: int, access: int, present: bool, walk: bool):
        qualification = _NPF_ACCESS[access] | (V.NPF_PRESENT if present else 0)
        self.cpu.vt.nested_fault = (gpa & M32, linear, qualification | (V.NPF_WALK if walk else 0))
        raise GuestFault(V.VEC_NESTED_PAGE_FAULT, 0, linear)

    def _nested(self, gpa: int, access: int, linear: int, walk: bool) -> tuple[int, bool]:
        found = nested_translate(self.memory, self.root, gpa)
        if found is None:
            self._fault(gpa, linear, access, False, walk)
        if access == WRITE and not found[1]:
            self._fault(gpa, linear, access, True, walk)
        return found

    def _walk(self, va: int, cpl: int, access: int):
        memory = self.memory
        self.walks += 1
        if not self.cpu.paging:
            hpa, w = self._nested(va, access, va, False)
            if self.dirty and access == WRITE:
                self._mark_dirty(va)
            entry = (hpa & PTE_FRAME, 3, w and (not self.dirty or access == WRITE), True, None, w,
                     va & PTE_FRAME, None, False)
            self.tlb[va >> PAGE_SHIFT] = entry
            return entry
        pde_gpa = (self.cr3 & PTE_FRAME) | ((va >> 22) << 2)
        pde_hpa, pde_w = self._nested(pde_gpa, READ, va, True)
        pde = memory.read32(pde_hpa)
        if not pde & PTE_P:
            raise GuestFault(VEC_PF, page_fault_error(False, access, cpl), va)
        pte_gpa = (pde & PTE_FRAME) | (((va >> PAGE_SHIFT) & 0x3FF) << 2)
        pte_hpa, pte_w = self._nested(pte_gpa, READ, va, True)
        pte = memory.read32(pte_hpa)
        if not pte & PTE_P:
            raise GuestFault(VEC_PF, page_fault_error(False, access, cpl), va)
        pl = min((pde >> PTE_PL_SHIFT) & 3, (pte >> PTE_PL_SHIFT) & 3)
        writable = bool(pde & pte & PTE_W)
        if cpl > pl or (access == WRITE and not writable):
            raise GuestFault(VEC_PF, page_fault_error(True, access, cpl), va)
        frame_gpa = pte & PTE_FRAME
        hpa, frame_w = self._nested(frame_gpa | (va & PAGE_MASK), access, va, False)
        dirty = access == WRITE
        new_pte = pte | PTE_A | (PTE_D if dirty else 0)
        # Every check before any write: a walk that faults leaves no A/D bit behind.
        if not pde & PTE_A and not pde_w:
            self._fault(pde_gpa, va, WRITE, True, True)
        if new_pte != pte and not pte_w:
            self._fault(pte_gpa, va, WRITE, True, True)
        if not pde & PTE_A:
            memory.write32(pde_hpa, pde | PTE_A)
            if self.dirty:
                self._mark_dirty(pde_gpa)
        if new_pte != pte:
            memory.write32(pte_hpa, new_pte)
            if self.dirty:
                self._mark_dirty(pte_gpa)
        if self.dirty and access == WRITE:
            self._mark_dirty(frame_gpa)
        write_ok = writable and (dirty or bool(pte & PTE_D)) and frame_w \
            and (not self.dirty or access == WRITE)
        entry = (hpa & PTE_FRAME, pl, write_ok, writable, pte_hpa, frame_w,
                 frame_gpa, pte_gpa, pte_w)
        self.tlb[va >> PAGE_SHIFT] = entry
        return entry


def io_qualification(mnemonic: str, fields) -> int:
    """An I/O exit's qualification: the port, the direction and the register of `in`/`out`
    with `fields` (as VT-x reports port, size and direction, so a VMM need not decode)."""
    if mnemonic == "in":
        return fields["port"] | V.IO_IN | (fields["rd"] << V.IO_REG_SHIFT)
    return fields["port"] | (fields["rs"] << V.IO_REG_SHIFT)


def io_instruction(qualification: int) -> tuple[str, dict[str, int]]:
    """(mnemonic, fields) of the `in`/`out` an I/O exit's qualification describes (the inverse
    of `io_qualification`)."""
    register = (qualification >> V.IO_REG_SHIFT) & 0xF
    port = qualification & V.IO_PORT_MASK
    if qualification & V.IO_IN:
        return "in", {"rd": register, "port": port}
    return "out", {"port": port, "rs": register}


class VirtualizationUnit:
    """The per-CPU state of the "vt" extension (``cpu.vt``); see the module docstring."""

    def __init__(self, cpu: CPU) -> None:
        self.cpu = cpu
        #: Physical address of the current control structure (None in root mode).
        self.vmcs: int | None = None
        self.host: HostState | None = None
        self.exit_controls = 0
        self.exception_bitmap = 0
        self.cr_exits = 0
        self.cr0_mask = 0
        self.cr0_shadow = 0
        #: The event to deliver before the first guest instruction: (vector, error, source).
        self.pending_injection: tuple[int, int, str] | None = None
        #: Set by `NestedMMU` before it raises: (guest-physical, guest-linear, qualification).
        self.nested_fault: tuple[int, int, int] | None = None
        self.last_exit: VMExit | None = None
        # statistics
        #: Guest instructions retired in non-root mode.
        self.guest_instructions = 0
        #: Events the hardware delivered through the guest's own table (no exit).
        self.guest_traps = 0
        #: of which page faults (priced apart: guest_trap:pgfault)
        self.guest_page_faults = 0
        self._entry_retired = 0
        self._injecting = False
        #: (structure address, guest MMU, guest cr0) of the last VM exit with nested paging: the
        #: next entry from the same structure with the same root, cr0 and cr3 resumes with that
        #: MMU and its TLB (a tagged TLB, as VPID/ASID); `invalidate` drops it
        self._kept: tuple | None = None

    #: whether entries may resume with the TLB of the last exit: off by default (every entry
    #: starts an empty TLB, what software using ``vmrun`` sees); a VMM that calls `invalidate`
    #: on every change turns it on (the hardware-assisted strategy does)
    keep_tlb = False
    #: whether VM entry reads the structure and VM exit stores the guest state and exit
    #: information straight in RAM when the structure's pages have no flag
    #: (`_plain_structure`); False: always the careful read and write of the whole structure
    #: (the reference the differential tests compare with)
    plain_access = True

    def invalidate(self) -> None:
        """Forget the guest TLB kept from the last exit (INVVPID): the VMM calls it whenever it
        changes what the guest's translations depend on beyond the structure's own fields (the
        nested table, the guest's cr0/cr3 or TLB by emulating an instruction, a reset)."""
        self._kept = None

    # -- VM entry --------------------------------------------------------------------------------

    def enter(self, address: int, host_pc: int, *, retiring: bool = False) -> None:
        """VM entry from the structure at physical `address`; the host resumes at `host_pc`.

        Raises #GP(0) (a `GuestFault`) for a misaligned or out-of-RAM structure, a wrong revision
        word or a nested root outside RAM, leaving every state unchanged.  `retiring` is True
        when called by the ``vmrun`` instruction (which retires after entering).
        """
        cpu = self.cpu
        if cpu.nonroot:
            raise MachineError("VM entry while already in non-root mode")
        memory = cpu.memory
        address &= M32
        if address & 3 or address + V.VMCS_SIZE > memory.size:
            raise GuestFault(VEC_GP, 0)
        if self.plain_access and _plain_structure(memory, address):
            words = _VMCS.unpack_from(memory.data, address)
        else:
            words = _VMCS.unpack(memory.read(address, V.VMCS_SIZE))
        if words[V.REVISION >> 2] != V.VMCS_REVISION:
            raise GuestFault(VEC_GP, 0)
        control = words[V.NESTED_CONTROL >> 2]
        nested = bool(control & V.NESTED_ENABLE)
        root = words[V.NESTED_ROOT >> 2] & PTE_FRAME
        if nested and root + PAGE_SIZE > memory.size:
            raise GuestFault(VEC_GP, 0)
        self.host = HostState(list(cpu.regs), host_pc, cpu.flags, cpu.cpl, cpu.idtr, cpu.cr0,
                              cpu.cr2, list(cpu.ksp), cpu.mmu)
        dirty = bool(control & V.NESTED_DIRTY)
        state = words[_GUEST_STATE]  # the order of `_GUEST_STATE`
        kept, self._kept = self._kept, None
        if kept is not None and nested and not dirty and self.keep_tlb and kept[0] == address \
                and kept[1].root == root and kept[1].cr3 == state[NUM_REGS + 6] \
                and kept[2] == state[NUM_REGS + 4] & CR0_MASK:
            guest_mmu = kept[1]  # nothing it depends on changed since the exit: its TLB holds
        else:
            guest_mmu = NestedMMU(memory, cpu, root, dirty=dirty) if nested else MMU(memory)
            guest_mmu.cr3 = state[NUM_REGS + 6]
        cpu.regs[:] = state[:NUM_REGS]
        cpu.pc, flags, cpl, cpu.idtr, cr0, cpu.cr2 = state[NUM_REGS:NUM_REGS + 6]
        cpu.flags = flags & FLAGS_MASK
        cpu.cpl = cpl & 3
        cpu.cr0 = cr0 & CR0_MASK
        cpu.ksp[:] = state[NUM_REGS + 7:]
        cpu.mmu = guest_mmu
        (self.exit_controls, self.exception_bitmap, self.cr_exits, self.cr0_mask,
         self.cr0_shadow) = words[_CONTROLS]
        inject = words[V.INJECT_EVENT >> 2]
        self.pending_injection = None
        if inject & V.INJECT_VALID:
            source = V.EVENT_SOURCES.get((inject >> V.EVENT_TYPE_SHIFT) & 7, "interrupt")
            self.pending_injection = (inject & V.EVENT_VECTOR_MASK, words[V.INJECT_ERROR >> 2],
                                      source)
            memory.write32(address + V.INJECT_EVENT, inject & ~V.INJECT_VALID)
        self.vmcs = address
        self.nested_fault = None
        self._entry_retired = cpu.retired + (1 if retiring else 0)
        cpu.nonroot = True
        cpu._select_access_paths()
        cpu.flush_fetch()

    # -- the CPU's hooks ------------------------------------------------------------------------

    def guest_cr0(self) -> int:
        """cr0 as the guest reads it (mfcr without exit, smsw): VMM-owned bits from the shadow."""
        mask = self.cr0_mask
        return (self.cpu.cr0 & ~mask) | (self.cr0_shadow & mask)

    def external_exits(self) -> bool:
        return bool(self.exit_controls & V.EXIT_EXTERNAL_INTERRUPT)

    def instruction_exit(self, entry: CodeEntry, pc: int) -> bool:
        """Before a sensitive instruction runs in non-root mode: exit if its control says so."""
        decoded = entry.decoded
        definition = decoded.definition
        if definition.nonroot != EXIT:
            return False
        control = definition.exit_control
        fields = decoded.fields
        if control is not None:
            cpu = self.cpu
            if definition.privileged and cpu.cpl:
                return False  # the privilege check (#GP) comes before the exit
            if control == "cr-read":
                if not self.cr_exits >> (V.CR_READ_SHIFT + fields["creg"]) & 1:
                    return False
            elif control == "cr-write":
                if not self.cr_exits >> fields["creg"] & 1:
                    return False
            elif not self.exit_controls & V.EXIT_CONTROL_BITS[control]:
                return False
        mnemonic = definition.mnemonic
        qualification = 0
        R = self.cpu.regs
        if mnemonic == "in" or mnemonic == "out":
            qualification = io_qualification(mnemonic, fields)
        elif mnemonic == "mfcr":
            qualification = fields["creg"] | V.CR_READ | (fields["rd"] << V.CR_REG_SHIFT)
        elif mnemonic == "mtcr":
            qualification = fields["creg"] | (fields["rs"] << V.CR_REG_SHIFT)
        elif mnemonic in ("invlpg", "lidt", "vmrun"):
            qualification = R[fields["rs"]]
        self.exit(V.INSTRUCTION_REASONS[mnemonic], pc, qualification=qualification,
                  instruction_length=definition.length)
        return True

    def intercept_event(self, vector: int, error: int, pc: int, source: str,
                        address: int | None) -> bool:
        """At the start of delivery in non-root mode: exit for a nested page fault or a vector
        selected by the exception bitmap; otherwise count a guest trap and let delivery run."""
        if vector == V.VEC_NESTED_PAGE_FAULT:
            self._nested_page_fault_exit(pc)
            return True
        injecting, self._injecting = self._injecting, False
        if (not injecting and vector < 32 and self.exception_bitmap >> vector & 1
                and (source == "exception" or (source == "software" and vector == VEC_BP))):
            self.exit("exception", pc, qualification=(address or 0) if vector == VEC_PF else 0,
                      guest_linear=address, interruption=(vector, error, source))
            return True
        self.guest_traps += 1
        if vector == VEC_PF:
            self.guest_page_faults += 1
        return False

    def delivery_fault(self, fault: GuestFault, vector: int, error: int, pc: int,
                       source: str) -> bool:
        """A fault while delivering an event: a nested page fault, or an exception the exception
        bitmap selects (e.g. a shadow-paging #PF on the guest's stack or table), exits with the
        event as vectoring information; anything else is the guest's (#DF) and returns False."""
        if fault.vector == V.VEC_NESTED_PAGE_FAULT:
            self._nested_page_fault_exit(pc, vectoring=(vector, error, source))
            return True
        if fault.vector < 32 and self.exception_bitmap >> fault.vector & 1:
            address = fault.address
            self.exit("exception", pc,
                      qualification=(address or 0) if fault.vector == VEC_PF else 0,
                      guest_linear=address, interruption=(fault.vector, fault.error, "exception"),
                      vectoring=(vector, error, source))
            return True
        return False

    def triple_fault(self, pc: int) -> None:
        self.exit("triple-fault", pc)

    def service(self) -> bool:
        """Between instructions in non-root mode (the interpreter's interrupt check).

        Returns True when it injected an event or caused an exit (the interpreter re-examines
        the state and the budget before running anything), False to run guest code.
        """
        cpu = self.cpu
        if self.pending_injection is not None:
            vector, error, source = self.pending_injection
            self.pending_injection = None
            self._injecting = True
            try:
                cpu.deliver(vector, error, cpu.pc, source)
            except GuestFault as fault:  # an injected `int n` refused by its gate
                cpu.deliver(fault.vector, fault.error, cpu.pc, "exception", fault.address)
            finally:
                self._injecting = False
            return True
        controls = self.exit_controls
        pic = cpu.platform.pic
        if controls & V.EXIT_EXTERNAL_INTERRUPT:
            if pic.deliverable():
                qualification = 0
                if controls & V.EXIT_ACK_INTERRUPT:
                    qualification = VEC_IRQ0 + pic.acknowledge()
                self.exit("external-interrupt", cpu.pc, qualification=qualification)
                return True
        if controls & V.EXIT_INTERRUPT_WINDOW and cpu.flags & FLAG_IF:
            self.exit("interrupt-window", cpu.pc)
            return True
        if not controls & V.EXIT_EXTERNAL_INTERRUPT and cpu.flags & FLAG_IF:
            line = pic.acknowledge()
            if line is not None:
                cpu.deliver(VEC_IRQ0 + line, 0, cpu.pc, "interrupt")
        return False

    # -- VM exit ---------------------------------------------------------------------------------

    def _nested_page_fault_exit(self, pc: int, vectoring=None) -> None:
        gpa, linear, qualification = self.nested_fault or (0, 0, 0)
        self.nested_fault = None
        self.exit("nested-page-fault", pc, qualification=qualification, guest_physical=gpa,
                  guest_linear=linear, vectoring=vectoring)

    def exit(self, reason: str, pc: int, *, qualification: int = 0, instruction_length: int = 0,
             guest_physical: int | None = None, guest_linear: int | None = None,
             interruption: tuple[int, int, str] | None = None,
             vectoring: tuple[int, int, str] | None = None) -> None:
        """VM exit: store the guest state (resuming at `pc`) and the exit information, restore
        the host context, count the exit, then call ``cpu.monitor.vm_exit`` if there is one."""
        cpu = self.cpu
        host = self.host
        address = self.vmcs
        memory = cpu.memory
        state = (*cpu.regs, pc, cpu.flags, cpu.cpl, cpu.idtr, cpu.cr0, cpu.cr2, cpu.mmu.cr3,
                 *cpu.ksp)
        information = (
            V.REASON_NUMBERS[reason], qualification, guest_physical or 0, guest_linear or 0,
            instruction_length, pc,
            V.event_word(interruption[0], interruption[2]) if interruption else 0,
            interruption[1] if interruption else 0,
            V.event_word(vectoring[0], vectoring[2]) if vectoring else 0,
            vectoring[1] if vectoring else 0)
        try:
            if not self.plain_access or not _plain_structure(memory, address):
                raise struct.error("the careful path")
            # both areas' words in RAM at once; a value beyond 32 bits raises before either
            # store lands (packed first), and takes the careful path, which masks it
            guest_words = _GUEST_WORDS.pack(*state)
            exit_words = _EXIT_WORDS.pack(*information)
        except struct.error:
            words = list(_VMCS.unpack(memory.read(address, V.VMCS_SIZE)))
            # The guest-state and exit-information areas are runs of consecutive words
            # (checked where `_GUEST_STATE` is defined): stored as two slices.
            words[_GUEST_STATE] = [value & M32 for value in state]
            words[_EXIT_INFO] = [value & M32 for value in information]
            memory.write(address, _VMCS.pack(*words))
        else:
            data = memory.data
            start = address + 4 * _GUEST_STATE.start
            data[start:start + _GUEST_WORDS.size] = guest_words
            start = address + 4 * _EXIT_INFO.start
            data[start:start + _EXIT_WORDS.size] = exit_words

        self.guest_instructions += cpu.retired - self._entry_retired
        guest_mmu, guest_cr0 = cpu.mmu, cpu.cr0
        cpu.regs[:] = host.regs
        cpu.pc = host.pc
        cpu.flags = host.flags
        cpu.cpl = host.cpl
        cpu.idtr = host.idtr
        cpu.cr0 = host.cr0
        cpu.cr2 = host.cr2
        cpu.ksp[:] = host.ksp
        # a nested MMU without dirty marking is kept for the next entry (one CPU only: a vCPU
        # of an SMP host may run elsewhere meanwhile and change its translations there)
        self._kept = (address, guest_mmu, guest_cr0) \
            if guest_mmu.nested and not guest_mmu.dirty and not cpu.platform.smp else None
        cpu.mmu = host.mmu
        cpu.nonroot = False
        self.vmcs = None
        self.host = None
        self.pending_injection = None
        cpu._select_access_paths()
        cpu.flush_fetch()

        cpu.vm_exits[reason] = cpu.vm_exits.get(reason, 0) + 1
        cpu.vmm_entries += 1
        cpu.deliveries += 1  # an exit is a step of the budget, like a delivered event
        record = VMExit(reason, address, pc, qualification, instruction_length, guest_physical,
                        guest_linear, interruption, vectoring)
        self.last_exit = record
        handler = getattr(cpu.monitor, "vm_exit", None)
        if handler is not None:
            handler(cpu, record)


__all__ = [
    "ControlStructure",
    "HostState",
    "NestedMMU",
    "VMExit",
    "VirtualizationUnit",
    "io_instruction",
    "io_qualification",
    "nested_translate",
]
