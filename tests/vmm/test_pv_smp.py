"""Paravirtual SMP domains (docs/paravirtual-abi.md, "Several vCPUs"): vcpu_op bring-up and its
validation, IPI event channels bound to a vCPU, per-vCPU timers and vcpu_info, the shootdown
hypercalls, and guests/pvsmp against the bare multiprocessor's smpkernel."""

from __future__ import annotations

import re
from functools import lru_cache

import pytest
from pv_support import call, scratch_va, spin_guest
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.paravirt import abi
from toyvisor.vmm.paravirt.abi import (
    EEXIST,
    EFAULT,
    EINVAL,
    ENOENT,
    PV_VMM_START,
    VI_UPCALL_PENDING,
    VIRQ_TIMER,
)
from toyvisor.vmm.paravirt.vcpus import vcpu_info_offset
from toyvisor.vmm.strategies import make_strategy
from toyvisor.vmm.vm import VMError

VCPU_OP, EVTCHN, MMUEXT = "vcpu_op", "event_channel_op", "mmuext_op"
INITIALISE, UP, DOWN, IS_UP, SET_TIMER, STOP_TIMER = range(6)
BIND_IPI, BIND_VCPU = 6, 7


def smp_domain(vcpus: int = 4):
    strategy = make_strategy("paravirtual")
    hv = Hypervisor(strategy, memory_size=(1 << 20) + 2 * 0x10000 + 32 * 4096)
    d0 = strategy.create_domain(spin_guest("d0"), privileged=True, vcpus=vcpus)
    d1 = strategy.create_domain(spin_guest("d1"))
    return strategy, hv, d0, d1


def context(domain, pc=0x100, sp=0x8000, kernel_sp=0x8000, pd=None, r1=7, flags=0) -> int:
    """Write an initial vCPU context to the domain's scratch page; its virtual address."""
    va = scratch_va(domain)
    pd = domain.cr3 >> 12 if pd is None else pd
    for i, word in enumerate((pc, sp, kernel_sp, pd, r1, flags)):
        domain.write_word(va + 4 * i, word)
    return va


def last_refusal(domain) -> str:
    return domain.refusals.entries[-1].line().split("] ", 1)[1]


def test_a_domain_has_its_vcpus_with_only_vcpu_0_running():
    strategy, hv, d0, d1 = smp_domain(4)
    assert [vm.vcpu_id for vm in d0.vcpus] == [0, 1, 2, 3] and len(d1.vcpus) == 1
    assert d0.vm is d0.vcpus[0] and d0.vcpus[0].state == "runnable"
    assert all(vm.state == "created" for vm in d0.vcpus[1:])
    si = d0.start_info_pfn * 4096
    assert d0.vm.memory.read32(si + abi.SI_NR_VCPUS) == 4
    assert all(d0.shared(vcpu_info_offset(i, abi.VI_UPCALL_MASK)) == 1 for i in range(4))
    assert [call(d0, VCPU_OP, IS_UP, i) for i in range(4)] == [1, 0, 0, 0]
    with pytest.raises(VMError, match="1 to 16 vCPUs, not 17"):
        strategy.create_domain(spin_guest("big"), vcpus=17)


def test_initialise_then_up_starts_a_vcpu_at_its_context():
    strategy, hv, d0, _ = smp_domain(2)
    pd = d0.cr3
    references = strategy.frames.tcount[pd]
    assert call(d0, VCPU_OP, INITIALISE, 1, context(d0, pc=0x140, sp=0x9000, r1=1)) == 0
    v1 = d0.vcpus[1]
    assert (v1.vcpu.pc, v1.vcpu.regs[15], v1.vcpu.regs[1], v1.vcpu.cpl, v1.vcpu.cr3) == \
        (0x140, 0x9000, 1, 1, pd)
    assert strategy.frames.tcount[pd] == references + 1  # the vCPU holds its directory
    assert v1.state == "created"
    assert call(d0, VCPU_OP, UP, 1) == 0 and v1.state == "runnable"
    assert call(d0, VCPU_OP, IS_UP, 1) == 1
    assert call(d0, VCPU_OP, UP, 1) == 0                         # already up: nothing to do
    assert call(d0, VCPU_OP, DOWN, 1) == 0 and v1.state == "created"
    assert call(d0, VCPU_OP, UP, 1) == 0 and v1.vcpu.pc == 0x140  # its context was kept
    assert d0.refusals.total == 0


@pytest.mark.parametrize("args, code, reason", [
    ((INITIALISE, 4, 0), ENOENT, "no vCPU 4 (the domain has 4)"),
    ((UP, 9), ENOENT, "no vCPU 9"),
    ((UP, 2), EINVAL, "vCPU 2 has no context (initialise it)"),
    ((DOWN, 0), EINVAL, "vCPU 0 cannot go down"),
    ((INITIALISE, 1, PV_VMM_START), EFAULT, "in the VMM hole"),
    ((SET_TIMER, 1, 500), EINVAL, "vCPU 0 cannot set vCPU 1's timer"),
    ((SET_TIMER, 0, 0), EINVAL, "deadline 0"),
    ((STOP_TIMER, 3), EINVAL, "vCPU 0 cannot set vCPU 3's timer"),
    ((9, 0), EINVAL, "vcpu_op has no command 9"),
])
def test_vcpu_op_refusals_are_errno_codes_logged_with_their_reason(args, code, reason):
    _, _, d0, _ = smp_domain(4)
    assert call(d0, VCPU_OP, *args) == code
    line = last_refusal(d0)
    assert line.startswith("d0 vcpu_op") and abi.ERRORS[code] in line and reason in line


@pytest.mark.parametrize("field, value, reason", [
    ("pc", PV_VMM_START, "context pc 0xfc000000 is in the VMM hole"),
    ("sp", PV_VMM_START + 4, "context sp 0xfc000004 is in the VMM hole"),
    ("flags", 1, "context flags 0x1 (must be 0)"),
    ("pd", 0xFFFFF, "is not the domain's"),
])
def test_a_bad_context_is_refused_and_changes_nothing(field, value, reason):
    strategy, _, d0, d1 = smp_domain(2)
    if field == "pd" and value == 0xFFFFF:
        value = d1.cr3 >> 12  # another domain's directory
    va = context(d0, **{field: value})
    before = d0.vcpus[1].vcpu.state()
    assert call(d0, VCPU_OP, INITIALISE, 1, va) == EINVAL
    assert reason in last_refusal(d0) and "-22 EINVAL" in last_refusal(d0)
    assert d0.vcpus[1].vcpu.state() == before and not d0.vcpus[1].initialised
    assert call(d0, VCPU_OP, UP, 1) == EINVAL


def test_a_context_directory_that_is_not_a_directory_is_refused():
    strategy, _, d0, _ = smp_domain(2)
    plain = d0.p2m[d0.first_free_pfn + 1] >> 12  # an ordinary page, mapped writable
    assert call(d0, VCPU_OP, INITIALISE, 1, context(d0, pd=plain)) < 0
    assert not d0.vcpus[1].initialised


def test_a_second_initialise_is_eexist():
    _, _, d0, _ = smp_domain(2)
    va = context(d0)
    assert call(d0, VCPU_OP, INITIALISE, 1, va) == 0
    assert call(d0, VCPU_OP, INITIALISE, 1, va) == EEXIST
    assert "vCPU 1 is already initialised" in last_refusal(d0)
    assert call(d0, VCPU_OP, INITIALISE, 0, va) == EEXIST  # vCPU 0: the builder's context


def test_an_ipi_port_raises_its_vcpu_and_only_that_one():
    _, _, d0, _ = smp_domain(4)
    port = call(d0, EVTCHN, BIND_IPI, 2)
    assert port > 0 and d0.events.ports[port][0] == "ipi"
    d0.vcpus[2].blocked = True
    assert call(d0, EVTCHN, 3, port) == 0                                # send
    assert d0.shared(vcpu_info_offset(2, VI_UPCALL_PENDING)) == 1
    assert d0.shared(vcpu_info_offset(0, VI_UPCALL_PENDING)) == 0
    assert not d0.vcpus[2].blocked                                      # woken
    assert not d0.deliverable_events()                                  # not for vCPU 0
    d0.vm = d0.vcpus[2]
    assert d0.deliverable_events()
    d0.vm = d0.vcpus[0]
    assert call(d0, EVTCHN, BIND_IPI, 4) == ENOENT


def test_bind_vcpu_moves_a_port_but_not_a_per_vcpu_virq():
    _, _, d0, _ = smp_domain(2)
    ipi = call(d0, EVTCHN, BIND_IPI, 0)
    timer = call(d0, EVTCHN, 2, VIRQ_TIMER)
    assert call(d0, EVTCHN, BIND_VCPU, ipi, 1) == 0 and d0.events.notify[ipi] == 1
    assert call(d0, EVTCHN, BIND_VCPU, timer, 1) == EINVAL
    assert "is a per-vCPU VIRQ" in last_refusal(d0)
    assert call(d0, EVTCHN, BIND_VCPU, ipi, 2) == ENOENT


def test_virq_timer_is_per_vcpu():
    _, _, d0, _ = smp_domain(2)
    p0 = call(d0, EVTCHN, 2, VIRQ_TIMER)
    assert call(d0, EVTCHN, 2, VIRQ_TIMER) == EEXIST                    # once per vCPU
    d0.vm = d0.vcpus[1]
    p1 = call(d0, EVTCHN, 2, VIRQ_TIMER)
    assert p1 > 0 and p1 != p0 and d0.events.notify[p1] == 1
    assert call(d0, VCPU_OP, SET_TIMER, 1, 1234) == 0                   # its own timer
    assert d0.vcpus[1].devices.platform.timer.deadline == 1234
    assert d0.vcpus[0].devices.platform.timer.deadline is None
    d0.events.raise_virq(VIRQ_TIMER, 1)
    assert d0.pending_bits() >> p1 & 1 and not d0.pending_bits() >> p0 & 1
    assert call(d0, VCPU_OP, STOP_TIMER, 1) == 0
    assert d0.vcpus[1].devices.platform.timer.deadline is None


def test_shootdown_hypercalls_flush_the_named_vcpus_only():
    _, hv, d0, _ = smp_domain(4)
    before = d0.vm.events.get("tlb_flush", 0)
    assert call(d0, MMUEXT, 7, 0x3000, 0b1010) == 0                     # invlpg_multi
    assert [vm.flush_pending for vm in d0.vcpus] == [False, True, False, True]
    assert call(d0, MMUEXT, 6, 0b0100) == 0                             # tlb_flush_multi
    assert d0.vcpus[2].flush_pending
    assert d0.vm.events["tlb_flush"] == before + 3                       # one per target
    assert call(d0, MMUEXT, 6, 0b10000) == EINVAL
    assert "names vCPUs beyond the domain's 4" in last_refusal(d0)
    assert call(d0, MMUEXT, 7, PV_VMM_START, 1) == EFAULT


# -- guests/pvsmp ---------------------------------------------------------------------------------

RACY = re.compile(r"(?<=unlocked counter: )\d+ \(\d+ updates lost\)")


@lru_cache(maxsize=None)
def pvsmp_run(cpus: int, pcpus: int):
    return make_strategy("paravirtual").run(load_guest("guests/pvsmp"), cpus=cpus, pcpus=pcpus)


@lru_cache(maxsize=None)
def native_console(cpus: int) -> str:
    """smpkernel on the bare multiprocessor of `cpus` CPUs."""
    from toyvisor.cpu.machine import Machine

    guest = load_guest("guests/smpkernel")
    machine = Machine(memory_size=guest.memory_size, cpus=cpus, interleave=guest.interleave)
    machine.load(guest.image)
    return machine.run(max_steps=guest.max_steps).console


@pytest.mark.parametrize("cpus, pcpus", [(4, 4), (4, 1), (2, 2)])
def test_pvsmp_gives_smpkernels_answers_on_any_number_of_physical_cpus(cpus, pcpus):
    result = pvsmp_run(cpus, pcpus)
    assert result.halted and result.resource_violations == () and result.refusals == ()
    assert RACY.sub("*", result.console) == RACY.sub("*", native_console(cpus))
    assert f"[cpu {cpus - 1}] online" in result.console


def test_pvsmp_brings_up_its_vcpus_by_hypercall_and_shoots_down_with_one():
    result = pvsmp_run(4, 4)
    causes = result.by_cause
    assert causes["hypercall:mmuext_op"] == 1          # invlpg_multi: no shootdown IPI
    assert causes["hypercall:event_channel_op"] == 4 * 2 + 3  # timer + IPI ports, 3 reschedules
    assert causes["hypercall:vcpu_op"] >= 2 * 3         # initialise + up of vCPUs 1..3, timers
    assert "reschedule IPIs taken: 3, TLB shootdowns: 1" in result.console
    assert not any(k.startswith("ipi") for k in causes)  # event channels, never a vector


def test_rdpid_in_a_pv_vcpu_gives_its_vcpu_number():
    # the kernel crashes with "rdpid disagrees" unless rdpid = the number in its context
    assert "disagrees" not in pvsmp_run(2, 2).console and pvsmp_run(2, 2).halted


def test_a_vmm_that_skips_the_shootdown_leaves_stale_translations_the_guest_sees(monkeypatch):
    """With each vCPU on a physical CPU of its own, a vCPU stays loaded (its real TLB too): if
    invlpg_multi did nothing, threads would read the old generation after the remap."""
    from toyvisor.vmm.strategies.paravirtual import Paravirtual

    monkeypatch.setattr(Paravirtual, "flush_vcpu", lambda self, vm, va: None)
    result = make_strategy("paravirtual").run(load_guest("guests/pvsmp"), cpus=4, pcpus=4)
    after = re.search(r"after the TLB shootdown: (\d+) at generation 1", result.console)
    assert int(after.group(1)) > 0


def test_run_guest_judges_the_port_on_smpkernels_outcome():
    from toyvisor.vmm import run_guest

    result = run_guest(load_guest("guests/pvsmp"), "paravirtual", pcpus=2)
    assert result.equivalent and result.equivalence_basis.startswith("SMP outcome (4 vCPUs)")
    assert (result.vcpus, result.pcpus) == (4, 2)


@pytest.mark.parametrize("args, message", [
    (["--cpus", "17"], "error: a paravirtual domain has 1 to 16 vCPUs, not 17"),
    (["--cpus", "2", "--pcpus", "0"],
     "error: the number of physical CPUs must be an integer from 1 to 64, not 0"),
])
def test_bad_smp_input_at_the_cli_is_one_line_and_exit_1(args, message):
    from click.testing import CliRunner
    from toyvisor.tools.cli import main

    result = CliRunner().invoke(main, ["run", "guests/pvsmp", "--vmm", "paravirtual", *args])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [message]


def test_the_ipi_shootdown_port_gives_the_same_answers_with_ipis_and_one_invlpg_each():
    import attrs
    from toyvisor.asm import assemble_file

    guest = load_guest("guests/pvsmp")
    image = assemble_file("guests/pvsmp/kernel_ipi.s", include_paths=("guests/pvsmp",)).image
    by_ipi = make_strategy("paravirtual").run(attrs.evolve(guest, pv_image=image), pcpus=4)
    by_hypercall = pvsmp_run(4, 4)
    assert by_ipi.halted and RACY.sub("*", by_ipi.console) == RACY.sub("*", by_hypercall.console)
    ipi, hyp = by_ipi.by_cause, by_hypercall.by_cause
    assert hyp["hypercall:mmuext_op"] == 1 and ipi["hypercall:mmuext_op"] == 3
    assert ipi["hypercall:event_channel_op"] - hyp["hypercall:event_channel_op"] == 4 + 3


def _pvsmp_next_to_a_victim():
    strategy = make_strategy("paravirtual")
    guest = load_guest("guests/pvsmp")
    hv = Hypervisor(strategy, memory_size=(1 << 20) + 2 * guest.memory_size + 0x20000, pcpus=2)
    domain = strategy.create_domain(guest, privileged=True, vcpus=2)
    victim = strategy.create_domain(spin_guest("victim"))
    return hv, domain, victim


def test_an_smp_domain_next_to_another_touches_only_its_own_frames():
    hv, domain, victim = _pvsmp_next_to_a_victim()
    hv.run()
    assert domain.boot_vm.stop_reason == "halted" and "all threads done" in domain.boot_vm.console
    assert hv.violations == []
    assert all(hv.resource_violations(vm) == [] for vm in (*domain.vcpus, victim.vm))


def test_a_vcpu_started_on_another_domains_directory_is_caught_by_the_audit():
    """A VMM bug: vcpu_op initialise gives the vCPU the victim's directory instead of the one
    it validated (the audit sees the vCPU's first fetch land in the victim's frames)."""
    from toyvisor.vmm.paravirt import hypercalls, vcpus

    hv, domain, victim = _pvsmp_next_to_a_victim()

    def buggy(d, target, ctx):
        result = vcpus.initialise(d, target, ctx)
        target.vcpu.cr3 = victim.cr3
        return result

    row = hypercalls.BY_NAME["vcpu_op"].command(0)
    object.__setattr__(row, "handler", buggy)  # the table's rows are frozen: this test's only
    try:
        hv.run()
    finally:
        object.__setattr__(row, "handler", vcpus.initialise)
    offender = domain.vcpus[1].name
    assert any(v.startswith(f"{offender}: read") for v in hv.violations), hv.violations
