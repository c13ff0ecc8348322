"""toyvisor.cpu.net: the multicomputer's hardware — topologies, routing, the cycle-level
interconnect (links, routers, switching, faults) and the network interface device.

See docs/multicomputer.md.
"""

from .errors import NetworkError
from .network import DEADLOCK_AVOIDANCE, SWITCHING, Delivery, Fault, LinkParams, Network
from .routing import dateline_vcs, regular_path, route, shortest_path
from .topology import TOPOLOGIES, Metrics, Topology, build, metrics

__all__ = [
    "DEADLOCK_AVOIDANCE", "Delivery", "Fault", "LinkParams", "Metrics", "Network",
    "NetworkError", "SWITCHING", "TOPOLOGIES", "Topology", "build", "dateline_vcs", "metrics",
    "regular_path", "route", "shortest_path",
]
