"""Run a workload under several policies: the API `toyvisor sched` is a thin layer over."""

from __future__ import annotations

from collections.abc import Sequence

from toyvisor.cpu.cache import CacheGeometry

from .errors import SchedError
from .host import MISS_CYCLES, Hypervisor
from .policy import load_policy, policy_names
from .result import PolicyRun
from .workload import Workload

_UNSET = object()


def simulate(workload: Workload, policies: Sequence[str] = (), *, pcpus: int | None = None,
             quantum: int | None = None, slot: int | None = None,
             cache: CacheGeometry | None | object = _UNSET, lock_cost: int = 40,
             ple_gap: int = 128, ple_window: int = 4096, miss_cycles: int = MISS_CYCLES,
             engine: str = "interpreter") -> list[PolicyRun]:
    """One `PolicyRun` per policy (default: every bundled policy), each on fresh VMs."""
    names = list(policies) or policy_names()
    classes = [load_policy(name) for name in names]
    count = pcpus if pcpus is not None else workload.pcpus
    if count is None:
        raise SchedError(f"{workload.path}: give the number of physical CPUs (--pcpus or a "
                         f"'pcpus' key)")
    if count < 1:
        raise SchedError(f"the number of physical CPUs must be at least 1, not {count}")
    runs = []
    for policy in classes:
        host = Hypervisor(workload, policy, pcpus=count,
                          quantum=workload.quantum if quantum is None else quantum,
                          slot=workload.slot if slot is None else slot,
                          cache=workload.cache if cache is _UNSET else cache,
                          lock_cost=lock_cost, ple_gap=ple_gap, ple_window=ple_window,
                          miss_cycles=miss_cycles,
                          engine=engine)
        runs.append(host.run())
    return runs


__all__ = ["simulate"]
