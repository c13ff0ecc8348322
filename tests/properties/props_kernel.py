"""A tiny kernel around a generated program (`toyvisor.testing.program.Program`), so that the
same guest runs on the bare machine and under every VMM strategy.

The kernel fills an interrupt table whose every gate is present (DPL 3, ring 0): the faults
(#DE, #UD, #GP, #PF, #AC) return past the faulting instruction — every instruction that can
fault is one word long — #DF halts, everything else (IRQs, `int n`, `brk`) just returns.  It
programs the timer with the program's period, sets IF, optionally drops to ring 3 with an
`iret`, and jumps to the program at `PROGRAM`; the program's end halts (ring 0) or makes the
exit syscall ``int 0x81`` (ring 3).  Memory map (64 KiB of guest-physical RAM): kernel code at
0, interrupt table at 0x800, program at 0x2000, user stack below 0xD000, kernel stack below
0xF000.
"""

from __future__ import annotations

from toyvisor.asm import assemble_source
from toyvisor.isa.spec import PLATFORM_SYMBOLS, SECTOR_SIZE
from toyvisor.isa.table import BY_MNEMONIC, Kind
from toyvisor.testing.program import Instr, Program
from toyvisor.testing.strategies import Targets
from toyvisor.tools.guest import Guest

MEMORY = 0x10000
IDT = 0x800
PROGRAM = 0x2000
USER_STACK = 0xD000
KERNEL_STACK = 0xF000
FAULTS = (0, 6, 13, 14, 17)
EXIT_VECTOR = 0x81

def _gate(vector: int) -> str:
    handler = ("skip" if vector in FAULTS else "double" if vector == 8
               else "halt" if vector == EXIT_VECTOR else "ret_")
    return f"        .word {handler}, GATE_P | GATE_DPL3 | GATE_RING0"


KERNEL = f"""
start:  li   sp, {KERNEL_STACK}
        li   r1, {IDT}
        lidt r1
        li   r1, {KERNEL_STACK}
        mtcr ksp0, r1
        li   r1, TICK_PERIOD
        cmpi r1, 0
        jz   .notimer
        out  PORT_TIMER_PERIOD, r1
.notimer:
        li   r1, AT_RING3
        cmpi r1, 0
        jnz  .user
        li   r1, 0
        sti
        jmp  {PROGRAM}
.user:  li   r1, {USER_STACK}
        push r1
        li   r1, FLAG_IF
        push r1
        li   r1, 3
        push r1
        li   r1, {PROGRAM}
        push r1
        li   r1, 0
        push r1
        li   r1, 0
        iret
skip:   ld   r13, [sp + 4]          ; the frame: error code, pc, cs, flags (, sp)
        addi r13, r13, 4
        st   [sp + 4], r13
ret_:   iret
double:
halt:   cli
        hlt
        .org {IDT:#x}
""" + "\n".join(_gate(v) for v in range(256)) + "\n"


def kernel_guest(program: Program, *, user: bool = False, max_steps: int = 3000,
                 spin: bool = False, disk: bytes | None = None, name: str = "program") -> Guest:
    """`program` inside the kernel, at ring 3 if `user`, as a bootable 64 KiB guest; with
    `spin` the program's end is an endless loop instead of the exit."""
    end = ("forever: jmp forever" if spin else f"int {EXIT_VECTOR:#x}" if user
           else "cli\n        hlt")
    source = (f"TICK_PERIOD = {program.timer_period}\nAT_RING3 = {int(user)}\n" + KERNEL
              + f".org {PROGRAM:#x}\n" + program.source() + f"        {end}\n")
    image = assemble_source(source, "<kernel + program>").image
    return Guest(name=name, image=image, memory_size=MEMORY, max_steps=max_steps, disk=disk)


#: Where the programs' adversarial accesses aim (guest-physical; the slice ends at 64 KiB):
#: the kernel's code, interrupt table and stack, the program itself, and beyond the guest's RAM
#: (where the VMM region and other VMs' slices lie in host memory).
TARGETS = Targets(kernel=(0x0, 0x40, KERNEL_STACK - 8), page_tables=(IDT, IDT + 8 * 32),
                  vmm=(MEMORY, 0x100000 - 4), other_vms=(MEMORY + 0x1000, 0x200000),
                  user=(PROGRAM, USER_STACK - 8))


def examples(n: int) -> int:
    """`n` examples under the `ci` profile (60 by default), proportionally more under `nightly`."""
    from hypothesis import settings

    return max(1, n * settings.default.max_examples // 60)


def concat(first: Program, second: Program) -> Program:
    """`first` then `second` (the second's branch targets shifted); `first`'s timer period."""
    shift = len(first)

    def moved(instr: Instr) -> Instr:
        values = tuple(v + shift if op.kind is Kind.REL16 else v
                       for op, v in zip(BY_MNEMONIC[instr.mnemonic].operands, instr.values))
        return Instr(instr.mnemonic, values, instr.comment)

    return Program((*first, *map(moved, second)), first.timer_period)


_PORT = {name: PLATFORM_SYMBOLS[f"PORT_DISK_{name}"] for name in ("SECTOR", "ADDR", "CMD", "STATUS")}


def dma(requests) -> Program:
    """Disk commands ``(sector, guest-physical address, command)`` issued from ring 0, the
    status read back into r2 after each: the device's DMA on the guest's behalf."""
    out: list[Instr] = []
    for sector, address, command in requests:
        out += [Instr("li", (1, sector)), Instr("out", (_PORT["SECTOR"], 1)),
                Instr("li", (1, address), "DMA address"), Instr("out", (_PORT["ADDR"], 1)),
                Instr("li", (1, command)), Instr("out", (_PORT["CMD"], 1), "DMA"),
                Instr("in", (2, _PORT["STATUS"]))]
    return Program(tuple(out))


#: DMA addresses worth trying: inside, across the end of, and beyond the guest's RAM
DMA_ADDRESSES = (0, PROGRAM, MEMORY - SECTOR_SIZE, MEMORY - SECTOR_SIZE + 4, MEMORY - 4, MEMORY,
                 0x100000, 0xFFFFFE00, 0xFFFFFFFF)
