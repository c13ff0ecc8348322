"""The hardware-assisted VMM's cheap VM exits and entries compute exactly what the careful ones
do: the control structure's words moved in RAM when its pages have no flag
(`VirtualizationUnit.plain_access`, `ControlStructure.plain_access`), an I/O exit emulated from
its qualification (`HardwareAssisted.io_from_qualification`), the CPU's access paths reused
across mode switches (`CPU._select_access_paths`) and no flush of empty fetch caches.  Each run
with the shortcuts is compared with the careful one: the VM's state, console and every count,
the real CPU's counts and the whole of host RAM (the structures included)."""

from __future__ import annotations

import hashlib

import pytest

from toyvisor.cpu import Machine
from toyvisor.cpu.cpu import CPU
from toyvisor.cpu.memory import PAGE_WATCH_READ
from toyvisor.cpu.vt import ControlStructure, VirtualizationUnit, io_instruction, io_qualification
from toyvisor.isa import vt as V
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.strategies import make_strategy
from toyvisor.vmm.strategies.hardware_assisted import HardwareAssisted

SPECS = ("hardware-assisted:2", "hardware-assisted:1")


def _careful(monkeypatch) -> None:
    """Every shortcut off: the reference."""
    monkeypatch.setattr(VirtualizationUnit, "plain_access", False)
    monkeypatch.setattr(ControlStructure, "plain_access", False)
    monkeypatch.setattr(HardwareAssisted, "io_from_qualification", False)
    select = CPU._select_access_paths

    def fresh(self):
        self._access_paths.clear()  # built anew every time
        select(self)

    monkeypatch.setattr(CPU, "_select_access_paths", fresh)


def _outcome(names, spec: str, quantum: int = 700, pcpus: int = 1, trace=None):
    hypervisor = Hypervisor(make_strategy(spec), quantum=quantum, pcpus=pcpus)
    vms = [hypervisor.create_vm(guest if not isinstance(guest, str) else load_guest(guest))
           for guest in names]
    for vm in vms:
        vm.boot()
    hypervisor.run(trace=trace)
    vcpus = [(vm.stop_reason, vm.fault_report, tuple(vm.vcpu.regs), vm.vcpu.pc, vm.vcpu.cpl,
              vm.vcpu.flags, vm.vcpu.cr2, vm.vcpu.cr3, vm.guest_instructions, vm.by_cause,
              vm.events, vm.entries, vm.devices.clock, vm.idle_ticks, vm.console)
             for vm in vms]
    cpus = [(cpu.retired, cpu.deliveries, cpu.vmm_entries, cpu.vm_exits, cpu.by_cause,
             cpu.platform.clock, cpu.vt.guest_instructions, cpu.vt.guest_traps)
            for cpu in hypervisor.machine.cpus]
    ram = hashlib.sha256(bytes(hypervisor.machine.memory.data)).hexdigest()
    return vcpus, cpus, ram, hypervisor


GUESTS = [["minikernel"], ["nanobench"], ["examples/pagefault.s"], ["bench/timer"],
          ["minikernel", "nanobench"]]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("names", GUESTS, ids="+".join)
def test_the_fast_exit_paths_compute_what_the_careful_ones_do(spec, names, monkeypatch):
    fast = _outcome(names, spec)[:3]
    _careful(monkeypatch)
    careful = _outcome(names, spec)[:3]
    assert fast == careful
    assert all(vcpu[0] == "halted" for vcpu in fast[0])


def test_an_smp_host_computes_what_the_careful_paths_do(monkeypatch):
    fast = _outcome(["minikernel"], "hardware-assisted:2", pcpus=2)[:3]
    _careful(monkeypatch)
    assert _outcome(["minikernel"], "hardware-assisted:2", pcpus=2)[:3] == fast


def test_the_shortcuts_are_taken():
    _, _, _, hypervisor = _outcome(["minikernel"], "hardware-assisted:2")
    strategy = hypervisor.strategy
    assert strategy._io_handlers  # I/O exits were emulated from their qualification
    cpu = hypervisor.cpu
    # the root paths (and the kept guest MMU's): reused, not rebuilt at every entry and exit
    assert not cpu.nonroot and (cpu.mmu, False) in cpu._access_paths


def test_a_traced_run_decodes_its_io_exits_and_ends_as_the_careful_one(monkeypatch):
    lines = []
    traced = _outcome(["minikernel"], "hardware-assisted:2", trace=lines.append)
    assert not traced[3].strategy._io_handlers  # the trace shows the decoded instruction
    careful_lines = []
    _careful(monkeypatch)
    careful = _outcome(["minikernel"], "hardware-assisted:2", trace=careful_lines.append)
    assert traced[:3] == careful[:3]
    assert [str(line) for line in lines] == [str(line) for line in careful_lines]


@pytest.mark.parametrize("mnemonic, fields", [
    ("in", {"rd": 0, "port": 0}), ("in", {"rd": 15, "port": 0xFFFF}),
    ("out", {"port": 0x3F8, "rs": 7}), ("out", {"port": 0xFFFF, "rs": 15})])
def test_io_instruction_inverts_io_qualification(mnemonic, fields):
    assert io_instruction(io_qualification(mnemonic, fields)) == (mnemonic, fields)


def test_a_structure_on_a_watched_page_takes_the_careful_path(monkeypatch):
    """With the structure's page watched, entry and exit read and write the whole structure
    through `PhysicalMemory` (the audit sees them) and the run ends as with the shortcuts."""
    def run(watched: bool):
        hypervisor = Hypervisor(make_strategy("hardware-assisted:2"))
        vm = hypervisor.create_vm(load_guest("examples/hello.s"))
        vm.boot()
        memory = hypervisor.machine.memory
        vmcs = vm.vcpu.hardware.vmcs.address
        seen = []
        if watched:
            audit = memory.audit

            def recording(access, pa, size, value):
                if pa <= vmcs < pa + size or vmcs <= pa < vmcs + V.VMCS_SIZE:
                    seen.append((access, size))
                audit(access, pa, size, value)

            memory.audit = recording
            memory.watch(vmcs, V.VMCS_SIZE, read=True, write=True)
            assert memory.page_flags[vmcs >> 12] & PAGE_WATCH_READ
        hypervisor.run()
        if watched:
            memory.unwatch(vmcs, V.VMCS_SIZE)
        return (vm.stop_reason, vm.console, vm.by_cause, vm.events,
                hashlib.sha256(bytes(memory.data)).hexdigest()), seen

    plain, _ = run(False)
    watched, seen = run(True)
    assert watched == plain and plain[0] == "halted"
    exits = plain[2]["exit:io"] + plain[2].get("exit:hlt", 0)
    # per entry one read of the whole structure, per exit one read and one write of it
    assert seen.count(("write", V.VMCS_SIZE)) >= exits
    assert seen.count(("read", V.VMCS_SIZE)) >= 2 * exits


def test_access_paths_are_reused_only_for_the_same_mmu_and_watch_state():
    machine = Machine(memory_size=1 << 20)
    cpu = machine.cpu
    memory = machine.memory
    memory.write32(0x3000, 0x1234)
    flat = cpu.load32
    seen = []
    memory.audit = lambda access, pa, size, value: seen.append((access, pa))
    memory.watch(0x3000, read=True, write=False)  # a listener reselects: auditing paths
    assert cpu.load32 is not flat and cpu.load32(0x3000) == 0x1234
    assert seen == [("read", 0x3000)]
    cpu._select_access_paths()  # reselected with the page still watched: still auditing
    assert cpu.load32(0x3000) == 0x1234 and len(seen) == 2
    memory.unwatch(0x3000)
    assert cpu.load32 is flat  # the unwatched flat paths again, reused
    cpu.load32(0x3000)
    assert len(seen) == 2
    # another MMU (paging), then back: its own paths, each reused
    root_mmu = cpu.mmu
    other = type(root_mmu)(memory)
    cpu.mmu, cpu.cr0 = other, 1
    cpu._select_access_paths()
    paged = cpu.load32
    assert paged is not flat
    cpu.mmu, cpu.cr0 = root_mmu, 0
    cpu._select_access_paths()
    assert cpu.load32 is flat
    cpu.mmu, cpu.cr0 = other, 1
    cpu._select_access_paths()
    assert cpu.load32 is paged
    other.tlb = {}  # a TLB replaced (not cleared): the paths are built anew around it
    cpu._select_access_paths()
    assert cpu.load32 is not paged


def test_flush_fetch_still_clears_filled_caches():
    machine = Machine(memory_size=1 << 20)
    cpu = machine.cpu
    for caches in (cpu._fetch_caches, cpu._fetch_entries, cpu._runs):
        caches[0][0x100] = object()
    cpu.flush_fetch()
    assert not any(cpu._fetch_caches) and not any(cpu._fetch_entries) and not any(cpu._runs)
    cpu._runs[3][4] = object()  # any one cache filled is enough
    cpu.flush_fetch()
    assert not any(cpu._runs)
