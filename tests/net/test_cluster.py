"""Clusters of toyvisor machines: the bundled guests give the right answers on every topology
and switching mode, the figures are the network's, and bad input is one located error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toyvisor.cpu.net.network import SWITCHING, LinkParams
from toyvisor.isa import spec
from toyvisor.tools.cli import main
from toyvisor.tools.cluster import ClusterError, load_cluster, run_cluster

REPO = Path(__file__).resolve().parents[2]
GUESTS = REPO / "guests" / "multicomputer"
TOPOLOGIES = ("star", "ring", "mesh", "torus", "hypercube")


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def run(name: str, **overrides):
    return run_cluster(load_cluster(GUESTS / f"{name}.toml", **overrides))


_SHAPES = [("star", 8), ("ring", 8), ("mesh", 9), ("torus", 9), ("cube", 8), ("hypercube", 8)]
#: every topology under wormhole, and every other switching mode on the mesh and the torus
_RUNS = [(t, n, "wormhole") for t, n in _SHAPES] + [
    (t, 9, s) for t in ("mesh", "torus") for s in SWITCHING if s != "wormhole"]


@pytest.mark.parametrize("switching", SWITCHING)
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_pingpong_on_every_topology_and_switching_mode(topology, switching):
    result = run("pingpong", topology=topology, nodes={"mesh": 16, "torus": 9}.get(topology, 8),
                 switching=switching)
    assert result.ok, result.nodes[0].console
    assert "pingpong: 10 rounds" in result.nodes[0].console
    params = LinkParams(switching=switching, router_delay=4, bandwidth=4, buffer_flits=4)
    for m in result.messages:
        # one message in flight at a time: each one's network latency is the zero-load figure
        assert m["network_latency"] == params.zero_load_latency(m["hops"], m["bytes"] + 8)
        assert m["copies"] == 3 and m["copy_path"] == ["dma", "wire", "dma"]


@pytest.mark.parametrize("topology, nodes, switching", _RUNS)
@pytest.mark.parametrize("guest", ["ring", "alltoall", "psum"])
def test_collective_guests_are_right_everywhere(guest, topology, nodes, switching):
    result = run(guest, topology=topology, nodes=nodes, switching=switching)
    assert result.ok, [n.console for n in result.nodes]
    assert all(m["status"] == "received" for m in result.messages)


def test_the_answers_are_the_closed_forms():
    ring = run("ring", nodes=8)
    assert "token = 108" in ring.nodes[0].console            # 3 laps · 8·9/2
    psum = run("psum", nodes=16)
    assert "ok, 1280800" in psum.nodes[0].console            # 1600·1601/2
    a2a = run("alltoall", nodes=16)
    assert all("ok, 15 messages" in n.console for n in a2a.nodes)
    assert len(a2a.messages) == 16 * 15


def test_same_cluster_same_numbers():
    first, second = run("alltoall", nodes=9, topology="mesh"), run("alltoall", nodes=9,
                                                                    topology="mesh")
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "host"}  # noqa: E731
    assert strip(first) == strip(second)


def test_five_copies_through_the_kernel_three_through_the_mapped_interface():
    result = run("copies")
    assert result.ok
    kernel, mapped = result.messages
    assert kernel["path"] == "kernel" and kernel["copy_path"] == ["cpu", "dma", "wire", "dma",
                                                                   "cpu"]
    assert mapped["path"] == "mapped" and mapped["copy_path"] == ["cpu", "wire", "cpu"]
    assert "kernel path message ok" in result.nodes[1].console


def test_guest_visible_error_codes():
    console = run("errors").nodes[0].console
    for text, code in [("a missing node", spec.NIC_NO_NODE), ("oversized message", spec.NIC_TOO_BIG),
                       ("outside RAM", spec.NIC_BAD_ADDRESS), ("nothing waiting", spec.NIC_EMPTY),
                       ("unknown command", spec.NIC_BAD_COMMAND)]:
        assert f"{text}: status {code}\n" in console


def test_a_link_fault_reroutes_and_says_so():
    result = run("faults")
    assert result.ok
    assert result.faults == ("tick 3000: link 1-2 down",)
    rerouted = [m for m in result.messages if "rerouted around link 1-2" in m["reason"]]
    assert rerouted and all(m["status"] == "received" and m["hops"] == 7 for m in rerouted)


def test_a_dead_node_fails_its_messages_with_the_reason_and_the_run_says_it_stalled(tmp_path):
    text = (GUESTS / "ring.toml").read_text().replace("[expect]", "[[fault]]\nat = 2500\nnode = 3\n\n[expect]")
    path = tmp_path / "ring.toml"
    path.write_text(text.replace('guest = "ring.s"', f'guest = "{GUESTS / "ring.s"}"'))
    result = run_cluster(load_cluster(path))
    assert not result.ok and result.outcome == "stalled"
    assert result.nodes[3].state == "down"
    failed = [m for m in result.messages if m["status"] == "failed"]
    assert failed and all("node 3" in m["reason"] for m in failed)
    assert 3 not in result.stalled


def test_cluster_run_json_and_exit_codes():
    ok = invoke("cluster", "run", GUESTS / "pingpong.toml", "--json")
    assert ok.exit_code == 0
    data = json.loads(ok.output)
    assert data["ok"] and data["topology"] == "mesh-4" and len(data["messages"]) == 20
    traced = invoke("cluster", "run", GUESTS / "pingpong.toml", "--trace-net")
    assert traced.exit_code == 0 and "start p0 0->3" in traced.output


def test_topology_command_reports_search_figures_and_both_latencies():
    result = invoke("cluster", "topology", "torus", "--nodes", "16", "--json")
    data = json.loads(result.output)
    assert (data["diameter"], data["bisection"], data["links"]) == (4, 8, 32)
    for figures in data["zero_load_latency"].values():
        assert figures["closed_form"] == figures["measured"]


BAD_FILES = [
    ('topology = "hypercube"\nnodes = 12\nguest = "x.s"\n', ":2: hypercube needs a power of two"),
    ('topology = "edges"\nnodes = 3\nedges = [[0, 1], [1, 7]]\nguest = "x.s"\n',
     ":3: edge 2 (1-7): unknown node 7"),
    ('topology = "ring"\nnodes = 4\nguest = "x.s"\nswitching = "telepathy"\n',
     ":4: unknown switching mode 'telepathy'"),
    ('topology = "ring"\nnodes = 4\nguest = "x.s"\nbogus = 1\n', ":4: unknown key 'bogus'"),
    ('topology = "ring"\nnodes = 4\nguest = "x.s"\n[[fault]]\nat = 5\nlink = [0, 2]\n',
     "no link 0-2"),
    ('topology = "ring"\nnodes = 4\n', "missing 'guest'"),
    ('topology = "ring"\nnodes = 4\nguest = [\n', "invalid TOML"),
    ('topology = "ring"\nnodes = 4\nguest = "x.s"\n[guests]\n9 = "y.s"\n',
     ":5: [guests]: '9' is not a node"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_a_bad_cluster_file_is_one_located_error_and_exit_1(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ClusterError, match=None) as caught:
        load_cluster(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    result = invoke("cluster", "run", path)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and message in result.output


@pytest.mark.parametrize("args, message", [
    (("topology", "hypercube", "--nodes", "12"), "power of two"),
    (("topology", "edges", "--nodes", "3", "--edges", "0-1,1-5"), "unknown node 5"),
    (("topology", "mesh", "--nodes", "16", "--bytes", "0"), "at least 1"),
    (("load", "--rates", "0.5,0.2"), "ascending"),
])
def test_bad_command_arguments_are_one_line_exit_1(args, message):
    result = invoke("cluster", *args)
    assert result.exit_code == 1 and message in result.output
    assert result.output.count("\n") == 1


def test_the_sends_of_the_seeds_side_by_side():
    result = run("sends")
    assert result.ok
    console = result.nodes[1].console
    assert "send blocking: received SSSS" in console
    assert "unprotected: received ZZZZ" in console  # the buffer changed before the DMA
    for name, data in [("kernel copy", "BBBB"), ("interrupt", "CCCC"), ("copy on write", "DDDD")]:
        assert f"send non-blocking, {name}: received {data}" in console
    assert "copy on write: pages copied 1" in result.nodes[0].console
    copies = {m["port"]: m["copies"] for m in result.messages}
    assert copies[23] == copies[21] + 1  # the kernel copy is one copy more


def test_the_receives_of_the_seeds_side_by_side():
    result = run("receives")
    assert result.ok
    console = result.nodes[1].console
    for line in ["receive blocking: got blk!", "receive poll: got pol!",
                 "receive interrupt: got int!", "receive pop-up thread: got pop!",
                 "receive pop-up thread: threads made 1",
                 "receive active message: handler 0 ran in the interrupt handler, total = 42"]:
        assert line in console


def test_two_interfaces_per_node_on_two_planes():
    result = run("twonics")
    assert result.ok and result.nodes[1].console == "kernel:0\nuser:  1\n"
    assert [m["interface"] for m in result.messages] == [0, 1]
    assert set(result.network["link_utilization"]) == {"0:0->1", "1:0->1"}


def test_an_edge_list_cluster(tmp_path):
    path = tmp_path / "line.toml"
    path.write_text(f'topology = "edges"\nnodes = 4\nedges = [[0, 1], [1, 2], [2, 3]]\n'
                    f'guest = "{GUESTS / "pingpong.s"}"\n')
    result = run_cluster(load_cluster(path))
    assert result.ok and "pingpong: 10 rounds" in result.nodes[0].console
    assert {m["hops"] for m in result.messages} == {3}
    assert result.messages[0]["route"] == [0, 1, 2, 3]


@pytest.mark.parametrize("name", ["pingpong", "receives"])
def test_both_engines_give_the_same_cluster_run(name):
    import attrs

    config = load_cluster(GUESTS / f"{name}.toml")
    runs = [run_cluster(attrs.evolve(config, engine=e)).to_dict() for e in ("interpreter", "fast")]
    for r in runs:
        r.pop("host")
    assert runs[0] == runs[1] and runs[0]["ok"]


def test_two_processes_sharing_the_mapped_interface_lose_a_message():
    result = run("contend")
    assert result.ok
    console = result.nodes[1].console
    assert "7 of the 8 messages sent arrived, 1 twice over" in console
    assert console.count("got b:2") == 2 and "got a:2" not in console
