"""Smart scheduling: timesharing, but a vCPU whose quantum ends while it holds a spinlock gets an
extra quantum, so the lock is released before its holder is preempted.

The guest's lock library (guests/sched/sched.s) counts the spinlocks each vCPU holds in a word of
guest memory the hypervisor reads — the seed's "flag speciale", as paravirtual spinlocks do.  One
extra quantum at a time: a holder still inside after it is preempted (so a guest cannot keep a
CPU by never releasing).
"""

from __future__ import annotations

from .timesharing import Timesharing


class Smart(Timesharing):
    name = "smart"
    summary = "timesharing + an extra quantum for a vCPU holding a spinlock (guest flag)"
    order = 2

    def __init__(self, params) -> None:
        super().__init__(params)
        self._extended: set = set()

    def blocked(self, vcpu, now: int) -> None:
        self._extended.discard(vcpu)  # a new quantum when it wakes: no extension pending

    def extend(self, vcpu, now: int) -> bool:
        if vcpu in self._extended:
            self._extended.discard(vcpu)
            return False
        if vcpu.holds_lock():
            self._extended.add(vcpu)
            return True
        return False


POLICY = Smart
