"""Paravirtual live migration: dom0's daemon, log-dirty mode, canonicalized pages, a p2m that
changes, a guest that is told — and equivalence with a run that never moved."""

from __future__ import annotations

import functools
import json
import struct

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.isa.spec import PAGE_SIZE, PTE_FRAME, PTE_P, PTE_W
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.migration import Link, MigrationError, PVSession, migrate
from toyvisor.vmm.migration import pv_session
from toyvisor.vmm.migration.daemon import Dom0Daemon
from toyvisor.vmm.migration.methods import make_method
from toyvisor.vmm.migration.pv_session import build_host
from toyvisor.vmm.paravirt.abi import EINVAL, EPERM
from toyvisor.vmm.paravirt.hypercalls import BY_NAME, dispatch
from toyvisor.vmm.paravirt.memory import PD, PT
from toyvisor.vmm.paravirt.migrate import P2M, canonical_page, m2p_of, uncanonical_page

LINK = Link(64, 50)
SLOW = "256 400 2000"
SHADOW_OP = BY_NAME["shadow_op"].number


@functools.cache
def dom0():
    return load_guest("guests/migration/dom0")


@functools.cache
def pv_guest(params: str = SLOW, max_steps: int = 2_000_000):
    guest = load_guest("guests/migration/dirty")
    return attrs.evolve(guest, console_input=params.encode(), max_steps=max_steps)


@functools.cache
def reference(params: str = SLOW):
    session = PVSession(pv_guest(params), "paravirtual", make_method("stop-and-copy"),
                        dom0=dom0())
    return session.unmigrated_run()


def session(method: str, params: str = SLOW, *, link: Link = LINK, at: int = 20_000, **kw):
    return PVSession(pv_guest(params), "paravirtual", make_method(method), dom0=dom0(),
                     link=link, at=at, reference=reference(params), **kw)


@pytest.mark.parametrize("method", ["pre-copy", "pre-copy:qemu", "stop-and-copy"])
def test_a_migrated_domain_ends_as_if_it_never_moved_on_other_machine_frames(method):
    s = session(method)
    before = list(s.domain.p2m)
    result = s.run()
    assert result.outcome == "migrated" and result.equivalent, result.divergence
    assert result.stale_pages == () and result.resource_violations == ()
    assert [p.name for p in result.phases] == ["choose-hosts", "init-container", *(
        ["pre-copy"] if method.startswith("pre") else []), "suspend-copy", "commit", "resume"]
    after = s.dest_domain.p2m
    assert all(a != b for a, b in zip(before, after))  # every pfn on another machine frame
    assert result.remapped_frames == result.memory_pages == len(before)
    assert result.resume_value == 0
    assert result.console == "dirty: 2000 writes over 400 pages, checksum 0x0002a71b\n"


def test_the_guest_re_reads_its_machine_frames_when_told():
    s = session("pre-copy")
    at_a = s.domain.system.frames.read(s.domain.cr3, 0) & PTE_FRAME
    s.run()
    dest = s.dest_domain
    at_b = dest.system.frames.read(dest.cr3, 0) & PTE_FRAME
    assert at_b != at_a
    assert s.dest_vm.vcpu.regs[14] == at_b  # r14: its page table's machine address, at host B


def test_a_guest_not_told_it_moved_breaks(monkeypatch):
    # the negative control: resumed with "cancelled", the kernel keeps host A's machine address
    monkeypatch.setattr(pv_session, "RESUMED_NEW_DOMAIN", 1)
    result = session("pre-copy").run()
    assert not result.equivalent
    assert "dirty: mmu_update refused" in result.console


def test_pre_copy_rounds_shrink_and_cut_the_downtime():
    pre = session("pre-copy").run()
    stop = session("stop-and-copy").run()
    live = [r.pages_sent for r in pre.rounds if r.live]
    assert live == sorted(live, reverse=True) and len(live) >= 2
    assert pre.downtime_ticks * 5 < stop.downtime_ticks
    assert pre.dirty_log.startswith("log-dirty mode") and pre.dirty_log_faults > 0
    assert pre.cycles > pre.unmigrated_cycles  # the log's faults are priced


def test_above_the_bandwidth_pre_copy_stops_on_its_volume_rule():
    fast = "32 495 40000"
    pre = session("pre-copy", fast).run()
    stop = session("stop-and-copy", fast).run()
    assert pre.stop_reason == "more than 3x memory sent" and pre.equivalent
    assert pre.downtime_ticks * 10 > stop.downtime_ticks * 9


def test_log_dirty_mode_sees_the_guest_s_stores_and_the_page_table_updates_it_asked_for():
    hypervisor, d0, domain, _port = build_host(dom0(), pv_guest())
    hypervisor.run(max_steps=20_000)
    daemon = Dom0Daemon(d0, "A")
    daemon.enable_logdirty(domain.domid)
    hypervisor.run(max_steps=5_000)
    dirty = daemon.clean(domain.domid, len(domain.p2m))
    table_pfn = m2p_of(domain)[domain.system.frames.read(domain.cr3, 0) & PTE_FRAME]
    assert table_pfn in dirty  # written only by the VMM's mmu_update
    assert any(pfn >= 16 for pfn in dirty)  # the hot region, written by the guest
    assert domain.vm.vmm_causes["vmm:log-dirty"] > 0
    hypervisor.run(max_steps=0)
    assert daemon.clean(domain.domid, len(domain.p2m)) == set()  # cleaned: nothing new
    daemon.logdirty_off(domain.domid)
    hypervisor.run()
    assert domain.vm.console.startswith("dirty: 2000 writes")


def test_shadow_op_is_dom0_s_and_checks_its_arguments():
    hypervisor, d0, domain, _port = build_host(dom0(), pv_guest())
    assert dispatch(domain, SHADOW_OP, (0, 0)) == EPERM  # a domU may not
    assert "dom0 only" in domain.refusals.entries[-1].reason
    assert dispatch(d0, SHADOW_OP, (0, 0)) == EINVAL  # not on itself
    assert dispatch(d0, SHADOW_OP, (1, 1, d0.first_free_pfn * PAGE_SIZE, 1)) == EINVAL  # off
    assert dispatch(d0, SHADOW_OP, (0, 1)) == 0
    assert dispatch(d0, SHADOW_OP, (0, 1)) < 0  # already on
    assert dispatch(d0, SHADOW_OP, (1, 1, d0.first_free_pfn * PAGE_SIZE, 15)) == EINVAL
    assert dispatch(d0, SHADOW_OP, (2, 1)) == 0


def test_canonicalization_round_trips_tables_and_the_p2m():
    p2m = [0x200000 + 0x3000 * i for i in range(8)]
    m2p = {m: pfn for pfn, m in enumerate(p2m)}
    table = struct.pack("<1024I", *[(p2m[i % 8] | PTE_P | PTE_W) if i < 8 else 0
                                    for i in range(1024)])
    canonical = canonical_page(table, PT, m2p)
    assert struct.unpack_from("<I", canonical, 4)[0] == (1 << 12) | PTE_P | PTE_W
    other = [0x900000 + PAGE_SIZE * (7 - i) for i in range(8)]
    moved = uncanonical_page(canonical, PT, other)
    assert canonical_page(moved, PT, {m: p for p, m in enumerate(other)}) == canonical
    directory = struct.pack("<1024I", *([p2m[3] | PTE_P] + [0] * 1007 + [0x1234 | PTE_P] * 16))
    assert canonical_page(directory, PD, m2p)[-64:] == bytes(64)  # the VMM hole is not sent
    array = struct.pack("<1024I", *(p2m + [0xFFFFFFFF] * 1016))
    assert uncanonical_page(canonical_page(array, P2M, m2p), P2M, other)[:32] == \
        struct.pack("<8I", *other)


@pytest.mark.parametrize("options,message", [
    ({"domid": 7}, "has no domain 7"),
    ({"domid": 0}, "dom0 itself"),
    ({"caller": 1}, "-1 EPERM: domctl is for dom0 only"),
    ({"caller": 9}, "no domain 9 to run the daemon in"),
    ({"dest_memory": (1 << 20) + 64 * PAGE_SIZE + 40 * PAGE_SIZE}, "no room"),
])
def test_bad_input_is_refused_before_the_domain_runs(options, message):
    with pytest.raises(MigrationError, match=message):
        session("pre-copy", **options)


def test_a_kernel_that_cannot_suspend_or_has_no_port_is_one_clear_error():
    minikernel = load_guest("guests/minikernel")  # its port ignores the control channel
    with pytest.raises(MigrationError, match="did not answer the suspend request"):
        migrate(minikernel, "paravirtual", "stop-and-copy", dom0=dom0(), at=1_000)
    with pytest.raises(MigrationError, match="has no paravirtual port"):
        migrate(load_guest("guests/migration/io"), "paravirtual", "pre-copy", dom0=dom0())


def test_post_copy_is_refused_with_the_reason():
    with pytest.raises(MigrationError, match="post-copy cannot move a paravirtual domain"):
        migrate(pv_guest(), "paravirtual", "post-copy", dom0=dom0())
    with pytest.raises(MigrationError, match="needs the hosts' dom0"):
        migrate(pv_guest(), "paravirtual", "pre-copy")
    with pytest.raises(MigrationError, match="for a paravirtual domain only"):
        migrate(pv_guest(), "trap-emulate", "pre-copy", domid=1)


@pytest.mark.parametrize("fail_at", [5_000, 42_000])
def test_a_link_failure_leaves_the_domain_running_at_the_source(fail_at):
    result = session("pre-copy", link=attrs.evolve(LINK, fails_at=fail_at)).run()
    assert result.outcome == "aborted" and result.equivalent, result.divergence
    # 42000 is during the last copy: the domain had suspended and is told "cancelled"
    assert result.resume_value == (1 if fail_at == 42_000 else None)
    assert result.remapped_frames == 0


@settings(max_examples=8)
@given(period=st.integers(16, 400), hot=st.integers(1, 495), writes=st.integers(200, 1500),
       share=st.floats(0, 0.8), method=st.sampled_from(["pre-copy", "pre-copy:qemu",
                                                         "stop-and-copy"]),
       fail=st.one_of(st.none(), st.none(), st.integers(0, 60_000)))
def test_property_migrated_or_not_the_domain_ends_the_same(period, hot, writes, share, method,
                                                           fail):
    params = f"{period} {hot} {writes}"
    guest = pv_guest(params, max_steps=3_000_000)
    at = int(share * writes * period)  # a time inside the run (its writes alone take this long)
    link = attrs.evolve(LINK, fails_at=fail)
    result = PVSession(guest, "paravirtual", make_method(method), dom0=dom0(), link=link,
                       at=at).run()
    assert result.stale_pages == ()
    assert result.equivalent, result.divergence  # nothing lost, nothing stale
    if result.outcome == "migrated":
        assert result.remapped_frames == result.memory_pages  # the p2m changed
        assert result.resume_value == 0
    else:
        assert result.outcome == "aborted" and result.remapped_frames == 0


def _cli(*args):
    return CliRunner().invoke(main, ["migrate", "guests/migration/dirty", "--vmm",
                                     "paravirtual", *args])


def test_the_cli_migrates_a_domain_with_json_markdown_and_a_plot(tmp_path):
    result = _cli("--method", "pre-copy", "--method", "stop-and-copy", "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["migrations"]
    assert [r["equivalent"] for r in runs] == [True, True]
    assert runs[0]["remapped_frames"] == 512 and runs[0]["resume_value"] == 0
    assert runs[0]["dirty_log"].startswith("log-dirty")
    plot = tmp_path / "rounds.svg"
    result = _cli("--markdown", "--plot", str(plot))
    assert result.exit_code == 0 and "| round |" in result.output
    assert "p2m: 512 of 512 pfns on other machine frames" in result.output
    assert plot.read_text().startswith("<svg")


@pytest.mark.parametrize("args,message", [
    (["--domid", "4"], "host A has no domain 4"),
    (["--caller", "1"], "EPERM"),
    (["--dest-memory", str((1 << 20) + 80 * PAGE_SIZE)], "no room"),
    (["--bandwidth", "0"], "bandwidth must be positive"),
    (["--method", "teleport"], "unknown migration method 'teleport'"),
    (["--method", "post-copy"], "post-copy cannot move a paravirtual domain"),
])
def test_cli_bad_input_is_one_line_and_exit_1(args, message):
    result = _cli(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_domid_and_caller_belong_to_paravirtual_only():
    result = CliRunner().invoke(main, ["migrate", "guests/migration/dirty", "--domid", "1"])
    assert result.exit_code == 1 and "--vmm paravirtual" in result.output
