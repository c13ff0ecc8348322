"""The qualitative facts of live migration (docs/migration.md), measured on the dirty-rate guest."""

from __future__ import annotations

import pytest

from migration_support import FAST, SLOW, run
from toyvisor.vmm.migration import PHASES
from toyvisor.vmm.migration.compress import parse_methods

STRATEGIES = ("trap-emulate", "binary-translation", "hardware-assisted:1", "hardware-assisted:2")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_method_is_equivalent_under_every_memory_virtualizing_strategy(strategy):
    for method in ("pre-copy", "post-copy", "stop-and-copy"):
        result = run(SLOW, method, strategy)
        assert result.outcome == "migrated"
        assert result.equivalent, (method, result.divergence)
        assert result.stale_pages == ()
        assert result.resource_violations == ()


def test_below_the_bandwidth_rounds_shrink_geometrically():
    result = run(SLOW, "pre-copy")
    live = [r for r in result.rounds if r.live]
    sent = [r.pages_sent for r in live] + [result.rounds[-1].pages_sent]
    assert sent[0] == result.memory_pages
    assert all(a > b for a, b in zip(sent, sent[1:]))
    # M·(d/b)^i with d/b = 1/4: each round about a quarter of the one before
    for i, pages in enumerate(sent):
        expected = result.memory_pages * 0.25 ** i
        assert 0.6 * expected <= pages <= 1.4 * expected, (i, pages, expected)


def test_below_the_bandwidth_pre_copy_downtime_is_a_small_fraction_of_stop_and_copy():
    pre, stop = run(SLOW, "pre-copy"), run(SLOW, "stop-and-copy")
    assert pre.downtime_ticks < 0.1 * stop.downtime_ticks
    assert pre.stop_reason == "fewer than 50 pages dirtied"


def test_at_the_bandwidth_pre_copy_stops_on_volume_and_its_downtime_nears_stop_and_copy():
    pre, stop = run(FAST, "pre-copy"), run(FAST, "stop-and-copy")
    assert pre.stop_reason == "more than 3x memory sent"
    assert pre.pages_sent > 3 * pre.memory_pages
    assert pre.downtime_ticks > 0.9 * stop.downtime_ticks
    qemu = run(FAST, "pre-copy:qemu")
    assert qemu.stop_reason.startswith("30 rounds")
    assert qemu.downtime_ticks > 0.9 * stop.downtime_ticks


def test_auto_converge_throttles_the_guest_until_pre_copy_converges():
    result, stop = run(FAST, "pre-copy:auto-converge"), run(FAST, "stop-and-copy")
    throttles = [r.throttle for r in result.rounds if r.live]
    assert throttles[0] == 0 and max(throttles) >= 0.2
    assert throttles == sorted(throttles)
    assert result.stop_reason == "fits the downtime limit"
    assert result.downtime_ticks < 0.1 * stop.downtime_ticks
    assert result.equivalent


def test_post_copy_sends_each_page_once_with_the_shortest_downtime_and_pays_in_faults():
    results = {m: run(SLOW, m) for m in ("pre-copy", "post-copy", "stop-and-copy")}
    post = results["post-copy"]
    assert post.pages_sent == post.memory_pages and post.max_sends_per_page == 1
    assert post.downtime_ticks < min(r.downtime_ticks for m, r in results.items()
                                     if m != "post-copy")
    assert post.network_faults > 0 and post.fault_stall_ticks > 0
    assert results["pre-copy"].max_sends_per_page > 1


def test_compression_cuts_the_bytes_on_zero_pages_and_small_changes():
    plain = run(SLOW, "pre-copy", at=200_000)
    for spec in ("zero", "xbzrle", "zlib", "all"):
        packed = run(SLOW, "pre-copy", at=200_000, compression=parse_methods(spec))
        assert packed.equivalent
        assert packed.wire_bytes < plain.wire_bytes, spec
        assert packed.bytes_saved == packed.raw_bytes - packed.wire_bytes > 0
    delta = run(SLOW, "pre-copy", at=200_000, compression=parse_methods("xbzrle"))
    assert dict(delta.pages_by_encoding).get("xbzrle", 0) > 0  # re-sent pages go as deltas


def test_the_six_steps_are_named_phases_in_order():
    for method in ("pre-copy", "stop-and-copy"):
        names = [p.name for p in run(SLOW, method).phases]
        assert [n for n in PHASES if n in names] == names
        assert set(names) >= set(PHASES) - {"pre-copy"}
    names = [p.name for p in run(SLOW, "post-copy").phases]
    assert names == ["choose-hosts", "init-container", "suspend-copy", "resume", "post-copy",
                     "commit"]


def test_dirty_logging_costs_vmm_entries_and_cycles_through_the_strategys_own_mechanism():
    shadow = run(SLOW, "pre-copy", "trap-emulate")
    assert shadow.dirty_log == "shadow write-protection" and shadow.dirty_log_faults > 0
    assert shadow.cycles > shadow.unmigrated_cycles
    nested = run(SLOW, "pre-copy", "hardware-assisted:2")
    assert nested.dirty_log == "nested-table dirty bits" and nested.dirty_log_faults == 0
    assert nested.cycles > nested.unmigrated_cycles
    assert run(SLOW, "stop-and-copy").dirty_log == ""
