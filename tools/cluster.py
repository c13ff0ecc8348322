"""A multicomputer: toyvisor machines joined by the interconnect model, on one clock.

A cluster file (TOML) names the topology and size, the switching mode, the link and interface
parameters, faults, and the guest of every node::

    name = "pingpong"
    topology = "mesh"          # star ring mesh torus cube hypercube edges
    nodes = 16
    # edges = [[0, 1], [1, 2]] # topology "edges" only
    switching = "wormhole"     # store-and-forward cut-through wormhole circuit
    guest = "pingpong.s"       # every node (a node reads its number from PORT_NIC_NODE)
    quantum = 16               # ticks between synchronisations (see below)
    max_ticks = 2000000
    memory = 1048576           # RAM per node
    interfaces = 1             # 2: a second interface per node on a second network plane
    [guests]                   # optional: other guests for some nodes
    3 = "server.s"
    [link]                     # router_delay, bandwidth, buffer_flits, deadlock_avoidance
    [interface]                # max_packet, tx_slots, rx_slots
    [[fault]]                  # at = tick, and node = N or link = [a, b]
    [expect]                   # node number (or "all") = text its console must contain

**One clock.** Global time advances in quanta of `quantum` ticks.  Packets enter the network
only at quantum boundaries (each interface's DMA channel is serviced there: it reads the buffers
of the sends issued during the quantum and injects them at the boundary tick), so what the
network does during a quantum is fixed when the quantum begins.  Each quantum therefore runs
the network first, flit by flit, and records every arrival and every failure with its exact
tick; then every live node runs up to the boundary (each retired instruction is a tick, as on
one machine), and its run is cut at each of its arrival ticks so that the message lands in
interface RAM and the interrupt is raised at that very tick.  A send waits at most one quantum
for its DMA; everything else is exact to the tick.  The order of everything is fixed (nodes by
number, packets by age), so the same cluster file gives the same trace and the same numbers.

A node that executes `hlt` with IF = 1 and no timer waits for the network: it costs nothing
until an interrupt of its interfaces is raised, and then resumes at that tick (the idle ticks
counted).  (A node waiting in `hlt` with its timer running idles to the timer's deadline, as on
one machine, and sees what arrived meanwhile when it wakes.)  A node that halts with IF = 0 (or triple-faults) is finished.  The run ends
when every node is finished and the network is empty; when nodes still wait but nothing can
wake them it ends as a *stall*, naming them.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path
from typing import Any

import attrs

from toyvisor.cpu import ENGINES, HALTED, TRIPLE_FAULT, Machine
from toyvisor.cpu.net.errors import NetworkError
from toyvisor.cpu.net.network import Fault, LinkParams, Network
from toyvisor.cpu.net.nic import WIRE_HEADER, InterfaceConfig, Message, NetworkInterface
from toyvisor.cpu.net.topology import Topology, build
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import parse_toml, read_bounded
from toyvisor.isa.spec import FLAG_IF

from .guest import MAX_TOML_SIZE, load_guest

DEFAULT_QUANTUM = 16
DEFAULT_MAX_TICKS = 5_000_000
DEFAULT_NODE_MEMORY = 1 << 20
MAX_NODES = 1024

_KEYS = {
    "name": str, "description": str, "topology": str, "nodes": int, "edges": list,
    "switching": str, "guest": str, "guests": dict, "quantum": int, "max_ticks": int,
    "memory": int, "interfaces": int, "engine": str, "link": dict, "interface": dict,
    "fault": list, "expect": dict,
}
_LINK_KEYS = {"router_delay", "bandwidth", "buffer_flits", "deadlock_avoidance"}
_INTERFACE_KEYS = {"max_packet", "tx_slots", "rx_slots"}


class ClusterError(ToyvisorError):
    """A cluster file or option that cannot be used."""


@attrs.frozen
class ClusterConfig:
    """Everything a cluster run needs, checked."""

    name: str
    topology: Topology
    params: LinkParams
    interface: InterfaceConfig
    #: the guest source (or image, or directory) of every node
    guests: tuple[Path, ...]
    quantum: int = DEFAULT_QUANTUM
    max_ticks: int = DEFAULT_MAX_TICKS
    memory: int = DEFAULT_NODE_MEMORY
    interfaces: int = 1
    engine: str = "interpreter"
    faults: tuple[Fault, ...] = ()
    #: (node or None for all, text)
    expect: tuple[tuple[int | None, str], ...] = ()
    source: str = "<cluster>"


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=", re.M)
    m = pattern.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def load_cluster(path: str | Path, *, topology: str | None = None, nodes: int | None = None,
                 switching: str | None = None, quantum: int | None = None) -> ClusterConfig:
    """Read and check a cluster file; the keyword arguments override its keys."""
    path = Path(path)
    if not path.exists() and not path.is_absolute():
        from_guests = Path(__file__).resolve().parent.parent / "guests" / path
        if from_guests.exists():
            path = from_guests
    try:
        text = read_bounded(path, MAX_TOML_SIZE).decode("utf-8")
        data = parse_toml(text)
    except OSError as exc:
        raise ClusterError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClusterError(f"{path}: invalid TOML: {exc}") from None
    except ValueError as exc:
        raise ClusterError(f"{path}: {exc}") from None

    def where(key: str) -> str:
        line = _line_of(text, key)
        return f"{path}:{line}" if line else str(path)

    def fail(key: str, message: str):
        raise ClusterError(f"{where(key)}: {message}")

    for key, value in data.items():
        expected = _KEYS.get(key)
        if expected is None:
            fail(key, f"unknown key '{key}' (known: {', '.join(sorted(_KEYS))})")
        if not isinstance(value, expected) or isinstance(value, bool):
            fail(key, f"'{key}' must be a {expected.__name__}, not {type(value).__name__}")
    if topology is not None:
        data["topology"] = topology
    if nodes is not None:
        data["nodes"] = nodes
    if switching is not None:
        data.setdefault("link", {})["switching"] = switching
    elif "switching" in data:
        data.setdefault("link", {})["switching"] = data["switching"]
    if quantum is not None:
        data["quantum"] = quantum
    for key in ("topology", "nodes", "guest"):
        if key not in data:
            raise ClusterError(f"{path}: missing '{key}'")
    count = data["nodes"]
    if not 1 <= count <= MAX_NODES:
        fail("nodes", f"'nodes' must be between 1 and {MAX_NODES}, not {count}")
    try:
        topo = build(data["topology"], count, data.get("edges"))
    except NetworkError as exc:
        fail("edges" if data["topology"] == "edges" and "edge" in str(exc) else "topology",
             str(exc))
    link = dict(data.get("link", {}))
    for key in link:
        if key not in _LINK_KEYS | {"switching"}:
            fail(key, f"unknown [link] key '{key}' (known: {', '.join(sorted(_LINK_KEYS))})")
    try:
        params = LinkParams(**link)
    except (NetworkError, TypeError) as exc:
        fail("switching" if "switching" in str(exc) else next(iter(link), "link"), str(exc))
    iface = data.get("interface", {})
    for key in iface:
        if key not in _INTERFACE_KEYS:
            fail(key, f"unknown [interface] key '{key}' (known: "
                      f"{', '.join(sorted(_INTERFACE_KEYS))})")
    try:
        interface = InterfaceConfig(**iface)
    except NetworkError as exc:
        fail(next(iter(iface), "interface"), str(exc))
    for key, low in (("quantum", 1), ("max_ticks", 1), ("memory", 65536), ("interfaces", 1)):
        if key in data and data[key] < low:
            fail(key, f"'{key}' must be at least {low}, not {data[key]}")
    if data.get("interfaces", 1) > 2:
        fail("interfaces", f"'interfaces' is 1 or 2, not {data['interfaces']}")
    base = path.parent
    default_guest = base / data["guest"]
    guests = [default_guest] * count
    for key, value in data.get("guests", {}).items():
        if not key.isdigit() or not 0 <= int(key) < count:
            fail(key, f"[guests]: '{key}' is not a node of this cluster (0..{count - 1})")
        if not isinstance(value, str):
            fail(key, f"[guests]: node {key}'s guest must be a path")
        guests[int(key)] = base / value
    faults = []
    for i, entry in enumerate(data.get("fault", [])):
        if not isinstance(entry, dict) or "at" not in entry or \
                ("node" in entry) == ("link" in entry) or set(entry) - {"at", "node", "link"}:
            fail("fault", f"fault {i + 1}: give 'at' and exactly one of 'node' or 'link'")
        try:
            link_pair = tuple(entry["link"]) if "link" in entry else None
            fault = Fault(at=entry["at"], node=entry.get("node"), link=link_pair)
            if fault.node is not None:
                topo.check_node(fault.node, f"fault {i + 1}")
            elif len(link_pair) != 2 or (min(link_pair), max(link_pair)) not in topo.edges:
                raise NetworkError(f"fault {i + 1}: there is no link {'-'.join(map(str, link_pair))} "
                                   f"in {topo.name}")
        except (NetworkError, TypeError) as exc:
            fail("fault", str(exc))
        faults.append(fault)
    expect = []
    for key, value in data.get("expect", {}).items():
        if key != "all" and (not key.isdigit() or not 0 <= int(key) < count):
            fail(key, f"[expect]: '{key}' is not a node of this cluster (0..{count - 1}) or 'all'")
        expect.append((None if key == "all" else int(key), str(value)))
    engine = data.get("engine", "interpreter")
    if engine not in ENGINES:
        fail("engine", f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    return ClusterConfig(
        name=data.get("name", path.stem), topology=topo, params=params, interface=interface,
        guests=tuple(guests), quantum=data.get("quantum", DEFAULT_QUANTUM),
        max_ticks=data.get("max_ticks", DEFAULT_MAX_TICKS),
        memory=data.get("memory", DEFAULT_NODE_MEMORY), interfaces=data.get("interfaces", 1),
        engine=engine, faults=tuple(faults), expect=tuple(expect), source=str(path),
    )


@attrs.frozen
class NodeResult:
    node: int
    #: "halted", "triple-fault", "waiting" (stalled or out of time), "running", "down"
    state: str
    console: str
    instructions: int
    ticks: int
    idle_ticks: int
    fault_report: str | None = None


@attrs.frozen
class ClusterResult:
    """What a cluster run did: nodes, messages, network figures."""

    name: str
    topology: str
    switching: str
    nodes: tuple[NodeResult, ...]
    messages: tuple[dict, ...]
    #: "finished", "stalled", "budget"
    outcome: str
    ticks: int
    network: dict
    faults: tuple[str, ...]
    deadlocks: tuple[str, ...]
    #: (node or "all", text, held?)
    expectations: tuple[tuple[str, str, bool], ...]
    host: dict
    stalled: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome == "finished" and all(held for _, _, held in self.expectations)

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=True)
        data["ok"] = self.ok
        data["expectations"] = [{"node": n, "text": t, "held": h} for n, t, h in self.expectations]
        return data


class Cluster:
    """The nodes, interfaces and network planes of a `ClusterConfig`, ready to run."""

    def __init__(self, config: ClusterConfig, trace=None) -> None:
        self.config = config
        self.trace = trace
        self.messages: list[Message] = []
        n = config.topology.nodes
        images = {}
        for g in set(config.guests):
            images[g] = load_guest(g).image
        self.machines: list[Machine] = []
        self.nics: list[list[NetworkInterface]] = []
        self.planes = [
            Network(config.topology, config.params, config.faults,
                    sink_room=self._sink(i), on_deliver=self._delivered,
                    trace=(lambda line, i=i: trace(f"net{i} {line}")) if trace else None)
            for i in range(config.interfaces)
        ]
        for node in range(n):
            machine = Machine(memory_size=config.memory)
            machine.load(images[config.guests[node]])
            nics = []
            for i in range(config.interfaces):
                nic = NetworkInterface(i, node, n, machine.memory, machine.platform.pic,
                                       config.interface, lambda p=machine.platform: p.clock,
                                       self._new_message)
                nic.attach(machine.platform)
                nics.append(nic)
            self.machines.append(machine)
            self.nics.append(nics)
        self.state = ["running"] * n
        #: per node: (tick, order, action) of arrivals and failures the network produced ahead
        self.events: list[list[tuple[int, int, object]]] = [[] for _ in range(n)]
        self._order = 0
        self.node_faults = sorted((f.at, f.node) for f in config.faults if f.node is not None)
        self.now = 0
        self.node_seconds = 0.0
        self.network_seconds = 0.0

    # -- hooks of the interfaces and the network ---------------------------------------------------

    def _new_message(self, src, dst, port, size, interface, now, mapped) -> Message:
        m = Message(len(self.messages), src, dst, port, size, interface, now, mapped)
        self.messages.append(m)
        return m

    def _sink(self, plane: int):
        def room(node: int, m: Message) -> bool:
            return self.nics[node][plane].reserve(m.id)
        return room

    def _at(self, node: int, tick: int, action) -> None:
        self._order += 1
        self.events[node].append((tick, self._order, action))

    def _delivered(self, delivery) -> None:
        """The network is done with a packet: its effects reach the nodes at that tick."""
        m: Message = delivery.tag
        src_nic = self.nics[m.src][m.interface]
        dst_nic = self.nics[m.dst][m.interface]
        t = delivery.finished
        m.path = delivery.path
        m.reason = delivery.reason
        if delivery.ok:
            m.arrived = t
            m.hops = delivery.hops
            m.status = "arrived"
            def land() -> None:
                if not dst_nic.arrive(m):
                    m.status, m.reason = "failed", "loopback: the interface RAM is full"
                    src_nic.sent_off(m, failed=True)
                else:
                    src_nic.sent_off(m, failed=False)

            self._at(m.dst, t, land)
        else:
            m.status = "failed"
            dst_nic.unreserve(m.id)
            self._at(m.src, t, lambda: src_nic.sent_off(m, failed=True))

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> ClusterResult:
        config = self.config
        q = config.quantum
        machines, nics, state = self.machines, self.nics, self.state
        n = len(machines)
        outcome = "budget"
        stalled: tuple[int, ...] = ()
        while self.now < config.max_ticks:
            end = min(self.now + q, config.max_ticks)
            while self.node_faults and self.node_faults[0][0] < end:
                _, dead = self.node_faults.pop(0)
                state[dead] = "down"
                for nic in nics[dead]:
                    nic.dead = True
            started = time.perf_counter()
            for plane in self.planes:
                plane.run_until(end)
            middle = time.perf_counter()
            for node in range(n):
                if state[node] == "running":
                    self._run_node(node, end)
                elif self.events[node]:
                    self.events[node].clear()  # a node that is down hears nothing
            done = time.perf_counter()
            for node in range(n):
                for nic in nics[node]:
                    if state[node] == "down":
                        continue
                    for m in nic.service(end):
                        if m.status == "failed":
                            continue
                        m.status = "in network"
                        self.planes[nic.index].inject(m.src, m.dst, m.size + WIRE_HEADER,
                                                      at=end, tag=m)
                    nic.raise_interrupts()
            self.node_seconds += done - middle
            self.network_seconds += (middle - started) + (time.perf_counter() - done)
            self.now = end
            if all(s != "running" for s in state) and all(p.idle() for p in self.planes):
                outcome = "finished"
                break
            waiting = [i for i in range(n) if state[i] == "running"
                       and machines[i].cpu.stop_reason == HALTED
                       and not machines[i].platform.pic.deliverable()]
            if len(waiting) == sum(s == "running" for s in state) and \
                    all(p.idle() for p in self.planes) and \
                    not any(nic.dma for node_nics in nics for nic in node_nics) and \
                    not any(self.events) and \
                    not self.node_faults and not any(
                        p._fault_index < len(p.faults) for p in self.planes):
                outcome = "stalled"
                stalled = tuple(waiting)
                break
        return self._result(outcome, stalled)

    def _run_node(self, node: int, end: int) -> None:
        """Run one node up to `end`, applying its network events at their ticks."""
        machine = self.machines[node]
        cpu = machine.cpu
        platform = machine.platform
        events = self.events[node]
        events.sort(key=lambda e: (e[0], e[1]))
        runner = machine.engine(self.config.engine)
        i = 0
        while True:
            if cpu.stop_reason == HALTED:
                if not cpu.flags & FLAG_IF:
                    self.state[node] = "halted"
                    break
                if not platform.pic.deliverable():
                    if i >= len(events) or events[i][0] >= end:
                        break  # waits on
                    if platform.clock < events[i][0]:  # idle until the next event
                        cpu.idle_ticks += events[i][0] - platform.clock
                        platform.clock = events[i][0]
            while i < len(events) and events[i][0] <= platform.clock:
                events[i][2]()
                i += 1
                for nic in self.nics[node]:
                    nic.raise_interrupts()
            if cpu.stop_reason == HALTED:
                if not platform.pic.deliverable():
                    continue
                if platform.clock < self.now:  # woken at the boundary
                    cpu.idle_ticks += self.now - platform.clock
                    platform.clock = self.now
                cpu.stop_reason = None
            stop = min(end, events[i][0]) if i < len(events) else end
            if platform.clock >= end:
                break
            before = platform.clock
            runner.run(stop - before, None)
            if platform.clock == before and cpu.stop_reason is None:
                break  # steps without ticks (deliveries): the clock moves on next quantum
            if cpu.stop_reason == TRIPLE_FAULT:
                self.state[node] = "triple-fault"
                break
        del events[:i]

    def _result(self, outcome: str, stalled: tuple[int, ...]) -> ClusterResult:
        nodes = []
        for i, machine in enumerate(self.machines):
            cpu = machine.cpu
            s = self.state[i]
            if s == "running":
                s = "waiting" if cpu.stop_reason == HALTED else "running"
            nodes.append(NodeResult(i, s, machine.console.text, cpu.retired,
                                    machine.platform.clock, cpu.idle_ticks, cpu.fault_report))
        expectations = []
        for node, text in self.config.expect:
            targets = range(len(nodes)) if node is None else (node,)
            held = all(text in nodes[t].console for t in targets)
            expectations.append(("all" if node is None else str(node), text, held))
        planes = self.planes
        ticks = max(1, self.now)
        flit_hops = sum(p.flit_hops for p in planes)
        busy = sum(p.busy_ticks for p in planes)
        util = {}
        for i, p in enumerate(planes):
            for link, share in p.utilization(ticks).items():
                util[link if len(planes) == 1 else f"{i}:{link}"] = round(share, 4)
        delivered = [m for m in self.messages if m.arrived is not None]
        network = {
            "flit_hops": flit_hops,
            "packets": sum(len(p.results) for p in planes),
            "mean_in_flight": round(sum(p.in_flight_sum for p in planes) / ticks, 3),
            "max_in_flight": max((p.in_flight_max for p in planes), default=0),
            "busy_ticks": busy,
            "mean_network_latency": round(sum(m.arrived - m.injected for m in delivered)
                                          / len(delivered), 2) if delivered else None,
            "link_utilization": util,
        }
        total = self.node_seconds + self.network_seconds
        host = {
            "node_seconds": round(self.node_seconds, 4),
            "network_seconds": round(self.network_seconds, 4),
            "network_share": round(self.network_seconds / total, 4) if total else 0.0,
            "flit_hops_per_second": round(flit_hops / self.network_seconds)
            if self.network_seconds else None,
        }
        faults = tuple(line for p in planes for line in p.fault_log)
        return ClusterResult(
            name=self.config.name, topology=self.config.topology.name,
            switching=self.config.params.switching, nodes=tuple(nodes),
            messages=tuple(m.to_dict() for m in self.messages), outcome=outcome,
            ticks=self.now, network=network, faults=faults,
            deadlocks=tuple(d for p in planes for d in p.deadlocks),
            expectations=tuple(expectations), host=host, stalled=stalled,
        )


def run_cluster(config: ClusterConfig, trace=None) -> ClusterResult:
    """Boot every node of `config` and run the cluster to its end."""
    return Cluster(config, trace).run()


def result_text(result: ClusterResult) -> str:
    """The human report: outcome, nodes, messages, network."""
    lines = [f"cluster {result.name}: {result.topology}, {result.switching}, "
             f"{result.ticks} ticks, {result.outcome}"
             + (f" (waiting for ever: nodes {', '.join(map(str, result.stalled))})"
                if result.stalled else "")]
    for node in result.nodes:
        console = node.console.rstrip("\n").replace("\n", " | ")
        lines.append(f"  node {node.node:>3} {node.state:<12} {node.instructions:>9} instr "
                     f"{node.idle_ticks:>9} idle  {console}")
    ms = result.messages
    if ms:
        lines.append(f"  messages: {len(ms)}")
        lines.append("    id  src  dst  port  bytes  hops  sent→received  network  copies  status")
        for m in ms[:40]:
            lat = "-" if m["latency"] is None else str(m["latency"])
            net = "-" if m["network_latency"] is None else str(m["network_latency"])
            lines.append(f"  {m['id']:>4} {m['src']:>4} {m['dst']:>4} {m['port']:>5} "
                         f"{m['bytes']:>6} {m['hops']:>5} {lat:>14} {net:>8} {m['copies']:>7}  "
                         f"{m['status']}" + (f" ({m['reason']})" if m["reason"] else ""))
        if len(ms) > 40:
            lines.append(f"    … {len(ms) - 40} more (--json has them all)")
    net = result.network
    lines.append(f"  network: {net['packets']} packets, {net['flit_hops']} flit-hops, "
                 f"in flight mean {net['mean_in_flight']} max {net['max_in_flight']}, "
                 f"mean network latency {net['mean_network_latency']}")
    busiest = list(net["link_utilization"].items())[:5]
    if busiest:
        lines.append("  busiest links: " + ", ".join(f"{k} {v:.1%}" for k, v in busiest))
    for line in result.faults:
        lines.append(f"  fault: {line}")
    for line in result.deadlocks:
        lines.append(f"  {line}")
    for node, text, held in result.expectations:
        lines.append(f"  expect node {node}: {text!r} {'held' if held else 'NOT held'}")
    return "\n".join(lines)
