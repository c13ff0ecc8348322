"""A link that fails mid-migration, bad input, and the guests that do I/O."""

from __future__ import annotations

import attrs
import pytest

from migration_support import LINK, SLOW, dirty_guest, reference
from toyvisor.cpu.net import LinkParams
from toyvisor.tools.guest import load_guest
from toyvisor.vmm.migration.link import link_between
from toyvisor.vmm.migration import Link, MigrationError, migrate
from toyvisor.vmm.migration.session import Session, guest_state, unmigrated
from toyvisor.vmm.migration.methods import make_method


@pytest.mark.parametrize("method,fail_at", [("pre-copy", 30), ("pre-copy", 5_000),
                                            ("pre-copy", 41_000),
                                            ("stop-and-copy", 20_000), ("post-copy", 120)])
def test_a_link_failure_before_the_resume_leaves_the_vm_running_at_the_source(method, fail_at):
    link = attrs.evolve(LINK, fails_at=fail_at)
    result = migrate(dirty_guest(SLOW), "trap-emulate", method, link=link, at=20_000,
                     reference=reference(SLOW, "trap-emulate"))
    assert result.outcome == "aborted"
    assert result.stop_reason == "link failed"
    assert result.equivalent, result.divergence  # nothing lost: the run ends as if unmoved
    assert "commit" not in [p.name for p in result.phases]


def test_a_link_failure_after_a_post_copy_resume_loses_the_vm():
    link = attrs.evolve(LINK, fails_at=5_000)
    result = migrate(dirty_guest(SLOW), "trap-emulate", "post-copy", link=link, at=20_000,
                     reference=reference(SLOW, "trap-emulate"))
    assert result.outcome == "lost" and not result.equivalent


def test_bad_input_is_one_clear_error_before_anything_moves():
    guest = dirty_guest(SLOW)
    with pytest.raises(MigrationError, match="unknown migration method 'teleport'"):
        migrate(guest, "trap-emulate", "teleport")
    with pytest.raises(MigrationError, match="pre-copy: unknown variant"):
        migrate(guest, "trap-emulate", "pre-copy:kvm")
    with pytest.raises(MigrationError, match="bandwidth must be positive"):
        Link(0, 10)
    with pytest.raises(MigrationError, match="bandwidth must be positive"):
        Link(-5, 10)
    with pytest.raises(MigrationError, match="no room"):
        Session(guest, "trap-emulate", make_method("pre-copy"), dest_memory=(1 << 20) + 4096)
    with pytest.raises(MigrationError, match="keeps no dirty log"):
        migrate(guest, "native", "pre-copy")


def test_a_vm_that_stopped_before_the_migration_time_is_refused_and_left_alone():
    guest = attrs.evolve(dirty_guest("16 1 10"), max_steps=100_000)
    session = Session(guest, "trap-emulate", make_method("pre-copy"), link=LINK, at=90_000)
    with pytest.raises(MigrationError, match="before the migration time"):
        session.run()
    assert session.dest_vm is None
    assert guest_state(session.vm) == unmigrated(guest, "trap-emulate")[0]


@pytest.mark.parametrize("strategy,at", [("trap-emulate", 30_001), ("binary-translation", 57_777),
                                         ("hardware-assisted:1", 83_457),
                                         ("hardware-assisted:2", 110_003)])
def test_disk_io_console_and_interrupts_survive_every_method(strategy, at):
    guest = load_guest("guests/migration/io")
    ref = unmigrated(guest, strategy)
    for method in ("pre-copy", "post-copy", "stop-and-copy"):
        result = migrate(guest, strategy, method, link=Link(16, 20), at=at, reference=ref)
        assert result.equivalent, (method, at, result.divergence)
        assert "timer interrupts" in result.console


def test_minikernel_migrates_by_every_method_mid_run():
    guest = load_guest("minikernel")
    ref = unmigrated(guest, "trap-emulate")
    for method in ("pre-copy", "post-copy", "stop-and-copy"):
        result = migrate(guest, "trap-emulate", method, link=Link(1024, 20), at=30_000,
                         reference=ref)
        assert result.equivalent, (method, result.divergence)


def test_a_link_between_two_nodes_of_the_interconnect():
    # 4×4 torus, node 0 → node 10 = (2, 2): 4 hops of t_r = 4 ticks, 4 bytes per tick
    assert link_between("torus:16:0:10") == Link(4.0, 16)
    assert link_between("mesh:16:0:15") == Link(4.0, 24)  # 6 hops
    saf = LinkParams(switching="store-and-forward", bandwidth=8)
    flits = -(-(4096 + 8) // 8)
    assert link_between("mesh:16:0:15", saf) == Link(8.0, 6 * (4 + flits) - flits)
    for bad, message in [("torus:16:0", "KIND:NODES"), ("torus:16:0:99", "node 99 does not"),
                         ("blob:16:0:1", "unknown topology"), ("ring:8:3:3", "both node 3"),
                         ("ring:x:0:1", "whole numbers")]:
        with pytest.raises(MigrationError, match=message):
            link_between(bad)
