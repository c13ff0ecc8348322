"""The tables of docs/multicomputer.md, produced by the code (tests/net/test_netdocs.py
regenerates them and compares).  ``python -m toyvisor.tools.netdocs`` prints them all and
rewrites the latency-vs-load picture, docs/pictures/multicomputer-load.svg."""

from __future__ import annotations

import functools
from pathlib import Path

from toyvisor.cpu.net.network import SWITCHING, LinkParams, Network
from toyvisor.cpu.net.topology import build, metrics

from .cluster import load_cluster, run_cluster
from . import plot
from .netreport import load_chart, load_markdown, load_table, topology_report

GUESTS = Path(__file__).resolve().parent.parent / "guests" / "multicomputer"
SHORT = {"store-and-forward": "SAF", "cut-through": "VCT", "wormhole": "WH", "circuit": "CS"}


def _closed_diameter(kind: str, n: int) -> str:
    k2, k3 = round(n ** 0.5), round(n ** (1 / 3))
    return {
        "star": "2", "ring": f"⌊N/2⌋ = {n // 2}", "mesh": f"2(k−1) = {2 * (k2 - 1)}",
        "torus": f"2⌊k/2⌋ = {2 * (k2 // 2)}", "cube": f"3(k−1) = {3 * (k3 - 1)}",
        "hypercube": f"log₂N = {n.bit_length() - 1}",
    }[kind]


def figures() -> str:
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
    return "\n".join(rows)


def zero_load() -> str:
    params = LinkParams(router_delay=4, bandwidth=4)
    rows = ["| topology | pair | H | " + " | ".join(f"{SHORT[s]} formula / measured"
                                                   for s in SWITCHING) + " |",
            "| --- | --- | ---: | " + " | ".join("---:" for _ in SWITCHING) + " |"]
    for kind, n in [("ring", 16), ("mesh", 16), ("torus", 64), ("hypercube", 64), ("star", 64)]:
        report = topology_report(build(kind, n), params, 64)
        cells = [f"{c} / {m}" for c, m in report.latency.values()]
        rows.append(f"| {kind}-{n} | {report.far_pair[0]} → {report.far_pair[1]} | "
                    f"{report.hops} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


@functools.cache
def _load_table():
    params = LinkParams(switching="wormhole", router_delay=2, bandwidth=4, buffer_flits=4)
    rates = tuple(round(0.05 * i, 2) for i in range(1, 17))
    return load_table(tuple(build(k, 16) for k in ("mesh", "torus", "hypercube")), params,
                      rates, size=32)


def load() -> str:
    return load_markdown(_load_table())


#: the latency-vs-load picture of docs/multicomputer.md
LOAD_PICTURE = Path(__file__).resolve().parent.parent / "docs" / "pictures" / "multicomputer-load.svg"


def load_picture() -> plot.Chart:
    return load_chart(_load_table())


def deadlock() -> str:
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
    return "\n".join(lines)


def copies() -> str:
    result = run_cluster(load_cluster(GUESTS / "copies.toml"))
    rows = ["| message | path | copies | copy by copy |", "| --- | --- | ---: | --- |"]
    names = {"cpu": "CPU", "dma": "DMA", "wire": "wire"}
    for m in result.messages:
        rows.append(f"| {m['id']} | {m['path']} | {m['copies']} | "
                    + " → ".join(names[c] for c in m["copy_path"]) + " |")
    return "\n".join(rows)


def pingpong() -> str:
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
    return "\n".join(rows)


def guests() -> str:
    rows = ["| cluster file | topology | result (node 0) | ticks | messages | mean network latency |",
            "| --- | --- | --- | ---: | ---: | ---: |"]
    for name in ("pingpong", "ring", "alltoall", "psum", "faults"):
        r = run_cluster(load_cluster(GUESTS / f"{name}.toml"))
        first = r.nodes[0].console.strip().splitlines()[0]
        rows.append(f"| `{name}.toml` | {r.topology}, {r.switching} | {first} | {r.ticks} | "
                    f"{len(r.messages)} | {r.network['mean_network_latency']} |")
    return "\n".join(rows)


def variants() -> str:
    lines = []
    for name in ("sends", "receives"):
        r = run_cluster(load_cluster(GUESTS / f"{name}.toml"))
        for node in (0, 1):
            lines += [line for line in r.nodes[node].console.splitlines() if line]
        if name == "sends":
            copies = [str(m["copies"]) for m in r.messages]
            lines.append(f"(copies of the five messages: {', '.join(copies)})")
    return "```\n" + "\n".join(lines) + "\n```"


#: section name → generator, in the order of docs/multicomputer.md
SECTIONS = {"figures": figures, "zero-load": zero_load, "load": load, "deadlock": deadlock,
            "copies": copies, "variants": variants, "pingpong": pingpong, "guests": guests}


if __name__ == "__main__":  # pragma: no cover
    plot.write(load_picture(), LOAD_PICTURE)
    for name, make in SECTIONS.items():
        print(f"<!-- multicomputer:{name} -->\n{make()}\n<!-- end -->\n")
