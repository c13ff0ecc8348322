"""The "vt" extension's architectural constants: the control structure's layout, the exit
controls, exit reasons and qualifications (docs/hardware-virtualization.md explains them).

The *control structure* (VMCS/VMCB-like) is `VMCS_SIZE` bytes of physical memory, 4-byte aligned,
made of 32-bit little-endian words at the byte offsets below.  ``vmrun rs`` (or `CPU.vm_enter`
from a VMM written in Python) reads the guest-state area and the control fields; a VM exit writes
the guest-state area and the exit-information fields back.
"""

from __future__ import annotations

from types import MappingProxyType

#: Word 0 must hold this value (the structure's revision), or VM entry fails with #GP(0).
VMCS_REVISION = 0x54560001
VMCS_SIZE = 0x200

# -- layout: byte offsets ------------------------------------------------------------------------
REVISION = 0x000

# Guest-state area.
GUEST_REGS = 0x010  # r0..r15: GUEST_REGS + 4*n
GUEST_PC = 0x050
GUEST_FLAGS = 0x054
GUEST_CPL = 0x058
GUEST_IDTR = 0x05C
GUEST_CR0 = 0x060
GUEST_CR2 = 0x064
GUEST_CR3 = 0x068
GUEST_KSP = 0x06C  # ksp0..ksp2: GUEST_KSP + 4*n

# Control fields.
EXIT_CONTROLS = 0x100  # EXIT_* bits below
EXCEPTION_BITMAP = 0x104  # bit v: guest exception v (0..31) exits instead of being delivered
CR_EXITS = 0x108  # bit n: mtcr of control register n exits; bit 16+n: mfcr of n exits
CR0_GUEST_HOST_MASK = 0x10C  # cr0 bits owned by the VMM: guest reads see CR0_READ_SHADOW's
CR0_READ_SHADOW = 0x110
NESTED_CONTROL = 0x114  # NESTED_ENABLE
NESTED_ROOT = 0x118  # host-physical address of the nested page directory
INJECT_EVENT = 0x11C  # vector | type << 8 | INJECT_VALID: delivered at VM entry
INJECT_ERROR = 0x120

# Exit-information fields (written at every VM exit).
EXIT_REASON = 0x180
EXIT_QUALIFICATION = 0x184
EXIT_GUEST_PHYSICAL = 0x188  # nested-page-fault: the guest-physical address
EXIT_GUEST_LINEAR = 0x18C  # nested-page-fault, #PF exception: the guest-linear address
EXIT_INSTRUCTION_LENGTH = 0x190  # instruction exits: 4 or 8 (0 otherwise)
EXIT_PC = 0x194  # the exiting instruction's pc (or the event's saved pc)
EXIT_INTERRUPTION = 0x198  # exception exits: vector | type << 8 | EVENT_VALID
EXIT_INTERRUPTION_ERROR = 0x19C
EXIT_VECTORING = 0x1A0  # the event being delivered when the exit happened (for re-injection)
EXIT_VECTORING_ERROR = 0x1A4

#: Guest-state fields as (name, offset), in layout order (the registers are r0..r15).
GUEST_STATE_FIELDS = (
    *((f"r{n}", GUEST_REGS + 4 * n) for n in range(16)),
    ("pc", GUEST_PC), ("flags", GUEST_FLAGS), ("cpl", GUEST_CPL), ("idtr", GUEST_IDTR),
    ("cr0", GUEST_CR0), ("cr2", GUEST_CR2), ("cr3", GUEST_CR3),
    *((f"ksp{n}", GUEST_KSP + 4 * n) for n in range(3)),
)

# -- exit controls (the EXIT_CONTROLS word) ------------------------------------------------------
EXIT_HLT = 1 << 0
EXIT_IO = 1 << 1  # in and out
EXIT_INVLPG = 1 << 2
EXIT_LIDT = 1 << 3
#: A pending unmasked IRQ exits ("external-interrupt") whatever the guest's IF; clear, IRQs are
#: delivered through the guest's own table when its IF = 1 (device pass-through).
EXIT_EXTERNAL_INTERRUPT = 1 << 4
#: Exit ("interrupt-window") before the first guest instruction that runs with IF = 1.
EXIT_INTERRUPT_WINDOW = 1 << 5
#: With EXIT_EXTERNAL_INTERRUPT: acknowledge the IRQ at the exit; its vector is the qualification.
EXIT_ACK_INTERRUPT = 1 << 6

#: Table `exit_control` names → EXIT_CONTROLS bits ("cr-read"/"cr-write" use CR_EXITS).
EXIT_CONTROL_BITS = MappingProxyType(
    {"hlt": EXIT_HLT, "io": EXIT_IO, "invlpg": EXIT_INVLPG, "lidt": EXIT_LIDT}
)
CR_READ_SHIFT = 16

NESTED_ENABLE = 1 << 0
#: the nested table's dirty bits (EPT A/D flags): a guest write sets D in the nested entry of the
#: page it writes (live migration's dirty log in generation 2)
NESTED_DIRTY = 1 << 1

# -- events (injection, interruption and vectoring fields) ---------------------------------------
EVENT_VECTOR_MASK = 0xFF
EVENT_TYPE_SHIFT = 8
EVENT_TYPE_INTERRUPT = 0  # an IRQ (the saved pc is the guest pc)
EVENT_TYPE_EXCEPTION = 3  # a hardware exception
EVENT_TYPE_SOFTWARE = 4  # int n / brk (the DPL check applies)
EVENT_VALID = 1 << 31
INJECT_VALID = EVENT_VALID
#: `TrapEvent.source` ↔ event type.
EVENT_TYPES = MappingProxyType(
    {"interrupt": EVENT_TYPE_INTERRUPT, "exception": EVENT_TYPE_EXCEPTION,
     "software": EVENT_TYPE_SOFTWARE}
)
EVENT_SOURCES = MappingProxyType({v: k for k, v in EVENT_TYPES.items()})


def event_word(vector: int, source: str) -> int:
    """The injection / interruption / vectoring word for `vector` from `source`."""
    return (vector & EVENT_VECTOR_MASK) | (EVENT_TYPES[source] << EVENT_TYPE_SHIFT) | EVENT_VALID


# -- exit reasons (numbers follow Intel VT-x's basic exit reasons) -------------------------------
EXIT_REASONS = MappingProxyType({
    0: "exception",
    1: "external-interrupt",
    2: "triple-fault",
    7: "interrupt-window",
    10: "rdpid",  # Intel's number for CPUID, the other way a guest learns which CPU it is on
    12: "hlt",
    14: "invlpg",
    18: "vmcall",
    20: "vmrun",
    28: "cr-access",
    30: "io",
    46: "lidt",
    48: "nested-page-fault",
})
REASON_NUMBERS = MappingProxyType({name: number for number, name in EXIT_REASONS.items()})
#: Instruction mnemonic → the exit reason it causes.
INSTRUCTION_REASONS = MappingProxyType({
    "hlt": "hlt", "in": "io", "out": "io", "mtcr": "cr-access", "mfcr": "cr-access",
    "invlpg": "invlpg", "lidt": "lidt", "vmcall": "vmcall", "vmrun": "vmrun",
    "rdpid": "rdpid",
})

# -- exit qualifications -------------------------------------------------------------------------
# io: port | direction | register
IO_PORT_MASK = 0xFFFF
IO_IN = 1 << 16  # 1 = in, 0 = out
IO_REG_SHIFT = 20
# cr-access: control register | direction | register
CR_NUMBER_MASK = 0xF
CR_READ = 1 << 4  # 1 = mfcr, 0 = mtcr
CR_REG_SHIFT = 8
# invlpg: the linear address; lidt: the new table base (the register's value).
# external-interrupt: with EXIT_ACK_INTERRUPT the vector (32 + line), else 0.
# nested-page-fault:
NPF_READ = 1 << 0
NPF_WRITE = 1 << 1
NPF_FETCH = 1 << 2
NPF_PRESENT = 1 << 3  # the nested entry was present (a write to a read-only page), else a miss
NPF_WALK = 1 << 4  # the access was the guest page walk's (to a directory or table entry)
# exception: for #PF the faulting linear address (the guest's cr2 is not written).

#: Pseudo-vector carried by the GuestFault that signals a nested page fault inside the CPU; never
#: delivered to a guest (vectors are 0..255).
VEC_NESTED_PAGE_FAULT = 0x100

__all__ = [name for name in dir() if name.isupper()] + ["event_word"]
