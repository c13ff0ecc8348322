"""Timesharing: one multilevel ready queue shared by every physical CPU (the seed's first
algorithm, for independent threads).

Every CPU that needs work takes the queue's one lock, so the lock is contended whenever several
CPUs reach a scheduling point at the same instant — more often as P grows.  A vCPU that used its
whole quantum drops a priority level (down to the lowest); one that wakes from blocking goes back
to its VM's priority, so I/O-bound vCPUs run ahead of CPU-bound ones.
"""

from __future__ import annotations

from ..policy import MultilevelQueue, Policy, QueueLock


class Timesharing(Policy):
    name = "timesharing"
    summary = "one shared multilevel ready queue, one lock, a quantum"
    order = 1

    def __init__(self, params) -> None:
        super().__init__(params)
        self.queue = MultilevelQueue()
        self.lock = QueueLock(params.lock_cost)
        self._level: dict[object, int] = {}

    def ready(self, vcpu, now: int, preempted: bool = False, cpu: int | None = None) -> None:
        self.lock.take(now, cpu)
        base = vcpu.vm.priority
        level = self._level.get(vcpu, base) + 1 if preempted else base
        self._level[vcpu] = min(level, MultilevelQueue.LEVELS - 1)
        self.queue.push(vcpu, self._level[vcpu])

    def choose(self, cpu: int):
        """The vCPU CPU `cpu` takes from the queue (affinity overrides this)."""
        return self.queue.pop()

    def pick(self, cpus: list[int], now: int) -> dict[int, object]:
        chosen = {}
        for cpu in cpus:
            if not len(self.queue):
                break
            self.lock.take(now, cpu)
            chosen[cpu] = self.choose(cpu)
        return chosen

    def locks(self):
        return [self.lock]


POLICY = Timesharing
