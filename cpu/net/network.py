"""The interconnect: a flit-level, cycle-level model of links, routers and switching.

Time is counted in ticks, the same ticks as the nodes' clocks.  A *channel* is one direction of
a link; it carries at most one flit per tick (a flit is `bandwidth` bytes, so b = `bandwidth`
bytes per tick).  Each channel has `vcs` virtual channels, each with a buffer of
`buffer_flits` flits at the router it leads to.  A packet of L bytes is F = ⌈L/b⌉ flits.

Timing rules (they make the zero-load latencies exactly the closed forms):

- a router starts sending a packet's head `router_delay` (t_r) ticks after the head *started*
  arriving (cut-through, wormhole: the header is the head's first bytes), or t_r ticks after the
  tail *finished* arriving (store-and-forward); the source's router counts as the first router
  (its t_r starts at injection), the destination's router delivers flits to the interface at once;
- body flits follow one per tick;
- circuit switching sends a probe (on the control plane: it reserves channels, carries no flits)
  one hop per t_r, an acknowledgement back in H·t_r, then the data as on a wormhole path that
  nothing else can use; the channels are released as the tail passes.

Zero-load latency from injection to the tail's arrival, over H hops:

    store-and-forward   H·(t_r + F)
    cut-through         H·t_r + F
    wormhole            H·t_r + F
    circuit             3·H·t_r + F          (probe H·t_r, acknowledgement H·t_r, data H·t_r + F)

Flow control: wormhole allocates a virtual channel when the head moves and needs one free buffer
slot per flit, so a blocked head holds every channel behind it; virtual cut-through and
store-and-forward allocate only when the next buffer can take the whole packet, so a blocked
packet gathers in one router.  Arbitration is by age: every tick, older packets move first.
Each node injects its packets one at a time, in order (a source queue).

Deadlock: a packet blocked on a channel held by another packet waits for it; a cycle of such
waits is a deadlock.  `Network` looks for cycles among packets blocked for `DEADLOCK_PATIENCE`
ticks and reports each one it finds (`deadlocks`); it recovers by failing the packets of the
cycle with that report as their reason, which frees their channels, and goes on.  On
wrapping topologies the dateline scheme (two VCs, `routing.dateline_vcs`) avoids it;
``deadlock_avoidance="none"`` drops the scheme.

Faults: a link or a node taken down at a tick.  A packet with flits on a failed link fails ("the
link went down under it"); a packet whose remaining route crosses it is rerouted from where its
head is; one with no route left, or to a node that is down, fails with the reason.  Every
packet ends delivered or failed: nothing is lost silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import attrs

from .errors import NetworkError
from .routing import dateline_vcs, route, shortest_path
from .topology import Topology

SWITCHING = ("store-and-forward", "cut-through", "wormhole", "circuit")
DEADLOCK_AVOIDANCE = ("dateline", "none")
#: how long (ticks) a packet must have been blocked before a deadlock search looks at it
DEADLOCK_PATIENCE = 64


@attrs.frozen
class LinkParams:
    """Link and router parameters shared by every channel."""

    switching: str = "wormhole"
    #: t_r: ticks from a head's arrival at a router to its departure
    router_delay: int = 4
    #: b: bytes per tick per channel (= the flit size)
    bandwidth: int = 4
    #: buffer slots (flits) per virtual channel; cut-through and store-and-forward need room
    #: for the largest packet and are given at least that
    buffer_flits: int = 4
    #: "dateline" (two virtual channels on wrapping dimensions) or "none" (one VC)
    deadlock_avoidance: str = "dateline"

    def __attrs_post_init__(self) -> None:
        if self.switching not in SWITCHING:
            raise NetworkError(
                f"unknown switching mode {self.switching!r} (known: {', '.join(SWITCHING)})"
            )
        if self.deadlock_avoidance not in DEADLOCK_AVOIDANCE:
            raise NetworkError(
                f"unknown deadlock avoidance {self.deadlock_avoidance!r} (known: "
                f"{', '.join(DEADLOCK_AVOIDANCE)})"
            )
        for name in ("router_delay", "bandwidth", "buffer_flits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NetworkError(f"{name} must be a whole number ≥ 1, not {value!r}")

    def flits(self, size: int) -> int:
        return max(1, -(-size // self.bandwidth))

    def zero_load_latency(self, hops: int, size: int) -> int:
        """The closed form of the module docstring for `hops` hops and `size` bytes."""
        f, t_r = self.flits(size), self.router_delay
        if hops == 0:
            return 0
        if self.switching == "store-and-forward":
            return hops * (t_r + f)
        if self.switching == "circuit":
            return 3 * hops * t_r + f
        return hops * t_r + f


@attrs.frozen
class Fault:
    """A link (``a``–``b``) or a node (``node``) going down at tick ``at``."""

    at: int
    node: int | None = None
    link: tuple[int, int] | None = None

    def describe(self) -> str:
        return f"node {self.node}" if self.node is not None else f"link {self.link[0]}-{self.link[1]}"


@attrs.frozen
class Delivery:
    """What became of one packet."""

    id: int
    src: int
    dst: int
    size: int
    flits: int
    #: "delivered", "rerouted" (delivered over a detour) or "failed"
    status: str
    #: tick the packet was handed to the network (entered its source queue)
    created: int
    #: tick its tail reached the destination interface (or the tick it failed)
    finished: int
    #: links traversed (of the path actually taken)
    hops: int
    path: tuple[int, ...]
    reason: str = ""
    tag: object = None

    @property
    def latency(self) -> int:
        return self.finished - self.created

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class _Packet:
    __slots__ = ("id", "src", "dst", "size", "flits", "created", "ready", "path", "res", "chan",
                 "sent", "head_start", "tail_end", "first", "state", "probe_hop", "probe_time",
                 "data_ready", "rerouted", "reason", "tag", "blocked_since", "wait", "hops_done")

    def __init__(self, pid, src, dst, size, flits, created, tag):
        self.id, self.src, self.dst, self.size, self.flits = pid, src, dst, size, flits
        self.created = created
        self.ready = created
        self.tag = tag
        self.rerouted = False
        self.reason = ""
        self.blocked_since = None
        self.wait = None  # the resource this packet is blocked on
        self.hops_done: list[int] = []  # vertices already passed (when rerouted)


class Network:
    """A cycle-level interconnect of `topology` with `params`; advance it with `run_until`.

    `sink_room(node, tag)` — optional — is asked when a packet's head reaches its last hop:
    True when the node's interface has room (and keeps it for the packet, whose `tag` was given
    to `inject`); a packet whose head reaches a full interface waits in the network.
    `on_deliver(delivery)` is called as each packet ends (delivered or failed).
    """

    def __init__(self, topology: Topology, params: LinkParams = LinkParams(),
                 faults: tuple[Fault, ...] = (),
                 sink_room: Callable[[int, int], bool] | None = None,
                 on_deliver: Callable[[Delivery], None] | None = None,
                 trace: Callable[[str], None] | None = None) -> None:
        self.topology = topology
        self.params = params
        self.switching = params.switching
        self.now = 0
        self.vcs = 2 if (params.deadlock_avoidance == "dateline" and topology.wrap) else 1
        self.channel: dict[tuple[int, int], int] = {}
        self.channel_ends: list[tuple[int, int]] = []
        for a, b in topology.edges:
            for x, y in ((a, b), (b, a)):
                self.channel[(x, y)] = len(self.channel_ends)
                self.channel_ends.append((x, y))
        nres = len(self.channel_ends) * self.vcs
        self.owner: list[_Packet | None] = [None] * nres
        self.buffered = [0] * nres
        self.capacity = params.buffer_flits
        self.link_tick = [-1] * len(self.channel_ends)
        self.link_flits = [0] * len(self.channel_ends)
        self.link_down = [False] * len(self.channel_ends)
        self.node_down = [False] * topology.vertices
        self.faults = sorted(faults, key=lambda f: f.at)
        for fault in self.faults:
            self._check_fault(fault)
        self._fault_index = 0
        self.sink_room = sink_room
        self.on_deliver = on_deliver
        self.trace = trace
        self.queues: list[deque[_Packet]] = [deque() for _ in range(topology.nodes)]
        self.active: list[_Packet] = []
        self.results: list[Delivery] = []
        self.next_id = 0
        self.flit_hops = 0
        self.in_flight_sum = 0
        self.in_flight_max = 0
        self.busy_ticks = 0
        #: every deadlock found (a report each); its packets failed, the rest went on
        self.deadlocks: list[str] = []
        self.fault_log: list[str] = []
        self._max_flits_seen = 0

    # -- input ----------------------------------------------------------------------------------

    def _check_fault(self, fault: Fault) -> None:
        if fault.node is not None:
            self.topology.check_node(fault.node, "fault")
        elif fault.link is not None:
            a, b = fault.link
            if (a, b) not in self.channel:
                raise NetworkError(f"fault: there is no link {a}-{b} in {self.topology.name}")
        else:
            raise NetworkError("fault: name a node or a link")

    def add_fault(self, fault: Fault) -> None:
        """Schedule one more fault (at a tick not in the past)."""
        self._check_fault(fault)
        if fault.at < self.now:
            raise NetworkError(f"fault at tick {fault.at} is in the past (now {self.now})")
        self.faults = sorted(self.faults[self._fault_index:] + [fault], key=lambda f: f.at)
        self._fault_index = 0

    def inject(self, src: int, dst: int, size: int, at: int | None = None,
               tag: object = None) -> int:
        """Queue a packet of `size` bytes from node `src` to node `dst` at tick `at` (default
        now); returns its id.  A destination that is down or unreachable fails the packet."""
        topology = self.topology
        topology.check_node(src, "source")
        topology.check_node(dst, "destination")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise NetworkError(f"packet size must be ≥ 1 byte, not {size!r}")
        at = self.now if at is None else at
        if at < self.now:
            raise NetworkError(f"cannot inject at tick {at}: the network is at {self.now}")
        flits = self.params.flits(size)
        if self.switching in ("cut-through", "store-and-forward") and flits > self.capacity:
            self.capacity = flits  # whole-packet buffers
        p = _Packet(self.next_id, src, dst, size, flits, at, tag)
        self.next_id += 1
        if src == dst:
            self._finish(p, "delivered", at, "", path=(src,))
            return p.id
        self.queues[src].append(p)
        return p.id

    # -- the clock ------------------------------------------------------------------------------

    def idle(self) -> bool:
        return not self.active and not any(self.queues)

    def next_activity(self) -> int | None:
        """The earliest tick at which something can happen (None: nothing will)."""
        times = [q[0].ready for q in self.queues if q]
        if self.active:
            times.append(self.now)
        if self._fault_index < len(self.faults):
            times.append(self.faults[self._fault_index].at)
        return min(times) if times else None

    def run_until(self, end: int) -> None:
        """Advance every tick before `end`; idle stretches are skipped."""
        while self.now < end:
            nxt = self.next_activity()
            if nxt is None or nxt >= end:
                self.now = end
                return
            if nxt > self.now:
                self.now = nxt
            self._tick()
            self.now += 1

    def drain(self, limit: int = 10_000_000) -> None:
        """Run until every packet has ended (or a deadlock is found, or `limit` ticks pass)."""
        stop = self.now + limit
        while not self.idle() and self.now < stop:
            nxt = self.next_activity()
            self.run_until(max(nxt or self.now, self.now) + 1)

    # -- one tick ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        t = self.now
        faults = self.faults
        while self._fault_index < len(faults) and faults[self._fault_index].at <= t:
            self._apply_fault(faults[self._fault_index])
            self._fault_index += 1
        for q in self.queues:
            if q and q[0].ready <= t and not self._source_busy(q[0].src):
                self._start(q.popleft(), t)
        active = self.active
        if not active:
            return
        for p in list(active):
            if p.state == "probe":
                self._probe(p, t)
            elif p.state != "done":
                self._move(p, t)
        self.active = active = [p for p in active if p.state != "done"]
        n = len(active)
        self.in_flight_sum += n
        self.busy_ticks += 1
        if n > self.in_flight_max:
            self.in_flight_max = n
        if t % DEADLOCK_PATIENCE == 0 and active:
            self._find_deadlock(t)

    def _source_busy(self, src: int) -> bool:
        # One packet at a time leaves a node: the next starts when the last one's tail has.
        for p in self.active:
            if p.src == src and p.state in ("probe", "wait-ack") or (
                    p.src == src and p.state == "moving" and p.sent[0] < p.flits):
                return True
        return False

    def _start(self, p: _Packet, t: int) -> None:
        if self.node_down[p.dst]:
            self._finish(p, "failed", t, f"destination node {p.dst} is down")
            return
        if self.node_down[p.src]:
            self._finish(p, "failed", t, f"source node {p.src} is down")
            return
        path, rerouted = route(self.topology, p.src, p.dst, self._usable)
        if path is None:
            self._finish(p, "failed", t, f"no route from {p.src} to {p.dst} ({self._down_text()})")
            return
        p.rerouted = rerouted
        if rerouted:
            p.reason = f"rerouted around {self._down_text()}"
        p.ready = t
        self._set_path(p, path)
        if self.switching == "circuit":
            p.state, p.probe_hop, p.probe_time = "probe", 0, t + self.params.router_delay
        else:
            p.state = "moving"
        self.active.append(p)
        if self.trace:
            self.trace(f"{t} start p{p.id} {p.src}->{p.dst} {p.size}B path {'-'.join(map(str, path))}")

    def _set_path(self, p: _Packet, path: tuple[int, ...]) -> None:
        vcs = dateline_vcs(self.topology, path) if self.vcs == 2 else (0,) * (len(path) - 1)
        p.path = path
        p.chan = [self.channel[(a, b)] for a, b in zip(path, path[1:])]
        p.res = [c * self.vcs + v for c, v in zip(p.chan, vcs)]
        hops = len(p.chan)
        p.sent = [0] * hops
        p.head_start = [0] * hops
        p.tail_end = [0] * hops
        p.first = 0

    def _probe(self, p: _Packet, t: int) -> None:
        """Circuit setup: reserve one channel per t_r; then wait for the acknowledgement."""
        if t < p.probe_time:
            return
        h = p.probe_hop
        r = p.res[h]
        holder = self.owner[r]
        if holder is not None and holder is not p:
            self._blocked(p, t, r)
            return
        if h == len(p.res) - 1 and self.sink_room is not None \
                and not self.sink_room(p.dst, p.tag):
            self._blocked(p, t, -1 - p.dst)  # the circuit ends at a full interface: wait
            return
        self._unblocked(p)
        self.owner[r] = p
        p.probe_hop = h + 1
        p.probe_time = t + self.params.router_delay
        if p.probe_hop == len(p.res):
            # The probe reserved the last channel: the acknowledgement takes H·t_r back.
            hops = len(p.res)
            p.data_ready = t + hops * self.params.router_delay
            p.state = "moving"
            p.ready = p.data_ready

    def _move(self, p: _Packet, t: int) -> None:
        """Send at most one flit on each hop of `p` this tick, from the head backwards."""
        flits = p.flits
        sent, res, chan = p.sent, p.res, p.chan
        hops = len(res)
        last = hops - 1
        t_r = self.params.router_delay
        saf = self.switching == "store-and-forward"
        whole = self.switching != "wormhole" and self.switching != "circuit"
        circuit = self.switching == "circuit"
        owner, buffered, capacity = self.owner, self.buffered, self.capacity
        link_tick = self.link_tick
        blocked_on = None
        moved = False
        h = last
        while h >= p.first:
            i = sent[h]
            if i >= flits:
                h -= 1
                continue
            if h == 0:
                available = flits
            else:
                available = sent[h - 1]
            if i >= available:
                h -= 1
                continue
            c = chan[h]
            r = res[h]
            if i == 0:
                if h == 0:
                    earliest = p.ready + t_r
                elif saf:
                    if available < flits:
                        h -= 1
                        continue
                    earliest = p.tail_end[h - 1] + t_r
                else:
                    earliest = p.head_start[h - 1] + t_r
                if t < earliest:
                    h -= 1
                    continue
                if not circuit:
                    holder = owner[r]
                    if holder is not None and holder is not p:
                        blocked_on = r if blocked_on is None else blocked_on
                        h -= 1
                        continue
                    if h == last:
                        if self.sink_room is not None and not self.sink_room(p.dst, p.tag):
                            blocked_on = -1 - p.dst if blocked_on is None else blocked_on
                            h -= 1
                            continue
                    elif capacity - buffered[r] < (flits if whole else 1):
                        blocked_on = r if blocked_on is None else blocked_on
                        h -= 1
                        continue
                    owner[r] = p
                p.head_start[h] = t
            elif h != last and not circuit and buffered[r] >= capacity:
                blocked_on = r if blocked_on is None else blocked_on
                h -= 1
                continue
            if link_tick[c] == t:
                h -= 1
                continue
            # transmit flit i on hop h
            link_tick[c] = t
            self.link_flits[c] += 1
            self.flit_hops += 1
            moved = True
            sent[h] = i + 1
            if h != last:
                buffered[r] += 1
            if h > 0:
                buffered[res[h - 1]] -= 1
            if i + 1 == flits:
                p.tail_end[h] = t + 1
                if h > 0:
                    owner[res[h - 1]] = None
                    p.first = h
                if h == last:
                    owner[r] = None
                    self._finish(p, "rerouted" if p.rerouted else "delivered", t + 1, p.reason)
                    return
            h -= 1
        if blocked_on is not None and not moved:
            self._blocked(p, t, blocked_on)
        elif moved:
            self._unblocked(p)

    def _blocked(self, p: _Packet, t: int, resource: int) -> None:
        if p.blocked_since is None:
            p.blocked_since = t
        p.wait = resource

    @staticmethod
    def _unblocked(p: _Packet) -> None:
        p.blocked_since = None
        p.wait = None

    # -- endings ----------------------------------------------------------------------------------

    def _finish(self, p: _Packet, status: str, t: int, reason: str,
                path: tuple[int, ...] | None = None) -> None:
        p.state = "done"
        full = tuple(p.hops_done) + (path if path is not None else getattr(p, "path", (p.src,)))
        if status == "failed":
            self._release(p)
        delivery = Delivery(p.id, p.src, p.dst, p.size, p.flits, status, p.created, t,
                            len(full) - 1 if status != "failed" else 0, full, reason, p.tag)
        self.results.append(delivery)
        if self.trace:
            self.trace(f"{t} {status} p{p.id} {p.src}->{p.dst} latency {t - p.created}"
                       + (f" ({reason})" if reason else ""))
        if self.on_deliver is not None:
            self.on_deliver(delivery)

    def _release(self, p: _Packet) -> None:
        res = getattr(p, "res", None)
        if not res:
            return
        owner, buffered = self.owner, self.buffered
        for h, r in enumerate(res):
            if owner[r] is p:
                owner[r] = None
            if h < len(res) - 1:
                inside = p.sent[h] - p.sent[h + 1]
                if inside > 0:
                    buffered[r] -= inside
        p.sent = [p.flits] * len(res)

    # -- faults -----------------------------------------------------------------------------------

    def _usable(self, a: int, b: int) -> bool:
        c = self.channel.get((a, b))
        return c is not None and not self.link_down[c] and not self.node_down[a] \
            and not self.node_down[b]

    def _down_text(self) -> str:
        down = [f"node {v}" for v in range(self.topology.nodes) if self.node_down[v]]
        down += [f"link {a}-{b}" for c, (a, b) in enumerate(self.channel_ends)
                 if a < b and self.link_down[c] and not self.node_down[a]
                 and not self.node_down[b]]
        return ", ".join(down) + " down" if down else "no faults"

    def _apply_fault(self, fault: Fault) -> None:
        t = self.now
        what = fault.describe()
        self.fault_log.append(f"tick {t}: {what} down")
        if fault.node is not None:
            self.node_down[fault.node] = True
            for w in self.topology.adjacency[fault.node]:
                self.link_down[self.channel[(fault.node, w)]] = True
                self.link_down[self.channel[(w, fault.node)]] = True
        else:
            a, b = fault.link
            self.link_down[self.channel[(a, b)]] = True
            self.link_down[self.channel[(b, a)]] = True
        if self.trace:
            self.trace(f"{t} fault {what} down")
        for p in list(self.active):
            if p.state == "done":
                continue
            if self.node_down[p.dst]:
                self._finish(p, "failed", t, f"destination node {p.dst} went down at tick {t}")
                continue
            if self.node_down[p.src] and p.sent[0] < p.flits:
                self._finish(p, "failed", t, f"source node {p.src} went down at tick {t}")
                continue
            self._reroute_or_fail(p, t, what)
        self.active = [p for p in self.active if p.state != "done"]

    def _reroute_or_fail(self, p: _Packet, t: int, what: str) -> None:
        hops = len(p.chan)
        bad = [h for h in range(hops) if self.link_down[p.chan[h]] and p.sent[h] < p.flits]
        if not bad:
            return
        h = bad[0]
        if p.sent[h] > 0 or (h > 0 and p.sent[h - 1] < p.flits and p.sent[h - 1] > 0
                             and self.switching == "circuit"):
            self._finish(p, "failed", t, f"{what} went down under the packet at tick {t}")
            return
        if self.switching == "circuit" and p.state == "moving":
            self._finish(p, "failed", t, f"{what} went down under the circuit at tick {t}")
            return
        # The head has not entered hop h: reroute from the vertex it stands at.
        j = 0
        while j < hops and p.sent[j] > 0:
            j += 1
        if j > 0 and p.sent[j - 1] < p.flits and self.switching == "wormhole":
            # the worm is stretched over earlier hops: only the head's remaining route changes
            pass
        here = p.path[j]
        detour = shortest_path(self.topology, here, p.dst, self._usable)
        if detour is None:
            self._finish(p, "failed", t, f"no route left from {here} to {p.dst} after {what} "
                                         f"went down at tick {t}")
            return
        if p.state == "probe":
            for r in p.res[j:]:
                if self.owner[r] is p:
                    self.owner[r] = None
            p.probe_hop = min(p.probe_hop, j)
        new_path = p.path[:j] + detour
        keep_sent, keep_head, keep_tail = p.sent[:j], p.head_start[:j], p.tail_end[:j]
        keep_res = p.res[:j]
        first = p.first
        self._set_path(p, new_path)
        p.res[:j] = keep_res  # the hops already taken keep their virtual channels
        p.sent[:j], p.head_start[:j], p.tail_end[:j] = keep_sent, keep_head, keep_tail
        p.first = first
        p.rerouted = True
        p.reason = f"rerouted around {what} (down at tick {t})"
        if self.trace:
            self.trace(f"{t} reroute p{p.id} via {'-'.join(map(str, new_path))}")

    # -- deadlock -----------------------------------------------------------------------------------

    def _find_deadlock(self, t: int) -> None:
        waits: dict[int, _Packet] = {}
        for p in self.active:
            if p.blocked_since is not None and t - p.blocked_since >= DEADLOCK_PATIENCE \
                    and p.wait is not None and p.wait >= 0:
                holder = self.owner[p.wait]
                if holder is not None and holder is not p:
                    waits[p.id] = holder
        for start in list(waits):
            seen: list[int] = []
            pid = start
            while pid in waits and pid not in seen:
                seen.append(pid)
                pid = waits[pid].id
            if pid in seen:
                cycle = seen[seen.index(pid):]
                by_id = {p.id: p for p in self.active}
                chans = []
                for c in cycle:
                    a, b = self.channel_ends[by_id[c].wait // self.vcs]
                    chans.append(f"{a}->{b}")
                report = (
                    f"deadlock at tick {t}: packets {', '.join(f'p{c}' for c in cycle)} each "
                    f"wait for a channel the next one holds ({', '.join(chans)})"
                )
                self.deadlocks.append(report)
                for c in cycle:
                    self._finish(by_id[c], "failed", t, report)
                    waits.pop(c, None)
                self.active = [p for p in self.active if p.state != "done"]
                if self.trace:
                    self.trace(f"{t} {report}")

    @property
    def deadlock(self) -> str | None:
        """The first deadlock found, or None."""
        return self.deadlocks[0] if self.deadlocks else None

    # -- figures ------------------------------------------------------------------------------------

    def utilization(self, ticks: int | None = None) -> dict[str, float]:
        """Fraction of ticks each channel carried a flit ("a->b" → share), busiest first."""
        span = ticks or max(1, self.now)
        used = {f"{a}->{b}": n / span for (a, b), n in zip(self.channel_ends, self.link_flits) if n}
        return dict(sorted(used.items(), key=lambda kv: (-kv[1], kv[0])))
