"""Nested paging (generation 2): guest-physical → host-physical translation, nested page faults,
guest A/D bits, and a guest in a slice of host RAM that runs exactly as on bare metal."""

from __future__ import annotations

import pytest
from toyvisor.cpu import Machine
from toyvisor.cpu.vt import ControlStructure, nested_translate
from toyvisor.isa import vt as V
from toyvisor.isa.spec import CR0_PG, PTE_A, PTE_D, PTE_P, PTE_PL_SHIFT, PTE_W
from toyvisor.tools.guest import load_guest
from vt_helpers import enter_and_run, guest_machine, nested_map

BASE = 0x40000  # the guest's slice of host RAM
SIZE = 0x20000
ROOT = 0xC0000  # the nested page directory (host-physical)
FLAGS = PTE_P | PTE_W | (3 << PTE_PL_SHIFT)


def nested_guest(source, *, size=SIZE, read_only=(), **guest):
    """A guest assembled at guest-physical 0x1000, copied into the slice at BASE."""
    machine, vmcs, rec = guest_machine(source, origin=0x1000, nested_root=ROOT,
                                       memory_size=1 << 20, **{"r15": 0x8000, **guest})
    memory = machine.memory
    memory.write(BASE, memory.read(0, 0x8000))  # the image, now at its guest-physical place
    memory.write(0x1000, bytes(0x4000))  # the host copy is gone: every access must translate
    nested_map(memory, ROOT, BASE, size, read_only=read_only)
    return machine, vmcs, rec


def test_guest_physical_addresses_are_translated_with_guest_paging_off():
    machine, vmcs, rec = nested_guest("li r1, 0x5000\nli r2, 0xCAFE\nst [r1], r2\nvmcall")
    enter_and_run(machine)
    assert rec.first.reason == "vmcall"
    assert machine.memory.read32(BASE + 0x5000) == 0xCAFE
    assert machine.memory.read32(0x5000) == 0


def test_nested_miss_exits_with_the_guest_physical_address():
    machine, vmcs, rec = nested_guest("li r1, 0x30004\nld r2, [r1]\nvmcall")
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "nested-page-fault" and exit.guest_physical == 0x30004
    assert exit.qualification == V.NPF_READ and exit.pc == 0x1008  # the ld: restartable
    assert vmcs[V.EXIT_GUEST_PHYSICAL] == 0x30004


def test_write_to_a_nested_read_only_page_exits():
    machine, vmcs, rec = nested_guest("li r1, 0x6000\nld r3, [r1]\nst [r1], r3\nvmcall",
                                      read_only=(0x6000,))
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "nested-page-fault" and exit.pc == 0x100C
    assert exit.qualification == V.NPF_WRITE | V.NPF_PRESENT and exit.guest_physical == 0x6000


GUEST_PAGING = """
        li   r1, 0x400000
        li   r2, 0x1234
        st   [r1 + 8], r2       ; through the guest's page table: gpa 0x7008
        ld   r3, [r1 + 8]
        li   r4, 0x3000 + 4     ; the guest's PTE for 0x401000 (table at gpa 0x3000)
        li   r5, 0x6000 | 3 | 12
        st   [r4], r5           ; a guest page-table update: no exit
        li   r6, 0x401000
        invlpg r6
        ld   r7, [r6]
        vmcall
"""


def guest_page_tables(machine):
    """Guest tables in guest-physical memory: directory at gpa 0x2000, table at gpa 0x3000."""
    memory = machine.memory
    directory, table = BASE + 0x2000, BASE + 0x3000
    memory.write(directory, bytes(0x2000))
    memory.write32(directory + 4 * 1, 0x3000 | FLAGS)  # 0x400000..0x7FFFFF
    memory.write32(table + 0, 0x7000 | FLAGS)  # 0x400000 → gpa 0x7000
    memory.write32(directory + 0, 0x4000 | FLAGS)  # 0..0x3FFFFF identity (code, stack)
    for page in range(0, SIZE, 0x1000):
        memory.write32(BASE + 0x4000 + 4 * (page >> 12), page | FLAGS)


def test_guest_paging_through_nested_paging_with_guest_ad_bits_and_no_exit_on_pte_write():
    machine, vmcs, rec = nested_guest(GUEST_PAGING, cr0=CR0_PG, cr3=0x2000,
                                      controls=V.EXIT_HLT)
    guest_page_tables(machine)
    machine.memory.write32(BASE + 0x6000, 0x5678)
    enter_and_run(machine)
    g = vmcs.guest_state()
    memory = machine.memory
    assert rec.first.reason == "vmcall" and machine.cpu.vm_exits == {"vmcall": 1}
    assert memory.read32(BASE + 0x7008) == 0x1234 and g["r3"] == 0x1234
    assert g["r7"] == 0x5678  # the updated guest PTE took effect after invlpg
    pte = memory.read32(BASE + 0x3000)
    assert pte & PTE_A and pte & PTE_D  # set by the walk, in guest memory
    assert memory.read32(BASE + 0x2000 + 4) & PTE_A
    assert not memory.read32(BASE + 0x3000 + 4) & PTE_D  # only read: accessed, not dirty
    assert memory.read32(BASE + 0x3000 + 4) & PTE_A


def test_nested_fault_on_the_guest_walk_reports_the_table_access():
    machine, vmcs, rec = nested_guest("li r1, 0x400000\nld r2, [r1]\nvmcall", cr0=CR0_PG,
                                      cr3=0x2000)
    guest_page_tables(machine)
    vmcs.set_guest(cr3=0x50000)  # the guest's directory lies outside its memory
    # (code fetch walks first: the exit is on the fetch's directory read)
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "nested-page-fault"
    assert exit.qualification == V.NPF_READ | V.NPF_WALK
    assert exit.guest_physical == 0x50000 + 0  # directory entry 0 (the code page's)


def test_nested_fault_while_delivering_an_event_records_it_for_reinjection():
    source = "start: vmcall\nhandler: vmcall\n.align 8\nidt: .space 8*0x40\n.word handler, GATE_P"
    machine, vmcs, rec = nested_guest(source, r15=0x30000)  # the stack is not mapped
    vmcs.set_guest(idtr=0x1008)
    vmcs.inject(0x40, "interrupt")
    enter_and_run(machine)
    exit = rec.first
    assert exit.reason == "nested-page-fault" and exit.vectoring == (0x40, 0, "interrupt")
    assert exit.guest_physical == 0x30000 - 4 and exit.qualification & V.NPF_WRITE
    assert vmcs[V.EXIT_VECTORING] == V.event_word(0x40, "interrupt")


def test_nested_translate_helper():
    machine = Machine(memory_size=1 << 20)
    nested_map(machine.memory, ROOT, BASE, SIZE, read_only=(0x2000,))
    assert nested_translate(machine.memory, ROOT, 0x1234) == (BASE + 0x1234, True)
    assert nested_translate(machine.memory, ROOT, 0x2010) == (BASE + 0x2010, False)
    assert nested_translate(machine.memory, ROOT, SIZE) is None


# -- a whole guest: non-root with nested paging ≡ bare metal ------------------------------------------

@pytest.mark.parametrize("name", ["guests/examples/pagefault.s", "guests/examples/syscall.s",
                                  "guests/examples/hello.s"])
def test_a_guest_in_a_slice_runs_exactly_as_on_bare_metal(name):
    guest = load_guest(name)
    size = 1 << 20
    bare = Machine(memory_size=size)
    bare.load(guest.image)
    native = bare.run(max_steps=200_000)

    base, root = size, 3 * size  # the slice [1 MiB, 2 MiB) of a 4 MiB host
    host = Machine(memory_size=4 * size)
    staging = Machine(memory_size=size)
    staging.load(guest.image)
    host.memory.write(base, bytes(staging.memory.data))
    nested_map(host.memory, root, base, size)
    vmcs = ControlStructure(host.memory, 2 * size).initialize()
    vmcs.set_guest(pc=guest.image.entry)
    vmcs[V.NESTED_CONTROL] = V.NESTED_ENABLE
    vmcs[V.NESTED_ROOT] = root
    cpu = host.cpu
    cpu.vm_enter(vmcs.address)  # no exit controls: devices and interrupts pass through
    virtual = host.run(max_steps=200_000)

    assert native.stop_reason == "halted" and virtual.stop_reason == "halted"
    for field in ("registers", "pc", "flags", "cpl", "console", "guest_instructions",
                  "by_cause", "ticks"):
        assert getattr(virtual, field) == getattr(native, field), field
    assert bytes(host.memory.data[base:base + size]) == bytes(bare.memory.data)
    assert cpu.nonroot and cpu.vm_exits == {} and cpu.vt.guest_traps == sum(
        native.by_cause.values())


# -- nested dirty bits (NESTED_DIRTY): live migration's dirty log in generation 2 ------------------

def _nested_dirty(memory, gpa):
    pde = memory.read32(ROOT + 4 * (gpa >> 22))
    return bool(memory.read32((pde & ~0xFFF) + 4 * ((gpa >> 12) & 0x3FF)) & PTE_D)


def test_nested_dirty_bits_mark_exactly_the_pages_written_with_guest_paging_on():
    machine, vmcs, rec = nested_guest(GUEST_PAGING, cr0=CR0_PG, cr3=0x2000,
                                      controls=V.EXIT_HLT)
    vmcs[V.NESTED_CONTROL] = vmcs[V.NESTED_CONTROL] | V.NESTED_DIRTY
    guest_page_tables(machine)
    machine.memory.write32(BASE + 0x6000, 0x5678)
    enter_and_run(machine)
    memory = machine.memory
    assert rec.first.reason == "vmcall" and vmcs.guest_state()["r7"] == 0x5678
    assert _nested_dirty(memory, 0x7000)  # the guest's store
    assert _nested_dirty(memory, 0x3000)  # its page-table store and the walk's A/D bits
    assert _nested_dirty(memory, 0x2000)  # the walk's A bit in the directory
    assert not _nested_dirty(memory, 0x6000)  # only read
    assert not _nested_dirty(memory, 0x1000)  # code: only fetched


def test_nested_dirty_bits_off_leave_the_nested_table_alone():
    machine, vmcs, rec = nested_guest("li r1, 0x5000\nli r2, 0xCAFE\nst [r1], r2\nvmcall")
    enter_and_run(machine)
    assert not _nested_dirty(machine.memory, 0x5000)
    machine, vmcs, rec = nested_guest("li r1, 0x5000\nld r3, [r1]\nli r2, 0xCAFE\nst [r1], r2\n"
                                      "vmcall")
    vmcs[V.NESTED_CONTROL] = vmcs[V.NESTED_CONTROL] | V.NESTED_DIRTY
    enter_and_run(machine)
    # read first (cached read-only), then written: the write is still seen
    assert machine.memory.read32(BASE + 0x5000) == 0xCAFE
    assert _nested_dirty(machine.memory, 0x5000) and not _nested_dirty(machine.memory, 0x4000)
