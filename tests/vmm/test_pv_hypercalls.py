"""The paravirtual VMM: the hypercall table, domains, memory, events, grants, balloon, fast
system calls and an end-to-end guest (tests/vmm/pv_hello.s)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pv_support import call, pv_hello, scratch_va, system
from toyvisor.isa.spec import PTE_P, PTE_W
from toyvisor.vmm.paravirt import abi
from toyvisor.vmm.paravirt.abi import HypercallError
from toyvisor.vmm.paravirt.abi import (
    EBUSY,
    EFAULT,
    EINVAL,
    ENOSYS,
    EPERM,
    ESRCH,
    HOLE_PDE,
    PV_VMM_START,
    VIRQ_TIMER,
)
from toyvisor.vmm.paravirt.hypercalls import (
    HYPERCALLS,
    KINDS,
    reference_markdown,
    update_document,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "paravirtualization.md"


def test_the_generated_reference_in_the_document_is_current(tmp_path):
    copy = tmp_path / "doc.md"
    copy.write_text(DOC.read_text())
    assert not update_document(copy), "stale: run python -m toyvisor.vmm.paravirt.hypercalls"
    assert reference_markdown() in DOC.read_text()


def test_the_table_matches_the_abi_numbers():
    abi_doc = (DOC.parent / "paravirtual-abi.md").read_text()
    for h in HYPERCALLS:
        assert f"| {h.number} | `{h.name}` |" in abi_doc
    assert [h.number for h in HYPERCALLS] == list(range(17))
    for h in HYPERCALLS:
        for arg in h.args + tuple(a for c in h.commands for a in c.args):
            assert arg.kind in KINDS


def test_pv_hello_end_to_end_fast_syscalls_skip_the_vmm():
    from toyvisor.vmm.strategies import make_strategy

    strategy = make_strategy("paravirtual")
    result = strategy.run(pv_hello())
    assert result.console == "pv hello\n.....G bye\n"
    assert result.halted and result.resource_violations == ()
    causes = result.by_cause
    assert "vmm:int" in causes and causes["vmm:int"] == 1  # the int 0x82 from ring 3 only
    assert not any(k.startswith("int 0x80") for k in causes)  # 5 fast syscalls, no entry
    assert causes["hypercall:iret"] == 7 and causes["hypercall:console_io"] == 8
    assert result.events["hypercall"] == sum(v for k, v in causes.items()
                                             if k.startswith("hypercall:"))
    assert result.events["trap"] == 1
    assert result.vmm_entries == result.events["hypercall"] + result.events["trap"]


def test_start_of_day_layout():
    strategy, hv, (d0, d1) = system()
    mem = hv.machine.memory
    si = d0.start_info_pfn * 4096
    words = [d0.vm.memory.read32(si + 4 * i) for i in range(13)]
    assert words[0] == abi.START_INFO_MAGIC and words[1] == 0 and words[2] == 1
    assert words[3] == 16 and words[12] == PV_VMM_START
    assert d1.vm.memory.read32(d1.start_info_pfn * 4096 + 8) == 0
    vcpu = d0.vm.vcpu
    assert vcpu.cpl == 1 and vcpu.regs[1] == si and vcpu.regs[15] == 16 * 4096
    pd = vcpu.cr3
    assert strategy.frames.ftype[pd] == "page-directory"
    assert mem.read32(pd + 4 * HOLE_PDE) == d0.hole_table | PTE_P  # PL 0, read-only
    # page-table pages are mapped read-only, everything else writable
    for pfn, frame in enumerate(d0.p2m):
        pte = d0.system.frames.read(mem.read32(pd) & ~0xFFF, pfn)
        assert pte & ~0xFFF == frame
        assert bool(pte & PTE_W) == (frame not in strategy.frames.ftype
                                     and pfn != d0.start_info_pfn)
    assert d0.shared(abi.SH_UPCALL_MASK) == 1
    assert strategy.frames.check(strategy.domains.values()) == []


def test_dispatcher_errors():
    strategy, hv, (d0, d1) = system()
    assert call(d0, "set_timer_op", 0) == 0
    from toyvisor.vmm.paravirt.hypercalls import dispatch
    assert dispatch(d0, 99, (0,) * 5) == ENOSYS
    assert call(d1, "domctl", 3, scratch_va(d1), 4) == EPERM          # dom0 only
    assert call(d1, "physdev_op", 0, 0x10) == EPERM
    assert call(d0, "event_channel_op", 0, 77) == ESRCH
    assert call(d0, "event_channel_op", 3, 64) == EINVAL               # port range
    assert call(d0, "console_io", 0, 4, PV_VMM_START) == EFAULT        # the hole
    assert call(d0, "console_io", 9, 0, 0) == EINVAL                   # no such command


def test_mmu_update_validation():
    strategy, hv, (d0, d1) = system()
    table = strategy.frames
    pd = d0.cr3
    pt = hv.machine.memory.read32(pd) & ~0xFFF
    buf = scratch_va(d0)
    own = d0.p2m[10]
    foreign = d1.p2m[10]

    def update(ptr, val):
        d0.write_word(buf, ptr)
        d0.write_word(buf + 4, val)
        return call(d0, "mmu_update", buf, 1)

    assert update(pt + 4 * 12, own | PTE_P | PTE_W | 4) == 1            # own frame: fine
    assert update(pt + 4 * 12, foreign | PTE_P | 4) == EPERM            # not its frame
    assert update(pt + 4 * 12, pt | PTE_P | PTE_W | 4) == EPERM         # writable page table
    assert update(pt + 4 * 12, pt | PTE_P | 4) == 1                     # read-only: fine
    assert update(pd + 4 * HOLE_PDE, own | PTE_P) == EPERM              # the hole
    assert update(own + 8, 0) == EINVAL                                 # not a table
    assert update(pt + 4 * 13, own | PTE_P | PTE_W) == 1                # PL 0 asked ...
    assert table.read(pt, 13) >> 2 & 3 == 1                             # ... PL 1 written
    assert call(d0, "update_va_mapping", PV_VMM_START, 0, 0) == EFAULT  # va kind
    assert table.check(strategy.domains.values()) == []


def test_pin_and_baseptr_switch():
    strategy, hv, (d0, _) = system()
    table = strategy.frames
    new_pd, new_pt = d0.p2m[11], d0.p2m[12]
    # the frames must not be mapped writable to become tables
    assert call(d0, "mmuext_op", 0, new_pt >> 12) == EBUSY
    for pfn in (11, 12):
        assert call(d0, "update_va_mapping", pfn * 4096, d0.p2m[pfn] | PTE_P | 4, 1) == 0
    assert call(d0, "mmuext_op", 0, new_pt >> 12) == 0
    assert table.ftype[new_pt] == "page-table"
    assert call(d0, "update_va_mapping", 12 * 4096, new_pt | PTE_P | PTE_W | 4, 1) == EPERM
    # a directory mapping the old tables: copy entry 0 via the VMM, then switch to it
    hv.machine.memory.write32(new_pd, hv.machine.memory.read32(d0.cr3))
    assert call(d0, "mmuext_op", 1, new_pd >> 12) == 0
    assert hv.machine.memory.read32(new_pd + 4 * HOLE_PDE) == d0.hole_table | PTE_P
    old = d0.cr3
    assert call(d0, "mmuext_op", 3, new_pd >> 12) == 0 and d0.cr3 == new_pd
    assert table.ftype.get(old) is None  # no pin, no longer the base pointer
    assert call(d0, "mmuext_op", 2, new_pt >> 12) == 0
    assert table.check(strategy.domains.values()) == []


def test_events_interdomain_and_upcall():
    strategy, hv, (d0, d1) = system()
    p0 = call(d0, "event_channel_op", 0, 1)
    p1 = call(d1, "event_channel_op", 1, 0, p0)
    assert p0 > 0 and p1 > 0
    assert call(d1, "event_channel_op", 3, p1) == 0
    assert d0.pending_bits() >> p0 & 1 and d0.shared(abi.SH_UPCALL_PENDING) == 1
    # masked (upcall_mask = 1 at start of day): no upcall; unmasked with a callback: upcall
    assert not d0.maybe_upcall()
    call(d0, "set_callbacks", 0x100)
    d0.set_shared(abi.SH_UPCALL_MASK, 0)
    sp = d0.vm.vcpu.regs[15]
    assert d0.maybe_upcall()
    assert d0.vm.vcpu.pc == 0x100 and d0.vm.vcpu.regs[15] == sp - 20
    assert d0.shared(abi.SH_UPCALL_MASK) == 1
    assert call(d0, "event_channel_op", 4, p0) == 0
    assert d1.events.ports[p1][0] == "unbound"
    assert call(d1, "event_channel_op", 3, p1) == EINVAL


def test_timer_virq():
    strategy, hv, (d0, _) = system()
    port = call(d0, "event_channel_op", 2, VIRQ_TIMER)
    assert call(d0, "event_channel_op", 2, VIRQ_TIMER) == abi.EEXIST
    assert call(d0, "set_timer_op", 500) == 0
    hv.run(max_steps=2000)
    assert d0.pending_bits() >> port & 1
    assert d0.vm.devices.clock >= 500


def test_grants_map_unmap_end_access():
    strategy, hv, (d0, d1) = system()
    gref = call(d1, "grant_table_op", 0, 0, 10, 0)
    assert gref == 1
    va = 13 * 4096
    assert call(d0, "grant_table_op", 1, 1, gref, va) == EBUSY           # va already mapped
    assert call(d0, "update_va_mapping", va, 0, 1) == 0
    handle = call(d0, "grant_table_op", 1, 1, gref, va)
    assert handle == 0
    assert d0.read_word(va) == 0 and d0.translate(va, True) == d1.p2m[10]
    assert call(d1, "grant_table_op", 3, gref) == EBUSY                  # mapped
    assert call(d1, "domctl", 2, 0) == EPERM
    assert call(d0, "domctl", 2, 1) == EBUSY
    assert call(d1, "memory_op", 0, *_list(d1, [10]), 1) == EBUSY        # granted pfn
    assert call(d0, "grant_table_op", 1, 1, 2, va) == abi.ENOENT
    assert call(d0, "grant_table_op", 2, handle) == 0
    assert call(d1, "grant_table_op", 3, gref) == 0
    assert strategy.frames.check(strategy.domains.values()) == []
    assert call(d0, "domctl", 2, 1) == 0 and 1 not in strategy.domains


def _list(d, pfns):
    buf = scratch_va(d)
    for i, pfn in enumerate(pfns):
        d.write_word(buf + 4 * i, pfn)
    return (buf,)


def test_balloon_conserves_pages():
    strategy, hv, (d0, d1) = system(pool_pages=8)
    table = strategy.frames
    total = len(table.all_frames)
    assert call(d1, "memory_op", 0, *_list(d1, [12, 13]), 2) == 2
    assert d1.p2m[12] is None and d1.vm.memory.read32(d1.p2m_pfn * 4096 + 48) == abi.INVALID_MFN
    with pytest.raises(HypercallError):
        d1.translate(12 * 4096, False)
    assert len(table.pool) == 10
    assert call(d0, "domctl", 5, 0, 16) == 16       # dom0 is full already
    buf = scratch_va(d1)
    assert call(d1, "memory_op", 1, buf, 1) == 1 and d1.read_word(buf) == 12
    assert call(d0, "domctl", 5, 1, 10) == 10
    assert len(d1.frames()) == 10
    assert sum(len(d.frames()) for d in strategy.domains.values()) + len(table.pool) == total
    assert table.check(strategy.domains.values()) == []
    assert call(d1, "memory_op", 0, *_list(d1, [d1.start_info_pfn]), 1) == EPERM


def test_domctl_create_list_pause_destroy():
    strategy, hv, (d0, d1) = system(pool_pages=40)
    new = call(d0, "domctl", 4, 0)
    assert new == 2
    buf = scratch_va(d0)
    assert call(d0, "domctl", 3, buf, 8) == 3
    assert [d0.read_word(buf + 16 * i) for i in range(3)] == [0, 1, 2]
    assert call(d0, "domctl", 0, 2) == 0 and strategy.domains[2].state == "paused"
    assert call(d0, "domctl", 1, 2) == 0 and strategy.domains[2].state == "running"
    assert call(d0, "domctl", 2, 2) == 0
    assert call(d0, "domctl", 4, 5) == EINVAL
    assert strategy.frames.check(strategy.domains.values()) == []


def test_privileged_instruction_is_reflected_and_crashes_without_handler():
    from toyvisor.asm import assemble_source as assemble
    from toyvisor.tools.guest import Guest
    from toyvisor.vmm.strategies import make_strategy

    image = assemble("start: cli\n hlt\n").image
    result = make_strategy("paravirtual").run(
        Guest(name="priv", image=image, memory_size=0x10000, max_steps=1000))
    assert result.stop_reason == "shutdown:crash"
    assert result.by_cause["vmm:privileged"] == 1
    assert "no trap-table handler for vector 13" in result.fault_report


def test_time_slicing_two_domains_and_snapshot_restore():
    strategy, hv, (d0, d1) = system()
    hv.quantum = 300
    hv.run(max_steps=1500)
    assert d0.vm.guest_instructions > 0 and d1.vm.guest_instructions > 0
    assert d0.vm.events.get("world_switch", 0) >= 1
    snap = strategy.snapshot_domain(d1)
    hv.run(max_steps=700)
    def state(d):  # shared_info's system_time is real (machine) time: leave it out
        memory = bytearray(d.vm.memory.snapshot())
        shared = d.shared_info_pfn * 4096
        memory[shared:shared + 4096] = bytes(4096)
        return d.vm.vcpu.state(), bytes(memory), d.vm.guest_instructions, d.vm.devices.clock

    after = state(d1)
    strategy.restore_domain(d1, snap)
    assert state(d1) != after
    hv.run(max_steps=700)
    assert state(d1) == after  # d1 resumed from the snapshot and reached the same state
