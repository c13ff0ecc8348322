"""Affinity scheduling: timesharing's shared queue, but a CPU takes the first ready vCPU that last
ran on it (its cache may still hold that vCPU's lines), then one that never ran, and only then
any other.  The queue and its lock stay shared.
"""

from __future__ import annotations

from .timesharing import Timesharing


class Affinity(Timesharing):
    name = "affinity"
    summary = "timesharing, each CPU prefers the vCPUs that last ran on it"
    order = 4

    def choose(self, cpu: int):
        vcpu = self.queue.pop(prefer=lambda v: v.last_pcpu == cpu)
        if vcpu is None:
            vcpu = self.queue.pop(prefer=lambda v: v.last_pcpu is None)
        return vcpu if vcpu is not None else self.queue.pop()


POLICY = Affinity
