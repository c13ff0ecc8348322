"""The interconnect model: graph figures, zero-load latencies, load, deadlock and faults."""

from __future__ import annotations

import pytest

from toyvisor.cpu.net.errors import NetworkError
from toyvisor.cpu.net.network import SWITCHING, Fault, LinkParams, Network
from toyvisor.cpu.net.routing import dateline_vcs, regular_path, shortest_path
from toyvisor.cpu.net.topology import build, metrics
from toyvisor.cpu.net.traffic import load_curve


def _diameter_closed_form(kind: str, n: int) -> int:
    k = round(n ** 0.5)
    return {
        "star": 2,
        "ring": n // 2,
        "mesh": 2 * (k - 1),
        "torus": 2 * (k // 2),
        "hypercube": n.bit_length() - 1,
    }[kind]


@pytest.mark.parametrize("n", [16, 64])
@pytest.mark.parametrize("kind", ["star", "ring", "mesh", "torus", "hypercube"])
def test_measured_diameter_is_the_closed_form(kind, n):
    assert metrics(build(kind, n)).diameter == _diameter_closed_form(kind, n)


@pytest.mark.parametrize("kind, n, bisection", [
    ("star", 16, 8), ("ring", 16, 2), ("mesh", 16, 4), ("torus", 16, 8), ("cube", 8, 4),
    ("hypercube", 16, 8),
])
def test_exhaustive_bisection_width_matches_the_reference(kind, n, bisection):
    m = metrics(build(kind, n))
    assert m.bisection_exact and m.bisection == bisection


def test_the_4d_hypercube_is_the_4x4_torus_graph():
    cube, torus = metrics(build("hypercube", 16)), metrics(build("torus", 16))
    assert cube.links == torus.links == 32
    assert round(cube.mean_hops, 3) == round(torus.mean_hops, 3) == 2.133


def test_cube_of_64_is_4x4x4():
    m = metrics(build("cube", 64))
    assert m.diameter == 9 and m.degree == (3, 6)


@pytest.mark.parametrize("kind, n, words", [
    ("hypercube", 12, "power of two"), ("mesh", 12, "square"), ("torus", 20, "square"),
    ("cube", 9, "cube number"), ("ring", 2, "at least 3"), ("nosuch", 4, "unknown topology"),
])
def test_a_topology_that_does_not_fit_is_one_clear_error(kind, n, words):
    with pytest.raises(NetworkError, match=words):
        build(kind, n)


def test_edge_lists_name_known_nodes_and_connect_them():
    with pytest.raises(NetworkError, match=r"edge 2 \(1-9\): unknown node 9"):
        build("edges", 4, [(0, 1), (1, 9)])
    with pytest.raises(NetworkError, match="unreachable"):
        build("edges", 4, [(0, 1), (2, 3)])
    line = build("edges", 4, [(0, 1), (1, 2), (2, 3)])
    assert metrics(line).diameter == 3


def test_dimension_order_and_ecube_routes():
    assert regular_path(build("mesh", 16), 0, 15) == (0, 1, 2, 3, 7, 11, 15)
    # torus: the shorter way round, x first
    assert regular_path(build("torus", 16), 0, 15) == (0, 3, 15)
    # e-cube: lowest differing bit first
    assert regular_path(build("hypercube", 16), 0b0000, 0b1011) == (0, 1, 3, 11)
    assert regular_path(build("star", 5), 1, 3) == (1, 5, 3)
    assert shortest_path(build("edges", 4, [(0, 1), (1, 2), (2, 3), (0, 3)]), 0, 2) == (0, 1, 2)


def test_dateline_switches_to_vc1_after_the_wraparound():
    torus = build("torus", 16)
    # 2 → 3 → 0 (wraps) → 1 in x
    assert dateline_vcs(torus, (2, 3, 0, 1)) == (0, 1, 1)


_PAIRS = [(0, 15, 64), (3, 9, 17), (5, 6, 4), (0, 10, 128), (2, 13, 1)]


@pytest.mark.parametrize("switching", SWITCHING)
@pytest.mark.parametrize("kind", ["mesh", "torus", "hypercube", "ring", "star"])
def test_zero_load_latency_is_the_closed_form(kind, switching):
    params = LinkParams(switching=switching, router_delay=3, bandwidth=4, buffer_flits=2)
    topology = build(kind, 16)
    for src, dst, size in _PAIRS:
        net = Network(topology, params)
        net.inject(src, dst, size)
        net.drain()
        (delivery,) = net.results
        h = len(regular_path(topology, src, dst)) - 1
        f = -(-size // 4)
        expected = {"store-and-forward": h * (3 + f), "cut-through": h * 3 + f,
                    "wormhole": h * 3 + f, "circuit": 3 * h * 3 + f}[switching]
        assert delivery.hops == h
        assert delivery.latency == expected == params.zero_load_latency(h, size)


def test_latency_grows_with_load_and_the_mesh_saturates_first():
    params = LinkParams(switching="wormhole", router_delay=2, bandwidth=4, buffer_flits=4)
    rates = tuple(round(0.05 * i, 2) for i in range(1, 20))
    saturation = {}
    for kind in ("mesh", "torus", "hypercube"):
        curve = load_curve(build(kind, 16), params, rates, size=32, warmup=200, window=600)
        latencies = [p.latency for p in curve if not p.saturated]
        # non-decreasing up to the noise of the draw (10 %: near saturation one draw's queues
        # differ a lot from the next one's), and well above zero load at the end
        assert all(b > 0.9 * a for a, b in zip(latencies, latencies[1:]))
        assert latencies[-1] > 1.5 * latencies[0]
        saturation[kind] = next(p.offered for p in curve if p.saturated)
    assert saturation["mesh"] < saturation["torus"]
    assert saturation["mesh"] < saturation["hypercube"]


def _shift_by_two(avoidance: str) -> Network:
    net = Network(build("torus", 16), LinkParams(switching="wormhole", router_delay=1,
                                                 buffer_flits=2, deadlock_avoidance=avoidance))
    for _ in range(3):
        for s in range(16):
            net.inject(s, (s // 4) * 4 + (s % 4 + 2) % 4, 64)
    net.drain(50_000)
    return net


def test_wormhole_torus_deadlocks_without_the_dateline_and_says_so():
    broken = _shift_by_two("none")
    assert broken.deadlock and "deadlock at tick" in broken.deadlock
    failed = [d for d in broken.results if not d.ok]
    assert failed and all("deadlock" in d.reason for d in failed)
    assert len(broken.results) == 48  # every packet accounted for
    safe = _shift_by_two("dateline")
    assert not safe.deadlocks and all(d.ok for d in safe.results) and len(safe.results) == 48


@pytest.mark.parametrize("switching", SWITCHING)
def test_faults_deliver_reroute_or_fail_with_a_reason(switching):
    net = Network(build("mesh", 16), LinkParams(switching=switching),
                  faults=(Fault(at=0, node=7), Fault(at=200, link=(1, 2))))
    net.inject(4, 6, 64)            # untouched
    net.inject(5, 7, 8, at=5)       # to the dead node
    net.inject(1, 3, 8, at=300)     # its regular path 1-2-3 is cut: around
    net.inject(10, 3, 8, at=10)     # x first: 10-11-7 is dead: around
    net.drain()
    by_id = {d.id: d for d in net.results}
    assert len(by_id) == 4
    assert by_id[0].status == "delivered"
    assert by_id[1].status == "failed" and "node 7" in by_id[1].reason
    assert by_id[2].status == "rerouted" and 2 not in by_id[2].path[1:2]
    assert by_id[3].status == "rerouted" and 7 not in by_id[3].path


def test_a_packet_caught_on_a_failing_link_fails_and_is_reported():
    net = Network(build("mesh", 16), LinkParams(switching="wormhole", bandwidth=1),
                  faults=(Fault(at=20, link=(1, 2)),))
    net.inject(0, 3, 64)
    net.drain()
    (d,) = net.results
    assert d.status == "failed" and "link 1-2 went down under the packet" in d.reason


def test_bad_network_input_is_a_clear_error():
    net = Network(build("ring", 4))
    with pytest.raises(NetworkError, match="node 9 does not exist"):
        net.inject(0, 9, 8)
    with pytest.raises(NetworkError, match="size"):
        net.inject(0, 1, 0)
    with pytest.raises(NetworkError, match="unknown switching"):
        LinkParams(switching="telepathy")
    with pytest.raises(NetworkError, match="no link 0-2"):
        Network(build("ring", 4), faults=(Fault(at=1, link=(0, 2)),))


def test_same_inputs_same_numbers():
    def run():
        curve = load_curve(build("torus", 16), LinkParams(), (0.1, 0.3), warmup=50, window=200)
        return [(p.latency, p.accepted, p.flit_hops) for p in curve]
    assert run() == run()
