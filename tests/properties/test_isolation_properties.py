"""Isolation and control as properties, for every strategy that hosts unmodified kernels
(trap-emulate in both ring models, binary-translation, hardware-assisted in both generations):
an attacker VM runs any generated program — privileged, sensitive, wild jumps, self-modifying,
accesses aimed at its kernel, beyond its RAM (the VMM region, the other VM's slice), device DMA at
any address — next to a victim VM, time-sliced on one real CPU; then

- no access lands outside the VM's frames: the hypervisor's audit of every physical access
  (loads, stores, fetches, page walks) and of its shadow/nested tables finds nothing, the
  VMM region changed only in the VMM's own table frames, the real interrupt table not at all;
- the victim ends exactly as it does alone on bare metal;
- the VMM regains control on every real timer tick whatever the attacker does (cli, popf,
  an endless loop, faults in its handlers): no stretch of guest execution between two VMM
  entries is longer than the quantum, and the victim completes although the attacker never
  stops;
- the guest never holds the real machine: at every guest instruction the real CPL is not 0
  (or the CPU is in non-root mode), the real IF is 1, the real interrupt table is the VMM's and
  the real page-table root is one of the VMM's frames."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from props_kernel import DMA_ADDRESSES, MEMORY, TARGETS, concat, dma, examples, kernel_guest

from toyvisor.asm import assemble_source
from toyvisor.isa.spec import FLAG_IF, GATE_SIZE, NUM_VECTORS, SECTOR_SIZE
from toyvisor.testing import strategies as tst
from toyvisor.testing.program import Instr, Program
from toyvisor.tools.guest import Guest
from toyvisor.vmm import Hypervisor, make_strategy
from toyvisor.vmm.equivalence import native_state, vm_state
from toyvisor.vmm.strategies.native import boot_native

SPECS = ["trap-emulate:0/1/3", "trap-emulate:0/3/3", "binary-translation",
         "hardware-assisted:1", "hardware-assisted:2"]
DISK = bytes(range(256)) * (4 * SECTOR_SIZE // 256)

attackers = st.builds(
    concat,
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from(DMA_ADDRESSES), st.sampled_from([1, 2])),
             max_size=3).map(dma),
    tst.programs(privileged=True, sensitive=True, wild=True, targets=TARGETS,
                 self_modifying=True, loop=True, max_size=12))
victims = tst.programs(privileged=True, loop=True, max_size=10)


def _native(guest):
    machine = boot_native(guest)
    machine.run(max_steps=guest.max_steps)
    return native_state(machine)


class RealStateWatch:
    """Checks the real CPU at every guest instruction (at every VM exit under the "vt"
    extension, where the guest runs on its own state in non-root mode and the VMM's is the
    host state the exit restores) and the real clock at every VMM entry."""

    def __init__(self, hv: Hypervisor):
        self.hv = hv
        self.problems: list[str] = []
        self.longest = 0
        cpu = hv.cpu
        self._last = cpu.platform.clock
        self._host = (cpu.cpl, cpu.idtr, cpu.mmu.cr3, cpu.cr0)
        self._host_if = None
        for name in ("trap", "callout", "vm_exit"):
            setattr(hv, name, self._entry(name, getattr(hv, name)))

    def _entry(self, name, original):
        def entry(cpu, *args):
            self.longest = max(self.longest, cpu.platform.clock - self._last)
            if name == "vm_exit":
                self._check_host(cpu)
            try:
                return original(cpu, *args)
            finally:
                self._last = cpu.platform.clock
        return entry

    def _check_host(self, cpu) -> None:
        host = (cpu.cpl, cpu.idtr, cpu.mmu.cr3, cpu.cr0)
        if host != self._host:
            self.problems.append(f"host state after a VM exit {host} is not the VMM's "
                                 f"{self._host}")
        if self._host_if is None:
            self._host_if = cpu.flags & FLAG_IF
        elif cpu.flags & FLAG_IF != self._host_if:
            self.problems.append("the host IF changed across VM exits")

    def __call__(self, event) -> None:
        if type(event).__name__ != "InstructionEvent" or len(self.problems) > 5:
            return
        cpu = self.hv.cpu
        if self.hv.strategy.name == "hardware-assisted":
            return  # non-root: the guest's own state (checked at every exit instead)
        where = f"guest pc {event.pc:#x}"
        if cpu.cpl == 0:
            self.problems.append(f"{where} runs at real CPL 0")
        if not cpu.flags & FLAG_IF:
            self.problems.append(f"{where} runs with the real IF clear")
        if cpu.idtr != 0:
            self.problems.append(f"{where}: real idtr {cpu.idtr:#x}")
        if cpu.mmu.cr3 & ~0xFFF not in self.hv.frames.in_use:
            self.problems.append(f"{where}: real cr3 {cpu.mmu.cr3:#x} is no VMM frame")


@pytest.mark.parametrize("spec", SPECS)
@settings(max_examples=examples(12))
@given(attacker=attackers, victim=victims, attacker_user=st.booleans(),
       quantum=st.sampled_from([37, 200, 1000]), spin=st.booleans())
def test_an_attacker_vm_cannot_reach_its_neighbour_the_vmm_or_the_real_machine(
        spec, attacker, victim, attacker_user, quantum, spin):
    bad = kernel_guest(attacker, user=attacker_user, spin=spin, disk=DISK, name="attacker",
                       max_steps=4000)
    good = kernel_guest(victim, name="victim")
    alone = _native(good)
    hv = Hypervisor(make_strategy(spec), memory_size=(1 << 20) + 2 * MEMORY, quantum=quantum)
    vms = [hv.create_vm(bad), hv.create_vm(good)]
    for vm in vms:
        vm.boot()
    memory = hv.machine.memory.data
    before = bytes(memory[:hv.vmm_region])
    watch = RealStateWatch(hv)
    hv.run(trace=watch)
    report = f"{spec}, attacker:\n{attacker}"
    assert watch.problems == [], report
    assert hv.violations == [], report
    for vm in vms:
        assert hv.resource_violations(vm) == [], report
    assert vm_state(vms[1]) == alone, report
    assert bytes(memory[:NUM_VECTORS * GATE_SIZE]) == before[:NUM_VECTORS * GATE_SIZE], report
    vmm_frames = set(hv.frames.in_use)
    for page in range(0, hv.vmm_region, 0x1000):
        if memory[page:page + 0x1000] != before[page:page + 0x1000]:
            assert page in vmm_frames, f"VMM region page {page:#x} changed\n{report}"
    assert watch.longest <= quantum + 1, report


#: Attackers that try to keep the CPU: interrupts off, then spin; IF cleared through popf; an
#: interrupt table whose every handler faults again at once (an endless fault loop, every
#: delivery nested in the last); a handler that loops for ever with interrupts off.
HOGS = {
    "cli-spin": "start: cli\nspin: jmp spin\n",
    "popf-spin": "start: li sp, 0x8000\n li r1, 0\n push r1\n popf\nspin: jmp spin\n",
    "fault-loop": (f"start: li sp, 0x8000\n li r1, table\n lidt r1\n sti\n ld r2, [r3]\n"
                   f" jmp start\nbad: li r4, 0xFFFFFFF0\n ld r5, [r4]\n jmp bad\n"
                   f".align 8\ntable:\n" + "".join(
                       " .word bad, GATE_P | GATE_DPL3 | GATE_RING0\n" for _ in range(256))),
    "handler-spin": (f"start: li sp, 0x8000\n li r1, table\n lidt r1\n li r1, 5\n"
                     f" out PORT_TIMER_PERIOD, r1\n sti\nwait: jmp wait\nhog: cli\nh: jmp h\n"
                     f".align 8\ntable:\n" + "".join(
                         " .word hog, GATE_P | GATE_DPL3 | GATE_RING0\n" for _ in range(256))),
}


@pytest.mark.parametrize("hog", sorted(HOGS))
@pytest.mark.parametrize("spec", SPECS)
def test_the_vmm_regains_control_whatever_the_guest_does(spec, hog):
    quantum = 100
    bad = Guest(name="hog", image=assemble_source(HOGS[hog], f"{hog}.s").image,
                memory_size=MEMORY, max_steps=5000)
    good = kernel_guest(Program((Instr("li", (12, 40)), Instr("addi", (1, 1, 3)),
                                 Instr("addi", (12, 12, -1)), Instr("cmpi", (12, 0)),
                                 Instr("jnz", (1,)))), name="victim")
    hv = Hypervisor(make_strategy(spec), memory_size=(1 << 20) + 2 * MEMORY, quantum=quantum)
    vms = [hv.create_vm(bad), hv.create_vm(good)]
    for vm in vms:
        vm.boot()
    watch = RealStateWatch(hv)
    hv.run(trace=watch)
    assert watch.problems == []
    assert watch.longest <= quantum + 1
    assert vms[1].stop_reason == "halted" and vm_state(vms[1]) == _native(good)
    assert vms[0].stop_reason in ("budget", "triple-fault")
    assert hv.violations == [] and hv.resource_violations(vms[0]) == []
