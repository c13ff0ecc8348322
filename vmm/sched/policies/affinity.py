"""Affinity scheduling: timesharing's shared queue, but a CPU takes the first ready vCPU that last
ran on it (its cache may still hold that vCPU's lines), then one that never ran, and only then
the queue's head.  A preference looks only at the first P vCPUs of the highest non-empty level
(P = the number of CPUs), so a vCPU that is passed over reaches that window and runs: preferring
without a bound starves the rest (a CPU would take back its own spinning vCPU forever, while the
vCPU it waits for never runs).  The queue and its lock stay shared.
"""

from __future__ import annotations

from .timesharing import Timesharing


class Affinity(Timesharing):
    name = "affinity"
    summary = "timesharing, each CPU prefers the vCPUs that last ran on it"
    order = 4

    def choose(self, cpu: int):
        window = self.params.pcpus
        vcpu = self.queue.pop(prefer=lambda v: v.last_pcpu == cpu, window=window)
        if vcpu is None:
            vcpu = self.queue.pop(prefer=lambda v: v.last_pcpu is None, window=window)
        return vcpu if vcpu is not None else self.queue.pop()


POLICY = Affinity
