"""Reports over the interconnect model: a topology's figures and the latency-vs-load table.

Pure functions returning values and text; `toyvisor cluster topology` and `toyvisor cluster
load` print them.  The tables of docs/multicomputer.md are the ``*_markdown`` functions at the
end, which toyvisor.tools.docgen's TABLES names (tests/test_docs.py regenerates and compares).
"""

from __future__ import annotations

import functools
from pathlib import Path

import attrs

from toyvisor.cpu.net.network import SWITCHING, LinkParams, Network
from toyvisor.cpu.net.nic import WIRE_HEADER
from toyvisor.cpu.net.routing import regular_path
from toyvisor.cpu.net.topology import Metrics, Topology, build, metrics
from toyvisor.cpu.net.traffic import LoadPoint, load_curve

from . import plot
from .cluster import load_cluster, run_cluster


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


def load_chart(table: LoadTable) -> plot.Chart:
    """Latency against offered load, one line per topology, up to its saturation."""
    series = {name: [(p.offered, p.latency) for p in pts if not p.saturated]
              for name, pts in table.curves.items()}
    return plot.lines(f"Latency vs offered load: {table.nodes} nodes, {table.switching}, "
                      f"{table.size}-byte packets, uniform traffic",
                      "offered load (flits per node per tick)", "mean latency (ticks)", series)


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


# -- the tables of docs/multicomputer.md (docgen: ``table net-NAME``) ---------------------------

GUESTS = Path(__file__).resolve().parent.parent / "guests" / "multicomputer"
SHORT = {"store-and-forward": "SAF", "cut-through": "VCT", "wormhole": "WH", "circuit": "CS"}


def _closed_diameter(kind: str, n: int) -> str:
    k2, k3 = round(n ** 0.5), round(n ** (1 / 3))
    return {
        "star": "2", "ring": f"⌊N/2⌋ = {n // 2}", "mesh": f"2(k−1) = {2 * (k2 - 1)}",
        "torus": f"2⌊k/2⌋ = {2 * (k2 // 2)}", "cube": f"3(k−1) = {3 * (k3 - 1)}",
        "hypercube": f"log₂N = {n.bit_length() - 1}",
    }[kind]


def figures_markdown() -> str:
    """Links, degree, diameter (and its closed form), bisection, mean hops per topology."""
    rows = ["| topology | links | degree | diameter | closed form | bisection width | mean hops |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: |"]
    for kind, sizes in [("star", (16, 64)), ("ring", (16, 64)), ("mesh", (16, 64)),
                        ("torus", (16, 64)), ("cube", (8, 64)), ("hypercube", (16, 64))]:
        for n in sizes:
            m = metrics(build(kind, n))
            degree = f"{m.degree[0]}" if m.degree[0] == m.degree[1] else f"{m.degree[0]}–{m.degree[1]}"
            bis = f"{m.bisection}" if m.bisection_exact else f"≤ {m.bisection}"
            rows.append(f"| {kind}-{n} | {m.links} | {degree} | {m.diameter} | "
                        f"{_closed_diameter(kind, n)} | {bis} | {m.mean_hops:.3f} |")
    return "\n".join(rows) + "\n"


def zero_load_markdown() -> str:
    """Zero-load latency of the farthest pair, formula / measured, per switching technique."""
    params = LinkParams(router_delay=4, bandwidth=4)
    rows = ["| topology | pair | H | " + " | ".join(f"{SHORT[s]} formula / measured"
                                                   for s in SWITCHING) + " |",
            "| --- | --- | ---: | " + " | ".join("---:" for _ in SWITCHING) + " |"]
    for kind, n in [("ring", 16), ("mesh", 16), ("torus", 64), ("hypercube", 64), ("star", 64)]:
        report = topology_report(build(kind, n), params, 64)
        cells = [f"{c} / {m}" for c, m in report.latency.values()]
        rows.append(f"| {kind}-{n} | {report.far_pair[0]} → {report.far_pair[1]} | "
                    f"{report.hops} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


@functools.cache
def doc_load_table() -> LoadTable:
    """The latency-vs-load table of docs/multicomputer.md (and its picture): 16 nodes, wormhole."""
    params = LinkParams(switching="wormhole", router_delay=2, bandwidth=4, buffer_flits=4)
    rates = tuple(round(0.05 * i, 2) for i in range(1, 17))
    return load_table(tuple(build(k, 16) for k in ("mesh", "torus", "hypercube")), params,
                      rates, size=32)


def doc_load_markdown() -> str:
    """`doc_load_table` as Markdown."""
    return load_markdown(doc_load_table()) + "\n"


def deadlock_markdown() -> str:
    """Wormhole on a 16-node torus with 2-flit buffers, without and with a dateline."""
    lines = []
    for avoidance in ("none", "dateline"):
        net = Network(build("torus", 16), LinkParams(switching="wormhole", router_delay=1,
                                                     buffer_flits=2,
                                                     deadlock_avoidance=avoidance))
        for _ in range(3):
            for s in range(16):
                net.inject(s, (s // 4) * 4 + (s % 4 + 2) % 4, 64)
        net.drain(50_000)
        ok = sum(d.ok for d in net.results)
        lines.append(f"- `{avoidance}`: {ok} of {len(net.results)} packets delivered, "
                     f"{len(net.deadlocks)} deadlock(s) found"
                     + (f"; the first: {net.deadlocks[0]}" if net.deadlocks else ""))
    return "\n".join(lines) + "\n"


def copies_markdown() -> str:
    """guests/multicomputer/copies.toml: each message's path and copies."""
    result = run_cluster(load_cluster(GUESTS / "copies.toml"))
    rows = ["| message | path | copies | copy by copy |", "| --- | --- | ---: | --- |"]
    names = {"cpu": "CPU", "dma": "DMA", "wire": "wire"}
    for m in result.messages:
        rows.append(f"| {m['id']} | {m['path']} | {m['copies']} | "
                    + " → ".join(names[c] for c in m["copy_path"]) + " |")
    return "\n".join(rows) + "\n"


def pingpong_markdown() -> str:
    """pingpong.toml between nodes 0 and 15 (node 0's figure), per topology and switching."""
    rows = ["| topology (16 nodes) | hops 0 → 15 | " + " | ".join(SHORT[s] for s in SWITCHING)
            + " |", "| --- | ---: | " + " | ".join("---:" for _ in SWITCHING) + " |"]
    for kind in ("star", "ring", "mesh", "torus", "hypercube"):
        cells, hops = [], None
        for switching in SWITCHING:
            r = run_cluster(load_cluster(GUESTS / "pingpong.toml", topology=kind, nodes=16,
                                         switching=switching))
            console = r.nodes[0].console
            cells.append(console.rsplit(" ", 1)[1].strip() if r.ok else "failed")
            hops = r.messages[0]["hops"]
        rows.append(f"| {kind} | {hops} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def guests_markdown() -> str:
    """The example cluster files: result, ticks, messages, mean network latency."""
    rows = ["| cluster file | topology | result (node 0) | ticks | messages | mean network latency |",
            "| --- | --- | --- | ---: | ---: | ---: |"]
    for name in ("pingpong", "ring", "alltoall", "psum", "faults"):
        r = run_cluster(load_cluster(GUESTS / f"{name}.toml"))
        first = r.nodes[0].console.strip().splitlines()[0]
        rows.append(f"| `{name}.toml` | {r.topology}, {r.switching} | {first} | {r.ticks} | "
                    f"{len(r.messages)} | {r.network['mean_network_latency']} |")
    return "\n".join(rows) + "\n"


def variants_markdown() -> str:
    """The consoles of sends.toml and receives.toml (the send and receive variants)."""
    lines = []
    for name in ("sends", "receives"):
        r = run_cluster(load_cluster(GUESTS / f"{name}.toml"))
        for node in (0, 1):
            lines += [line for line in r.nodes[node].console.splitlines() if line]
        if name == "sends":
            copies = [str(m["copies"]) for m in r.messages]
            lines.append(f"(copies of the five messages: {', '.join(copies)})")
    return "```\n" + "\n".join(lines) + "\n```\n"
