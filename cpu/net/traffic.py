"""Synthetic traffic on the network model alone: latency versus offered load.

Uniform random traffic: every tick each node starts a packet with probability rate / F (rate
in flits per node per tick, F the packet's flits) to a destination drawn uniformly from the
other nodes.  Packets made during the measurement window (after a warm-up) are followed until
they arrive; latency counts from creation (so source queueing is in it) to the tail's arrival.
A point is *saturated* when the network accepts less than 90 % of what was offered (drawn) in
the window, or when the
measured packets do not all arrive within a second window: latency there is unbounded and is
shown as such, never as a number.  Seeded: the same arguments give the same table.
"""

from __future__ import annotations

import random

import attrs

from .network import LinkParams, Network
from .topology import Topology, metrics

#: accepted / offered below this marks saturation
SATURATION_ACCEPTANCE = 0.9


@attrs.frozen
class LoadPoint:
    #: offered load, flits per node per tick
    offered: float
    #: accepted load over the measurement window, flits per node per tick
    accepted: float
    #: mean latency (ticks) of the measured packets; None when saturated
    latency: float | None
    packets: int
    saturated: bool
    flit_hops: int
    deadlock: str | None = None


def uniform_load(topology: Topology, params: LinkParams, rate: float, *, size: int = 32,
                 warmup: int = 300, window: int = 1000, seed: int = 1) -> LoadPoint:
    """One point of the curve: `rate` flits/node/tick of `size`-byte packets."""
    rng = random.Random(seed)
    net = Network(topology, params)
    n = topology.nodes
    flits = params.flits(size)
    chance = rate / flits
    end = warmup + window
    measured: set[int] = set()
    delivered_flits = 0
    for t in range(end):
        for src in range(n):
            if rng.random() < chance:
                dst = rng.randrange(n - 1)
                dst += dst >= src
                pid = net.inject(src, dst, size, at=t)
                if t >= warmup:
                    measured.add(pid)
        net.run_until(t + 1)
        if net.deadlock:
            break
    done_in_window = [d for d in net.results if warmup <= d.finished < end]
    delivered_flits = sum(d.flits for d in done_in_window)
    net.run_until(end + window)
    accepted = delivered_flits / (n * window)
    arrived = [d for d in net.results if d.id in measured and d.ok]
    # against what the draw actually offered in the window, not the nominal rate (noise)
    offered = len(measured) * flits / (n * window)
    saturated = (net.deadlock is not None or accepted < SATURATION_ACCEPTANCE * offered
                 or len(arrived) < len(measured))
    latency = None if saturated or not arrived else sum(d.latency for d in arrived) / len(arrived)
    return LoadPoint(rate, accepted, latency, len(measured), saturated, net.flit_hops,
                     net.deadlock)


def load_curve(topology: Topology, params: LinkParams, rates: tuple[float, ...], *,
               size: int = 32, warmup: int = 300, window: int = 1000,
               seed: int = 1) -> tuple[LoadPoint, ...]:
    """The curve over `rates` (ascending); it stops after the first saturated point."""
    points = []
    for rate in rates:
        point = uniform_load(topology, params, rate, size=size, warmup=warmup, window=window,
                             seed=seed)
        points.append(point)
        if point.saturated:
            break
    return tuple(points)


def zero_load_mean(topology: Topology, params: LinkParams, size: int) -> float:
    """The closed-form zero-load latency averaged over uniform traffic (mean hop count)."""
    m = metrics(topology)
    f, t_r = params.flits(size), params.router_delay
    h = m.mean_hops
    if params.switching == "store-and-forward":
        return h * (t_r + f)
    if params.switching == "circuit":
        return 3 * h * t_r + f
    return h * t_r + f
