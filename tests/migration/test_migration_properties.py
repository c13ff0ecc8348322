"""Properties: for generated workloads and migration times, the migrated VM ends exactly as the
unmigrated one, and no page is lost or left stale at the switch-over."""

from __future__ import annotations

import functools

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.tools.guest import load_guest
from toyvisor.vmm.migration import Link, MigrationError, migrate
from toyvisor.vmm.migration.session import unmigrated

STRATEGIES = ("trap-emulate", "binary-translation", "hardware-assisted:1", "hardware-assisted:2")
METHODS = ("pre-copy", "pre-copy:qemu", "pre-copy:auto-converge", "post-copy", "stop-and-copy")


@functools.cache
def _dirty():
    return load_guest("guests/migration/dirty")


@functools.cache
def _reference(params: str, strategy: str):
    return unmigrated(_guest(params), strategy)


@functools.cache
def _guest(params: str):
    return attrs.evolve(_dirty(), console_input=params.encode(), max_steps=400_000)


workloads = st.builds(lambda period, hot, writes: f"{period} {hot} {writes}",
                      st.integers(16, 600), st.integers(1, 496), st.integers(1, 3000))


@settings(max_examples=12)
@given(params=workloads, at=st.integers(0, 60_000), strategy=st.sampled_from(STRATEGIES),
       method=st.sampled_from(METHODS), bandwidth=st.sampled_from([16, 64, 256, 4096]),
       compress=st.sampled_from([frozenset(), frozenset({"zero", "xbzrle", "zlib"})]))
def test_a_migrated_vm_ends_as_the_unmigrated_one(params, at, strategy, method, bandwidth,
                                                    compress):
    guest = _guest(params)
    try:
        result = migrate(guest, strategy, method, link=Link(bandwidth, 10), at=at,
                         compression=compress, reference=_reference(params, strategy))
    except MigrationError as error:  # the workload halted before `at`: nothing to migrate
        assert "before the migration time" in str(error)
        return
    assert result.outcome == "migrated"
    assert result.stale_pages == ()  # no page lost or stale at the switch-over
    assert result.equivalent, result.divergence
    assert result.pages_sent >= result.memory_pages
    if method in ("post-copy", "stop-and-copy"):
        assert result.pages_sent == result.memory_pages and result.max_sends_per_page == 1


@functools.cache
def _io_reference(strategy: str):
    return unmigrated(load_guest("guests/migration/io"), strategy)


@settings(max_examples=8)
@given(at=st.integers(0, 130_000), strategy=st.sampled_from(STRATEGIES),
       method=st.sampled_from(METHODS), bandwidth=st.sampled_from([8, 64, 1024]),
       latency=st.integers(0, 200))
def test_io_in_flight_survives_a_migration_at_any_moment(at, strategy, method, bandwidth,
                                                          latency):
    result = migrate(load_guest("guests/migration/io"), strategy, method,
                     link=Link(bandwidth, latency), at=at, reference=_io_reference(strategy))
    assert result.outcome == "migrated" and result.stale_pages == ()
    assert result.equivalent, result.divergence
