"""Interconnect topologies: one generator per topology, each returning an immutable `Topology`.

Vertices ``0 .. nodes-1`` are the computing nodes (each with its router); vertices from
``nodes`` on are switches (the star's hub).  Links are undirected edges; the network model uses
one channel per direction.  Node numbering is row-major in the coordinates of the regular
topologies (mesh/torus ``id = y*k + x``, cube ``id = (z*k + y)*k + x``, hypercube: the bits),
which is what dimension-order routing reads.

Generators (``TOPOLOGIES``): star, ring, mesh (k×k), torus (k×k, the "double torus"), cube
(k×k×k), hypercube (2ⁿ) and edges (any graph, from an edge list).  Metrics — degree, links,
diameter, bisection width — are computed by search over the graph (`metrics`), never from the
closed forms, so tests can hold them against the closed forms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import combinations

import attrs

from .errors import NetworkError

#: The largest node count for which the bisection width is found by exhaustive search.
EXACT_BISECTION_MAX_NODES = 16


@attrs.frozen
class Topology:
    """A graph of nodes and switches with the coordinates routing needs."""

    #: generator name ("mesh", "hypercube", …)
    kind: str
    #: number of computing nodes (vertices 0..nodes-1)
    nodes: int
    #: number of vertices (nodes + switches)
    vertices: int
    #: undirected links (a, b) with a < b, sorted
    edges: tuple[tuple[int, int], ...]
    #: the extent of each dimension for dimension-order routing ((k, k) for a k×k mesh), or ()
    dims: tuple[int, ...] = ()
    #: whether each dimension wraps around (torus, ring)
    wrap: bool = False
    #: neighbours of each vertex, sorted
    adjacency: tuple[tuple[int, ...], ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        adj: list[list[int]] = [[] for _ in range(self.vertices)]
        for a, b in self.edges:
            adj[a].append(b)
            adj[b].append(a)
        object.__setattr__(self, "adjacency", tuple(tuple(sorted(n)) for n in adj))

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.nodes}"

    @property
    def switches(self) -> int:
        return self.vertices - self.nodes

    def coords(self, node: int) -> tuple[int, ...]:
        """The node's coordinates in `dims` (lowest dimension first)."""
        out = []
        for k in self.dims:
            out.append(node % k)
            node //= k
        return tuple(out)

    def check_node(self, node: int, where: str = "") -> None:
        if not 0 <= node < self.nodes:
            prefix = f"{where}: " if where else ""
            raise NetworkError(
                f"{prefix}node {node} does not exist ({self.name} has nodes 0..{self.nodes - 1})"
            )


def _topology(kind: str, nodes: int, vertices: int, edges: Iterable[tuple[int, int]],
              dims: tuple[int, ...] = (), wrap: bool = False) -> Topology:
    unique = sorted({(min(a, b), max(a, b)) for a, b in edges if a != b})
    return Topology(kind, nodes, vertices, tuple(unique), dims, wrap)


def _need_nodes(kind: str, nodes: int, least: int) -> None:
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < least:
        raise NetworkError(f"{kind} needs at least {least} nodes, not {nodes}")


def _root(kind: str, nodes: int, power: int, what: str) -> int:
    _need_nodes(kind, nodes, 2 ** power)
    k = round(nodes ** (1 / power))
    for guess in (k - 1, k, k + 1):
        if guess >= 2 and guess ** power == nodes:
            return guess
    below = max(2, int(nodes ** (1 / power)))
    raise NetworkError(
        f"{kind} needs {what} nodes: {nodes} is not one "
        f"(nearest: {below ** power} or {(below + 1) ** power})"
    )


def _grid(kind: str, k: int, power: int, wrap: bool) -> Topology:
    dims = (k,) * power
    nodes = k ** power
    edges = []
    for node in range(nodes):
        stride = 1
        for d in range(power):
            x = (node // stride) % k
            if x + 1 < k:
                edges.append((node, node + stride))
            elif wrap and k > 2:
                edges.append((node, node - x * stride))
            stride *= k
    return _topology(kind, nodes, nodes, edges, dims, wrap)


def star(nodes: int) -> Topology:
    """Every node linked to one switch (vertex `nodes`)."""
    _need_nodes("star", nodes, 2)
    return _topology("star", nodes, nodes + 1, ((n, nodes) for n in range(nodes)))


def ring(nodes: int) -> Topology:
    """Node i linked to i+1 (mod N); no switches."""
    _need_nodes("ring", nodes, 3)
    return _topology("ring", nodes, nodes, ((n, (n + 1) % nodes) for n in range(nodes)),
                     (nodes,), True)


def mesh(nodes: int) -> Topology:
    """A k×k grid (N = k²)."""
    return _grid("mesh", _root("mesh", nodes, 2, "a square number of (k×k)"), 2, False)


def torus(nodes: int) -> Topology:
    """A k×k grid whose rows and columns wrap around (the double torus, N = k²)."""
    return _grid("torus", _root("torus", nodes, 2, "a square number of (k×k)"), 2, True)


def cube(nodes: int) -> Topology:
    """A k×k×k grid (N = k³)."""
    return _grid("cube", _root("cube", nodes, 3, "a cube number of (k×k×k)"), 3, False)


def hypercube(nodes: int) -> Topology:
    """The n-dimensional hypercube: N = 2ⁿ nodes, i linked to i with one bit flipped."""
    _need_nodes("hypercube", nodes, 2)
    if nodes & (nodes - 1):
        low = 1 << (nodes.bit_length() - 1)
        raise NetworkError(
            f"hypercube needs a power of two nodes: {nodes} is not one (nearest: {low} or "
            f"{low * 2})"
        )
    n = nodes.bit_length() - 1
    edges = [(v, v ^ (1 << d)) for v in range(nodes) for d in range(n)]
    return _topology("hypercube", nodes, nodes, edges, (2,) * n, False)


def edge_list(nodes: int, edges: Iterable[Iterable[int]]) -> Topology:
    """Any connected graph of `nodes` nodes given as (a, b) pairs (shortest-path routed)."""
    _need_nodes("edges", nodes, 2)
    pairs = []
    for i, edge in enumerate(edges):
        pair = tuple(edge)
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                     for v in pair):
            raise NetworkError(f"edge {i + 1}: expected two node numbers, got {list(pair)}")
        for v in pair:
            if not 0 <= v < nodes:
                raise NetworkError(
                    f"edge {i + 1} ({pair[0]}-{pair[1]}): unknown node {v} (nodes are "
                    f"0..{nodes - 1})"
                )
        if pair[0] == pair[1]:
            raise NetworkError(f"edge {i + 1}: a link from node {pair[0]} to itself")
        pairs.append(pair)
    topology = _topology("edges", nodes, nodes, pairs)
    unreached = [v for v, d in enumerate(distances(topology, 0)) if d is None]
    if unreached:
        raise NetworkError(
            f"the edge list leaves node {unreached[0]} unreachable from node 0 "
            f"({len(unreached)} node(s) cut off)"
        )
    return topology


#: name → generator taking the node count (the edge list also takes its edges).
TOPOLOGIES: dict[str, Callable[..., Topology]] = {
    "star": star,
    "ring": ring,
    "mesh": mesh,
    "torus": torus,
    "cube": cube,
    "hypercube": hypercube,
    "edges": edge_list,
}


def build(kind: str, nodes: int, edges: Iterable[Iterable[int]] | None = None) -> Topology:
    """The topology `kind` of `nodes` nodes; `edges` only (and always) for "edges"."""
    generator = TOPOLOGIES.get(kind)
    if generator is None:
        raise NetworkError(f"unknown topology {kind!r} (known: {', '.join(TOPOLOGIES)})")
    if kind == "edges":
        if edges is None:
            raise NetworkError("topology 'edges' needs an edge list")
        return generator(nodes, edges)
    if edges is not None:
        raise NetworkError(f"an edge list is only for topology 'edges', not {kind!r}")
    return generator(nodes)


def distances(topology: Topology, source: int,
              usable: Callable[[int, int], bool] | None = None) -> list[int | None]:
    """Hop counts from `source` to every vertex by breadth-first search (None: unreachable);
    `usable(a, b)` can exclude links (faults)."""
    dist: list[int | None] = [None] * topology.vertices
    dist[source] = 0
    queue = deque([source])
    adjacency = topology.adjacency
    while queue:
        v = queue.popleft()
        for w in adjacency[v]:
            if dist[w] is None and (usable is None or usable(v, w)):
                dist[w] = dist[v] + 1
                queue.append(w)
    return dist


@attrs.frozen
class Metrics:
    """Graph figures of a topology, found by search."""

    nodes: int
    switches: int
    links: int
    #: (smallest, largest) number of links at a node
    degree: tuple[int, int]
    #: the longest shortest path between two nodes, in links
    diameter: int
    #: mean shortest path between distinct nodes, in links
    mean_hops: float
    #: fewest links cut by splitting the nodes into two equal halves
    bisection: int
    #: True when `bisection` is the exhaustive minimum; False: the cut between the lower- and the
    #: upper-numbered halves (the dimension cut of the regular topologies), an upper bound
    bisection_exact: bool


def metrics(topology: Topology) -> Metrics:
    """Degree, links, diameter, mean distance and bisection width of `topology`."""
    n = topology.nodes
    diameter, total = 0, 0
    for s in range(n):
        dist = distances(topology, s)
        for d in dist[:n]:
            if d is None:
                raise NetworkError(f"{topology.name} is not connected")
            total += d
            diameter = max(diameter, d)
    degrees = [len(topology.adjacency[v]) for v in range(n)]
    exact = n <= EXACT_BISECTION_MAX_NODES
    return Metrics(
        nodes=n,
        switches=topology.switches,
        links=len(topology.edges),
        degree=(min(degrees), max(degrees)),
        diameter=diameter,
        mean_hops=total / (n * (n - 1)),
        bisection=_bisection(topology) if exact else _halves_cut(topology),
        bisection_exact=exact,
    )


def _cut(topology: Topology, side_of: list[int]) -> int:
    return sum(1 for a, b in topology.edges if side_of[a] != side_of[b])


def _halves_cut(topology: Topology) -> int:
    n = topology.nodes
    side = [0 if v < n // 2 else 1 for v in range(n)]
    best = None
    for switch_sides in range(1 << topology.switches):
        full = side + [(switch_sides >> i) & 1 for i in range(topology.switches)]
        cut = _cut(topology, full)
        best = cut if best is None else min(best, cut)
    return best


def _bisection(topology: Topology) -> int:
    """Exhaustive: every split of the nodes into halves (node 0 fixed on side A), every placement
    of the switches; bitmask arithmetic keeps 16 nodes well under a second."""
    n, v = topology.nodes, topology.vertices
    masks = [0] * v
    for a, b in topology.edges:
        masks[a] |= 1 << b
        masks[b] |= 1 << a
    full = (1 << v) - 1
    best = None
    switch_ids = list(range(n, v))
    for rest in combinations(range(1, n), n // 2 - 1):
        side_a = 1
        for x in rest:
            side_a |= 1 << x
        for k in range(1 << len(switch_ids)):
            a = side_a
            for i, s in enumerate(switch_ids):
                if k >> i & 1:
                    a |= 1 << s
            b = full & ~a
            cut = 0
            x = a
            while x:
                low = x & -x
                cut += (masks[low.bit_length() - 1] & b).bit_count()
                x ^= low
            if best is None or cut < best:
                best = cut
    return best
