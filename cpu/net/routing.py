"""Deterministic routing over a `Topology`.

- mesh, torus, cube and ring: **dimension-order** — correct the lowest dimension first (x, then
  y, then z); on a wrapping dimension take the shorter way round, the positive direction on a tie.
- hypercube: **e-cube** — flip the differing address bits from the lowest to the highest.
- star: node → hub switch → node.
- edges, and any route whose regular path crosses a failed link or node: **shortest path** by
  breadth-first search from the destination; at each vertex the lowest-numbered neighbour that
  is one hop closer is taken, so the path is unique and repeatable.

`dateline_vcs` assigns the two virtual channels of the dateline scheme on wrapping dimensions.
"""

from __future__ import annotations

from collections.abc import Callable

from .topology import Topology, distances

#: usable(a, b) → whether the link a→b may be used (faults); None: all may
Usable = Callable[[int, int], bool] | None


def regular_path(topology: Topology, src: int, dst: int) -> tuple[int, ...]:
    """The fault-free route from `src` to `dst` (vertices, both ends included)."""
    kind = topology.kind
    if src == dst:
        return (src,)
    if kind == "star":
        return (src, topology.nodes, dst)
    if kind == "hypercube":
        path, v = [src], src
        diff = src ^ dst
        bit = 1
        while diff:
            if diff & bit:
                v ^= bit
                diff ^= bit
                path.append(v)
            bit <<= 1
        return tuple(path)
    if topology.dims:
        return _dimension_order(topology, src, dst)
    return shortest_path(topology, src, dst)  # type: ignore[return-value]


def _dimension_order(topology: Topology, src: int, dst: int) -> tuple[int, ...]:
    path, v = [src], src
    stride = 1
    for k in topology.dims:
        here, there = (v // stride) % k, (dst // stride) % k
        if topology.wrap:
            forward = (there - here) % k
            step = 1 if forward <= k - forward else -1
        else:
            step = 1 if there > here else -1
        while here != there:
            nxt = (here + step) % k
            v += (nxt - here) * stride
            here = nxt
            path.append(v)
        stride *= k
    return tuple(path)


def shortest_path(topology: Topology, src: int, dst: int,
                  usable: Usable = None) -> tuple[int, ...] | None:
    """A shortest path over usable links (lowest-numbered next hop on ties), or None."""
    back = None if usable is None else (lambda a, b: usable(b, a))
    dist = distances(topology, dst, back)
    if dist[src] is None:
        return None
    path, v = [src], src
    while v != dst:
        v = next(w for w in topology.adjacency[v]
                 if dist[w] is not None and dist[w] == dist[v] - 1
                 and (usable is None or usable(v, w)))
        path.append(v)
    return tuple(path)


def route(topology: Topology, src: int, dst: int, usable: Usable = None,
          ) -> tuple[tuple[int, ...] | None, bool]:
    """(path, rerouted): the regular path if every link of it is usable, otherwise a shortest
    path around the faults (rerouted = True), or (None, True) if the destination is cut off."""
    path = regular_path(topology, src, dst)
    if usable is None or all(usable(a, b) for a, b in zip(path, path[1:])):
        return path, False
    return shortest_path(topology, src, dst, usable), True


def dateline_vcs(topology: Topology, path: tuple[int, ...]) -> tuple[int, ...]:
    """Virtual channel of each hop under the dateline scheme: a packet travels on VC 0 and moves
    to VC 1 when it crosses the wrap-around link of a dimension (coordinate k-1 ↔ 0), back to
    VC 0 when it turns into the next dimension.  VC 1 channels never close a cycle, so the
    channel-dependence graph of each ring is acyclic (Dally & Seitz)."""
    if not topology.wrap:
        return (0,) * (len(path) - 1)
    vcs = []
    dims = topology.dims
    crossed: int | None = None  # the dimension whose dateline was crossed
    for a, b in zip(path, path[1:]):
        stride, d = 1, 0
        for d, k in enumerate(dims):
            if (a // stride) % k != (b // stride) % k:
                break
            stride *= k
        k = dims[d]
        x, y = (a // stride) % k, (b // stride) % k
        if crossed is not None and crossed != d:
            crossed = None
        if {x, y} == {0, k - 1} and k > 2:
            crossed = d
        vcs.append(1 if crossed == d else 0)
    return tuple(vcs)
