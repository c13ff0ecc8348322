"""`Link`: the network between the two hosts, on the migration's one deterministic virtual clock.

Time is counted in *ticks*, the unit of the guests' own clock (one tick = one guest instruction,
docs/machine.md): while the link carries a round of pages, the VM runs as many instructions at
the source as the round takes ticks.  A link has a bandwidth (bytes per tick) and a latency
(ticks from one end to the other) and may fail at a given tick (a fault to test).

It is a small value class on purpose: the multicomputer's interconnect (issue 14) can replace it
by anything with the same three members (`transfer_ticks`, `latency`, `fails_by`).  Until it
does, `link_between` derives one from the interconnect's parameters: the channel bandwidth and
the zero-load latency of the route between two of its nodes (`toyvisor.cpu.net`).
"""

from __future__ import annotations

import attrs

from toyvisor.cpu.net import LinkParams, NetworkError, build, regular_path
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import PAGE_SIZE


class MigrationError(ToyvisorError):
    """A migration that cannot be started: bad input (no such method, no room at the
    destination, a bandwidth that is not positive, ...).  The source VM is untouched."""


class LinkFailure(Exception):
    """The link went down at `tick` (raised inside a migration, handled by the session)."""

    def __init__(self, tick: int) -> None:
        super().__init__(f"the link failed at tick {tick}")
        self.tick = tick


def _positive(instance, attribute, value) -> None:
    if not value > 0:
        raise MigrationError(f"the link's {attribute.name} must be positive (got {value})")


def _not_negative(instance, attribute, value) -> None:
    if value < 0:
        raise MigrationError(f"the link's {attribute.name} must not be negative (got {value})")


@attrs.frozen
class Link:
    """A point-to-point link: `bandwidth` bytes per tick, `latency` ticks one way."""

    bandwidth: float = attrs.field(default=64.0, validator=_positive)
    latency: int = attrs.field(default=50, validator=_not_negative)
    #: the tick (on the migration's clock) at which the link goes down for good, or None
    fails_at: int | None = None

    def transfer_ticks(self, nbytes: int) -> int:
        """Ticks the link is busy sending `nbytes` (latency not included)."""
        return -(-int(nbytes) * 1000 // int(self.bandwidth * 1000)) if nbytes else 0

    def fails_by(self, tick: int) -> bool:
        """Whether the link is down at `tick`."""
        return self.fails_at is not None and tick >= self.fails_at


def link_between(spec: str, params: LinkParams | None = None) -> Link:
    """``"torus:16:0:10"`` (topology, nodes, source node, destination node) → the `Link` a page
    stream between those two nodes sees at zero load: `params`' channel bandwidth, and as latency
    the route's zero-load latency for one page less the page's own transfer (wormhole and
    cut-through: hops × t_r; store-and-forward pays each hop in full; circuit switching its probe
    and acknowledgement too).  A `MigrationError` for a malformed spec or a node that does not
    exist."""
    params = params or LinkParams()
    parts = spec.split(":")
    if len(parts) != 4:
        raise MigrationError(f"--network wants KIND:NODES:SOURCE:DESTINATION (got '{spec}')")
    kind, *numbers = parts
    try:
        nodes, src, dst = (int(n) for n in numbers)
    except ValueError:
        raise MigrationError(f"--network: nodes, source and destination are whole numbers "
                             f"(got '{spec}')") from None
    try:
        topology = build(kind, nodes)
        for node in (src, dst):
            topology.check_node(node)
    except NetworkError as error:
        raise MigrationError(f"--network: {error}") from None
    if src == dst:
        raise MigrationError(f"--network: source and destination are both node {src}")
    hops = len(regular_path(topology, src, dst)) - 1
    page = PAGE_SIZE + 8
    latency = params.zero_load_latency(hops, page) - params.flits(page)
    return Link(float(params.bandwidth), latency)


def parse_size(text: str, what: str) -> float:
    """``"64"``, ``"4K"``, ``"1.5M"`` → a number (K = 1024, M = 1024²); a `MigrationError` for
    anything else, or for a value that is not positive."""
    spelled = text.strip()
    factor = 1
    if spelled[-1:].upper() in ("K", "M"):
        factor = 1024 if spelled[-1].upper() == "K" else 1 << 20
        spelled = spelled[:-1]
    try:
        value = float(spelled) * factor
    except ValueError:
        raise MigrationError(f"{what} must be a number (optionally with K or M), not '{text}'") \
            from None
    if not value > 0 or value != value or value == float("inf"):
        raise MigrationError(f"{what} must be positive (got '{text}')")
    return value


__all__ = ["Link", "LinkFailure", "MigrationError", "link_between", "parse_size"]
