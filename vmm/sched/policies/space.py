"""Space sharing: a VM (a group of related vCPUs) starts only when as many CPUs are free as it has
vCPUs; each of its vCPUs then owns one CPU until the VM finishes (no multiprogramming, no context
switches).  A CPU whose vCPU blocks, or has finished while its VM still runs, stays idle.

VMs start in arrival order (first come, first served, no backfilling: a small VM behind a large
one waits, as the seed's "nessun thread è avviato fintantoché non ci sono CPU disponibili"); a VM
with more vCPUs than there are CPUs can never start, and is refused.
"""

from __future__ import annotations

from ..errors import Unschedulable
from ..policy import Policy, QueueLock


class SpaceSharing(Policy):
    name = "space"
    summary = "a VM starts when as many CPUs are free as it has vCPUs; one CPU per vCPU"
    order = 6

    def __init__(self, params) -> None:
        super().__init__(params)
        self.owner: list[object | None] = [None] * params.pcpus
        self.waiting: list = []
        self.lock = QueueLock(params.lock_cost)

    def check(self, vms) -> None:
        for vm in vms:
            if vm.vcpus > self.params.pcpus:
                raise Unschedulable(f"{vm.where}: VM {vm.name} has {vm.vcpus} vCPUs, more than the "
                                 f"{self.params.pcpus} physical CPUs: space sharing can never "
                                 f"start it")

    def arrive(self, vm, now: int) -> None:
        self.waiting.append(vm)
        self._start(now)

    def _start(self, now: int) -> None:
        while self.waiting:
            vm = self.waiting[0]
            free = [cpu for cpu, owner in enumerate(self.owner) if owner is None]
            if len(free) < vm.vcpus:
                return
            self.lock.take(now)
            self.waiting.pop(0)
            for vcpu, cpu in zip(vm.members, free):
                self.owner[cpu] = vcpu

    def finished(self, vcpu, now: int) -> None:
        if all(member.state == "done" for member in vcpu.vm.members):
            for cpu, owner in enumerate(self.owner):
                if owner is not None and owner.vm is vcpu.vm:
                    self.owner[cpu] = None
            self._start(now)

    def pick(self, cpus: list[int], now: int) -> dict[int, object]:
        return {cpu: self.owner[cpu] for cpu in cpus
                if self.owner[cpu] is not None and self.owner[cpu].state == "ready"}

    def locks(self):
        return [self.lock]


POLICY = SpaceSharing
