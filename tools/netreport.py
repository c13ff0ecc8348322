"""Reports over the interconnect model: a topology's figures and the latency-vs-load table.

Pure functions returning values and text; `toyvisor cluster topology` and `toyvisor cluster
load` print them, docs/multicomputer.md shows them (tests regenerate and compare).
"""

from __future__ import annotations

import attrs

from toyvisor.cpu.net.network import SWITCHING, LinkParams, Network
from toyvisor.cpu.net.nic import WIRE_HEADER
from toyvisor.cpu.net.routing import regular_path
from toyvisor.cpu.net.topology import Metrics, Topology, metrics
from toyvisor.cpu.net.traffic import LoadPoint, load_curve


@attrs.frozen
class TopologyReport:
    topology: Topology
    metrics: Metrics
    #: the pair whose route is longest (a diameter pair under the topology's routing)
    far_pair: tuple[int, int]
    hops: int
    size: int
    #: switching → (closed form, measured) zero-load latency over `hops` hops
    latency: dict[str, tuple[int, int]]

    def to_dict(self) -> dict:
        m = self.metrics
        return {
            "topology": self.topology.name, "nodes": m.nodes, "switches": m.switches,
            "links": m.links, "degree": list(m.degree), "diameter": m.diameter,
            "mean_hops": round(m.mean_hops, 4), "bisection": m.bisection,
            "bisection_exact": m.bisection_exact, "far_pair": list(self.far_pair),
            "hops": self.hops, "bytes": self.size,
            "zero_load_latency": {k: {"closed_form": c, "measured": v}
                                  for k, (c, v) in self.latency.items()},
        }


def topology_report(topology: Topology, params: LinkParams, size: int) -> TopologyReport:
    """Figures by search, and the zero-load latency of a `size`-byte message (plus the wire
    header) between the farthest pair, by the closed form and measured on the model."""
    m = metrics(topology)
    n = topology.nodes
    far, hops = (0, 0), -1
    for s in range(min(n, 64)):
        for d in range(n):
            h = len(regular_path(topology, s, d)) - 1
            if h > hops:
                far, hops = (s, d), h
    latency = {}
    wire = size + WIRE_HEADER
    for switching in SWITCHING:
        p = attrs.evolve(params, switching=switching)
        net = Network(topology, p)
        net.inject(far[0], far[1], wire)
        net.drain()
        latency[switching] = (p.zero_load_latency(hops, wire), net.results[0].latency)
    return TopologyReport(topology, m, far, hops, size, latency)


def topology_text(report: TopologyReport, params: LinkParams) -> str:
    m = report.metrics
    bis = f"{m.bisection}" if m.bisection_exact else f"≤ {m.bisection} (halves cut; exhaustive up to 16 nodes)"
    lines = [
        f"{report.topology.name}: {m.nodes} nodes, {m.switches} switches, {m.links} links",
        f"  degree {m.degree[0]}" + (f"–{m.degree[1]}" if m.degree[1] != m.degree[0] else ""),
        f"  diameter {m.diameter}, mean distance {m.mean_hops:.3f} hops",
        f"  bisection width {bis}",
        f"  zero-load latency of {report.size} bytes (+{WIRE_HEADER} header) from node "
        f"{report.far_pair[0]} to {report.far_pair[1]}, H = {report.hops}, "
        f"t_r = {params.router_delay}, b = {params.bandwidth} B/tick:",
    ]
    forms = {"store-and-forward": "H·(t_r + L/b)", "cut-through": "H·t_r + L/b",
             "wormhole": "H·t_r + L/b", "circuit": "3·H·t_r + L/b"}
    for switching, (closed, measured) in report.latency.items():
        lines.append(f"    {switching:<18} {forms[switching]:<15} = {closed:>6}   measured "
                     f"{measured:>6}")
    return "\n".join(lines)


@attrs.frozen
class LoadTable:
    nodes: int
    switching: str
    size: int
    rates: tuple[float, ...]
    #: topology name → its points (stopping after the first saturated one)
    curves: dict[str, tuple[LoadPoint, ...]]

    def to_dict(self) -> dict:
        return {
            "nodes": self.nodes, "switching": self.switching, "bytes": self.size,
            "curves": {name: [attrs.asdict(p) for p in pts] for name, pts in self.curves.items()},
        }

    def saturation(self, name: str) -> float | None:
        return next((p.offered for p in self.curves[name] if p.saturated), None)


def load_table(topologies: tuple[Topology, ...], params: LinkParams, rates: tuple[float, ...],
               size: int = 32, warmup: int = 200, window: int = 600, seed: int = 1) -> LoadTable:
    curves = {t.name: load_curve(t, params, rates, size=size, warmup=warmup, window=window,
                                 seed=seed) for t in topologies}
    return LoadTable(topologies[0].nodes, params.switching, size, rates, curves)


def load_markdown(table: LoadTable) -> str:
    """Mean latency (ticks) by offered load (flits/node/tick); "sat." from saturation on."""
    names = list(table.curves)
    lines = ["| offered load | " + " | ".join(names) + " |",
             "| ---: | " + " | ".join("---:" for _ in names) + " |"]
    for i, rate in enumerate(table.rates):
        cells = []
        for name in names:
            pts = table.curves[name]
            if i < len(pts):
                p = pts[i]
                cells.append("sat." if p.saturated else f"{p.latency:.1f}")
            else:
                cells.append("sat.")
        if all(c == "sat." for c in cells) and i and all(
                len(table.curves[n]) <= i for n in names):
            break
        lines.append(f"| {rate:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
