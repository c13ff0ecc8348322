"""Architectural constants of the toyvisor platform.

Every number a guest, the assembler, the machine or a VMM needs about the architecture is defined
here once; `PLATFORM_SYMBOLS` exports them to assembly source under their documented names.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

M32 = 0xFFFFFFFF
WORD = 4
NUM_REGS = 16
SP = 15  # r15 is the stack pointer

# -- flags (x86 bit positions) -------------------------------------------------------------------
FLAG_CF = 1 << 0
FLAG_ZF = 1 << 6
FLAG_SF = 1 << 7
FLAG_IF = 1 << 9
FLAG_OF = 1 << 11
COND_MASK = FLAG_CF | FLAG_ZF | FLAG_SF | FLAG_OF
FLAGS_MASK = COND_MASK | FLAG_IF  # bits that exist; the others read as zero

# -- control registers ---------------------------------------------------------------------------
CR0 = 0
CR2 = 2
CR3 = 3
KSP0 = 8
KSP1 = 9
KSP2 = 10
CONTROL_REGISTERS = MappingProxyType(
    {"cr0": CR0, "cr2": CR2, "cr3": CR3, "ksp0": KSP0, "ksp1": KSP1, "ksp2": KSP2}
)
CONTROL_REGISTER_NAMES = MappingProxyType({v: k for k, v in CONTROL_REGISTERS.items()})
CR0_PG = 1 << 0
CR0_MASK = CR0_PG

# -- exception and interrupt vectors -------------------------------------------------------------
VEC_DE = 0
VEC_BP = 3
VEC_UD = 6
VEC_DF = 8
VEC_GP = 13
VEC_PF = 14
VEC_AC = 17
VEC_IRQ0 = 32
NUM_VECTORS = 256
GATE_SIZE = 8

VECTOR_NAMES = MappingProxyType(
    {
        VEC_DE: "divide-error",
        VEC_BP: "breakpoint",
        VEC_UD: "invalid-opcode",
        VEC_DF: "double-fault",
        VEC_GP: "general-protection",
        VEC_PF: "page-fault",
        VEC_AC: "alignment-check",
    }
)

# Gate word 1.
GATE_P = 1 << 0
GATE_DPL_SHIFT = 1
GATE_RING_SHIFT = 3
GATE_TRAP = 1 << 5

# -- paging --------------------------------------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
PTE_P = 1 << 0
PTE_W = 1 << 1
PTE_PL_SHIFT = 2
PTE_PL_MASK = 3 << PTE_PL_SHIFT
PTE_A = 1 << 5
PTE_D = 1 << 6
PTE_FRAME = 0xFFFFF000

# Page-fault error code.
PF_PROT = 1 << 0
PF_WRITE = 1 << 1
PF_USER = 1 << 2
PF_FETCH = 1 << 4
PF_CPL_SHIFT = 5

# -- platform devices ----------------------------------------------------------------------------
PORT_CONSOLE_DATA = 0x10
PORT_CONSOLE_STATUS = 0x11
PORT_TIMER_PERIOD = 0x20
PORT_CLOCK = 0x21
PORT_PIC_MASK = 0x30
PORT_PIC_PENDING = 0x31
PORT_DISK_SECTOR = 0x40
PORT_DISK_ADDR = 0x41
PORT_DISK_CMD = 0x42
PORT_DISK_STATUS = 0x43
PORT_DISK_SECTORS = 0x44
DISK_CMD_READ = 1
DISK_CMD_WRITE = 2
DISK_OK = 0
DISK_BAD_SECTOR = 1
DISK_BAD_ADDRESS = 2
SECTOR_SIZE = 512
IRQ_TIMER = 0
IRQ_CONSOLE = 1
IRQ_DISK = 2
NUM_IRQS = 16

# -- the multiprocessor (docs/machine.md, "Multiprocessor") ---------------------------------------
MAX_CPUS = 64
PORT_CPU_COUNT = 0x50
PORT_IPI_DEST = 0x51
PORT_IPI_SEND = 0x52
PORT_CPU_START = 0x53
PORT_SMP_STATUS = 0x54
PORT_IRQ_ROUTE_LINE = 0x55
PORT_IRQ_ROUTE_CPU = 0x56
#: IPI vectors: 48..63, delivered through local interrupt lines 16..31 (never masked).
VEC_IPI0 = 48
NUM_IPI_VECTORS = 16
#: IPI_SEND destination shorthands (bits 8-9 of the value written)
IPI_TO_DEST = 0x000
IPI_TO_OTHERS = 0x100
IPI_TO_ALL = 0x200
IPI_SHORTHAND_MASK = 0x300
#: SMP_STATUS: the outcome of this CPU's last IPI_SEND, CPU_START or IRQ_ROUTE_CPU write
SMP_OK = 0
SMP_NO_CPU = 1
SMP_BAD_ADDRESS = 2
SMP_BAD_VECTOR = 3
SMP_BUSY = 4
SMP_BAD_LINE = 5

# -- the network interface (docs/multicomputer.md): interface i answers at PORT_NIC_* + 16*i
# (ports 0x60-0x7F: 0x50-0x5F belong to the multiprocessor)
# and raises IRQ_NIC_RX + 2*i / IRQ_NIC_TX + 2*i.
PORT_NIC_NODE = 0x60        # in: this node's number
PORT_NIC_NODES = 0x61       # in: number of nodes in the cluster
PORT_NIC_DEST = 0x62        # destination node of the next send
PORT_NIC_PORT = 0x63        # destination port of a send; port filter of a receive
PORT_NIC_ADDR = 0x64        # DMA physical address (send: source, receive: target)
PORT_NIC_LEN = 0x65         # send: message length; receive: room at ADDR
PORT_NIC_CMD = 0x66         # out: NIC_CMD_*
PORT_NIC_STATUS = 0x67      # in: NIC_OK or an error code of the last command
PORT_NIC_RX_COUNT = 0x68    # in: messages waiting (matching the port filter)
PORT_NIC_RX_SRC = 0x69      # in: the oldest waiting message's source node
PORT_NIC_RX_PORT = 0x6A     # in: … its port
PORT_NIC_RX_LEN = 0x6B      # in: … its length
PORT_NIC_TX_ISSUED = 0x6C   # in: sends accepted so far
PORT_NIC_TX_FREED = 0x6D    # in: sends whose source buffer the interface has read (reusable)
PORT_NIC_TX_FAILED = 0x6E   # in: sends the network reported failed (fault, no route, deadlock)
PORT_NIC_COPIES = 0x6F      # out: CPU copies of the message made by software (see the docs)
NIC_PORT_STRIDE = 16
NIC_ANY_PORT = 0xFFFFFFFF
NIC_CMD_SEND = 1            # DMA ADDR..ADDR+LEN into interface RAM and send it to DEST:PORT
NIC_CMD_RECV = 2            # DMA the oldest waiting message (for PORT) to ADDR, LEN bytes room
NIC_CMD_WINDOW = 3          # ADDR := physical address of the interface RAM window (mapped mode)
NIC_OK = 0
NIC_NO_NODE = 1             # DEST is not a node of the cluster
NIC_TOO_BIG = 2             # LEN above the largest packet, or the message does not fit at ADDR
NIC_BAD_ADDRESS = 3         # ADDR..ADDR+LEN not all in RAM
NIC_RAM_FULL = 4            # no free transmit slot in interface RAM
NIC_EMPTY = 5               # nothing to receive
NIC_BAD_COMMAND = 6
IRQ_NIC_RX = 3
IRQ_NIC_TX = 4


class Privilege(enum.Enum):
    """An instruction's privilege class (Popek & Goldberg's vocabulary)."""

    INNOCUOUS = "innocuous"
    PRIVILEGED = "privileged"
    SENSITIVE = "sensitive-unprivileged"


def _symbols() -> dict[str, int]:
    names = {}
    for name, value in globals().items():
        if name.startswith(("FLAG_", "VEC_", "PTE_", "PORT_", "DISK_", "IRQ_", "CR0_", "PF_",
                            "IPI_", "SMP_", "NIC_")):
            names[name] = value
    names.update(
        PAGE_SIZE=PAGE_SIZE,
        SECTOR_SIZE=SECTOR_SIZE,
        GATE_P=GATE_P,
        GATE_TRAP=GATE_TRAP,
        GATE_SIZE=GATE_SIZE,
        MAX_CPUS=MAX_CPUS,
        NUM_IPI_VECTORS=NUM_IPI_VECTORS,
    )
    for ring in range(4):
        names[f"PTE_PL{ring}"] = ring << PTE_PL_SHIFT
        names[f"GATE_DPL{ring}"] = ring << GATE_DPL_SHIFT
        names[f"GATE_RING{ring}"] = ring << GATE_RING_SHIFT
    for irq in range(NUM_IRQS):
        names[f"VEC_IRQ{irq}"] = VEC_IRQ0 + irq
    return dict(sorted(names.items()))


#: Constants predefined in every assembly source file.
PLATFORM_SYMBOLS = MappingProxyType(_symbols())


def s32(value: int) -> int:
    """Interpret a 32-bit pattern as a signed integer."""
    return value - ((value & 0x80000000) << 1)
