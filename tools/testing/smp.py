"""The isolation properties for SMP VMs (docs/testing-isolation.md, "SMP VMs").

A generated program runs as a whole guest of V vCPUs (`bare_smp_guest`): vCPU 0 starts the others
with start IPIs, and every vCPU runs the program — on the same memory, so they race — with its
own stack, behind the same fault-skipping interrupt table as `harness.bare_guest`.  The VM runs
on a host of P physical CPUs next to a victim VM of two vCPUs (vCPUs of both VMs share physical
CPUs: the host deals them round-robin), every physical access audited.  What must hold whatever
CPU a vCPU runs on: ``resource-control`` (the hypervisor's audit and structural checks find
nothing) and ``vm-isolation`` (no access lands outside the VM's own memory, the victim's memory
is untouched).  ``equivalence`` is not among them: the vCPUs race on shared data, so the final
state is the interleaving's (compare judges SMP equivalence on the guest-visible outcome of
race-free guests instead); nor is ``efficiency``: a generated program of a few instructions is
outweighed by its prelude's emulated start IPIs and ``lidt``s.
"""

from __future__ import annotations

from toyvisor.asm import assemble_source
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import MAX_CPUS, PORT_CPU_START, PORT_IPI_DEST, PORT_TIMER_PERIOD
from toyvisor.tools.guest import Guest

from . import strategies
from .harness import BARE_IDT, BARE_MEMORY, BARE_PROGRAM, BARE_STACK, program_and_table
from .program import Program

#: the properties checked for SMP VMs (see the module docstring)
SMP_PROPERTIES = ("resource-control", "vm-isolation")
#: bytes of stack per vCPU below BARE_STACK
SMP_STACK = 0x400
#: the most vCPUs a generated SMP guest has (its stacks must stay above the program)
MAX_SMP_CPUS = min(MAX_CPUS, (BARE_STACK - BARE_PROGRAM - 0x1000) // SMP_STACK)
#: where an SMP program's accesses aim: its own code and interrupt table, past its RAM (the
#: next VM's slice, on a host), and the platform's ports (the SMP ones too)
SMP_TARGETS = strategies.Targets(kernel=(0x0, BARE_IDT), vmm=(0x0,),
                                 other_vms=(BARE_MEMORY, BARE_MEMORY + 0x1000))


class SMPCheckError(ToyvisorError):
    """An SMP check that cannot run (a bad number of vCPUs or physical CPUs)."""


def check_counts(cpus: int, pcpus: int | None) -> tuple[int, int]:
    """(vCPUs, physical CPUs) if they make sense for an SMP check; `SMPCheckError` otherwise."""
    if not 2 <= cpus <= MAX_SMP_CPUS:
        raise SMPCheckError(f"an SMP check runs VMs of 2 to {MAX_SMP_CPUS} vCPUs, not {cpus}")
    pcpus = cpus if pcpus is None else pcpus
    if not 1 <= pcpus <= MAX_CPUS:
        raise SMPCheckError(f"the host has 1 to {MAX_CPUS} physical CPUs, not {pcpus}")
    return cpus, pcpus


def _prelude(cpus: int, ap: str) -> str:
    """vCPU 0 starts vCPUs 1 … cpus−1 at `ap` (start IPIs); every vCPU then continues there."""
    return f"""
start:  rdpid r13
        cmpi r13, 0
        jnz  {ap}
        li   r12, 1
.boot:  cmpi r12, {cpus}
        jz   {ap}
        out  {PORT_IPI_DEST:#x}, r12
        li   r1, {ap}
        out  {PORT_CPU_START:#x}, r1
        addi r12, r12, 1
        jmp  .boot
"""


def bare_smp_guest(program: Program, cpus: int, *, max_steps: int = 5_000,
                   name: str = "program") -> Guest:
    """`program` as a whole guest of `cpus` vCPUs, each running it at ring 0 (paging off) with
    a stack of its own; every vCPU stops with ``cli; hlt`` after it."""
    source = _prelude(cpus, "ap") + f"""
ap:     rdpid r1
        li   r2, {SMP_STACK:#x}
        mul  r1, r1, r2
        li   sp, {BARE_STACK:#x}
        sub  sp, sp, r1
        li   r1, {BARE_IDT:#x}
        lidt r1
        li   r1, {program.timer_period}
        out  {PORT_TIMER_PERIOD:#x}, r1
        sti
        jmp  program
{program_and_table(program)}"""
    image = assemble_source(source, f"<{name}>").image
    return Guest(name=name, image=image, memory_size=BARE_MEMORY, max_steps=max_steps,
                 cpus=cpus)


def smp_victim(memory: int, pattern: bytes) -> Guest:
    """The victim VM of an SMP run: two vCPUs that spin, a known pattern in its memory."""
    source = _prelude(2, "spin") + "spin:   jmp spin\n.org 0x1000\n.byte " + ", ".join(
        map(str, pattern))
    image = assemble_source(source, "<victim>").image
    return Guest(name="victim", image=image, memory_size=memory, max_steps=2_000, cpus=2)


def smp_programs():
    """The programs an SMP check tries (the adversarial classes of `check_kernel`'s, aimed at
    `SMP_TARGETS`)."""
    return strategies.programs(privileged=True, sensitive=True, wild=True, targets=SMP_TARGETS,
                               max_size=12, access_weight=4)


def smp_label(spec: str, cpus: int, pcpus: int) -> str:
    return f"{spec} ({cpus} vCPUs on {pcpus} physical CPU{'s' if pcpus > 1 else ''})"


__all__ = ["MAX_SMP_CPUS", "SMPCheckError", "SMP_PROPERTIES", "SMP_TARGETS", "bare_smp_guest",
           "check_counts", "smp_label", "smp_programs", "smp_victim"]
