"""Run generated programs: as a bare ring-0 guest, or as a ring-3 task on top of a user's kernel.

**The user-program convention.**  A kernel accepts a generated user program when its image defines
these symbols (guests/minikernel does; docs/testing-isolation.md):

| symbol | meaning |
| --- | --- |
| ``user_program`` / ``user_program_end`` | where the program's code may be written (image addresses) |
| ``user_program_va`` | optional: the linear address ``user_program`` runs at (default: the same) |
| ``user_program_entry`` | optional: a data word the harness sets to ``user_program_va``, so the kernel starts its first user task there |
| ``user_program_exit`` | optional: code (in the user area) that ends the task; the program jumps there when done (else it spins) |
| ``user_memory_<name>`` / ``user_memory_<name>_end`` | physical ranges ring 3 may touch at all (the kernel-isolation property) |

The same symbols in the guest's paravirtual port (``pv_image``) place the program there too.
"""

from __future__ import annotations

import attrs

from toyvisor.asm import Image, Segment, assemble_source
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import PORT_TIMER_PERIOD, PAGE_SIZE
from toyvisor.tools.guest import Guest

from .program import Instr, Program
from .reach import Survey, survey, user_memory

#: Layout of `bare_guest`: code, data the program's registers point at, stack, interrupt table.
BARE_PROGRAM = 0x1000
BARE_STACK = 0xE000
BARE_IDT = 0xF000
BARE_MEMORY = 0x10000
FAULT_VECTORS = (0, 6, 13, 14, 17)


class HarnessError(ToyvisorError):
    """A kernel that does not follow the user-program convention, or a program that does not fit."""


def bare_guest(program: Program, *, max_steps: int = 5_000, name: str = "program") -> Guest:
    """`program` as the whole guest, at ring 0 on the bare machine (64 KiB, paging off).

    A small prelude installs an interrupt table whose fault handlers skip the faulting one-word
    instruction, whose trap and timer handlers return, and programs the timer with
    ``program.timer_period``; after the program the guest stops with ``cli; hlt``.
    """
    source = f"""
start:  li   sp, {BARE_STACK:#x}
        li   r1, {BARE_IDT:#x}
        lidt r1
        li   r1, {program.timer_period}
        out  {PORT_TIMER_PERIOD:#x}, r1
        sti
        jmp  program
{program_and_table(program)}"""
    image = assemble_source(source, f"<{name}>").image
    return Guest(name=name, image=image, memory_size=BARE_MEMORY, max_steps=max_steps)


def program_and_table(program: Program) -> str:
    """The part of a bare guest after its prelude: the fault, trap and double-fault handlers,
    `program` at BARE_PROGRAM ending in ``cli; hlt``, and the interrupt table at BARE_IDT."""
    gates = []
    for vector in range(256):
        handler = ("skip" if vector in FAULT_VECTORS else "halt" if vector == 8
                   else "resume" if vector in (3, 32, 0x80) else None)
        gates.append(f"        .word {handler}, GATE_P | GATE_DPL3 | GATE_RING0" if handler
                     else "        .word 0, 0")
    return f"""skip:   ld   r13, [sp + 4]      ; the frame: error code, pc, cs, flags, sp
        addi r13, r13, 4        ; resume after the faulting instruction
        st   [sp + 4], r13
resume: iret
halt:   cli
        hlt
.org {BARE_PROGRAM:#x}
program:
{program.source()}
        cli
        hlt
.org {BARE_IDT:#x}
{chr(10).join(gates)}
"""


def accepts_user_programs(guest: Guest) -> bool:
    """Whether `guest`'s kernel follows the user-program convention."""
    return {"user_program", "user_program_end"} <= set(guest.image.symbols)


def user_guest(kernel: Guest, program: Program) -> Guest:
    """`kernel` with `program` as its first ring-3 task (see the module docstring)."""
    if not accepts_user_programs(kernel):
        raise HarnessError(
            f"{kernel.name}: the kernel does not accept user programs (define the symbols "
            "user_program and user_program_end: docs/testing-isolation.md)")
    pv_image = kernel.pv_image
    if pv_image is not None and {"user_program", "user_program_end"} <= set(pv_image.symbols):
        pv_image = _place(pv_image, program, kernel.name + " (paravirtual port)")
    return attrs.evolve(kernel, image=_place(kernel.image, program, kernel.name),
                        pv_image=pv_image)


def fits(kernel: Guest, program: Program) -> bool:
    """Whether `program` (with its final jump) fits the kernel's ``user_program`` area."""
    symbols = kernel.image.symbols
    return program.size + 4 <= symbols["user_program_end"] - symbols["user_program"]


def _place(image: Image, program: Program, what: str) -> Image:
    symbols = image.symbols
    start, end = symbols["user_program"], symbols["user_program_end"]
    va = symbols.get("user_program_va", start)
    exit_va = symbols.get("user_program_exit")
    ending = (Instr("jmp", (len(program) + 1,), "done: exit") if exit_va is not None
              else Instr("jmp", (len(program),), "done: spin"))
    code = bytearray(Program((*program.instructions, ending)).encode(va))
    if exit_va is not None:  # the final jump goes outside the program: patch its target
        from toyvisor.isa.encoding import encode
        from toyvisor.isa.table import BY_MNEMONIC

        exit_linear = exit_va - start + va
        pc = va + len(code) - 4
        code[-4:] = encode(BY_MNEMONIC["jmp"], (exit_linear,), pc)
    if start % 4 or len(code) > end - start:
        raise HarnessError(f"{what}: the program needs {len(code)} bytes, the kernel's "
                           f"user_program area has {end - start}")
    patches = {start: bytes(code)}
    if "user_program_entry" in symbols:
        patches[symbols["user_program_entry"]] = va.to_bytes(4, "little")
    segments = list(image.segments)
    for address, data in patches.items():
        index = next((i for i, s in enumerate(segments)
                      if s.address <= address and address + len(data) <= s.end), None)
        if index is None:
            raise HarnessError(f"{what}: {address:#x} is not inside the image")
        segment = segments[index]
        offset = address - segment.address
        patched = segment.data[:offset] + data + segment.data[offset + len(data):]
        segments[index] = Segment(segment.name, segment.address, patched)
    return attrs.evolve(image, segments=segments)


def reach(kernel: Guest, max_steps: int | None = None) -> Survey:
    """`toyvisor.testing.reach.survey` of `kernel` running an empty user program (the kernel
    alone, when it does not accept programs): what its page tables let ring 3 reach."""
    guest = user_guest(kernel, Program(())) if accepts_user_programs(kernel) else kernel
    return survey(guest, max_steps=max_steps)


def kernel_targets(guest: Guest, surveyed: Survey | None = None):
    """`toyvisor.testing.strategies.Targets` for programs on top of `guest`'s kernel, from the
    machine (`reach`; pass `surveyed` to reuse one): the linear addresses at which ring 3
    reaches kernel frames, the kernel's image and ring-3-entry frames, its page tables, the
    VMM's region and the memory past the guest (another VM's, on a host)."""
    from .strategies import DEFAULT_TARGETS, Targets

    found = reach(guest) if surveyed is None else surveyed
    user = user_memory(guest)
    exposed = [e.va for e in found.exposures]
    tables = sorted(found.page_table_frames)
    kernel = sorted({0, PAGE_SIZE, *(s.address & ~(PAGE_SIZE - 1) for s in guest.image.segments),
                     *(f for f in found.frames if f not in found.page_table_frames)})
    exposed_tables = [e.va for e in found.exposures if e.frame in found.page_table_frames]
    return Targets(kernel=tuple(dict.fromkeys([*exposed, *kernel]))[:8],
                   page_tables=tuple(dict.fromkeys([*exposed_tables, *tables]))[:6],
                   vmm=DEFAULT_TARGETS.vmm,
                   other_vms=(guest.memory_size, guest.memory_size + PAGE_SIZE),
                   user=tuple(start for _, start, _ in user[:3]))


__all__ = ["BARE_MEMORY", "BARE_PROGRAM", "HarnessError", "accepts_user_programs", "bare_guest",
           "program_and_table",
           "fits", "kernel_targets", "reach", "user_guest", "user_memory"]
