"""Shared workloads of the migration tests: small, so each migration takes a fraction of a
second."""

from __future__ import annotations

import functools

import attrs

from toyvisor.tools.guest import load_guest
from toyvisor.vmm.migration import Link, migrate
from toyvisor.vmm.migration.session import unmigrated

LINK = Link(64, 50)            # one page per 64 ticks
AT = 20_000

#: PERIOD HOT WRITES: 16 bytes/tick (a quarter of the bandwidth) over 400 pages
SLOW = "256 400 2000"
#: 128 bytes/tick (twice the bandwidth) over the whole hot region
FAST = "32 496 40000"


@functools.cache
def dirty_guest(params: str, max_steps: int = 3_000_000):
    guest = load_guest("guests/migration/dirty")
    return attrs.evolve(guest, console_input=params.encode(), max_steps=max_steps)


@functools.cache
def reference(params: str, strategy: str):
    return unmigrated(dirty_guest(params), strategy)


@functools.cache
def run(params: str, method: str, strategy: str = "trap-emulate", at: int = AT,
        compression: frozenset = frozenset(), link: Link = LINK):
    return migrate(dirty_guest(params), strategy, method, link=link, at=at,
                   compression=compression, reference=reference(params, strategy))
