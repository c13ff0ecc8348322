"""What one policy did with one workload (immutable, JSON-ready)."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class PolicyRun:
    policy: str
    pcpus: int
    quantum: int
    slot: int
    #: host ticks until the last vCPU halted
    makespan: int
    #: ticks the physical CPUs ran vCPUs (summed over CPUs)
    busy_ticks: int
    #: P x makespan - busy: CPU time nothing ran
    idle_ticks: int
    utilization: float
    guest_instructions: int
    #: a physical CPU switched from one vCPU to another
    context_switches: int
    #: ... of another VM (the real cr3, the VM's whole context)
    world_switches: int
    #: guest instructions in the lock and barrier spin loops
    spin_instructions: int
    #: vCPUs preempted while holding a spinlock (the guest's flag was set)
    lock_holder_preemptions: int
    queue_lock_acquisitions: int
    #: run-queue operations that found the lock held by another CPU at the same instant
    queue_lock_contended: int
    queue_lock_wait_cycles: int
    #: None when the cache model is off
    cache_hits: int | None
    cache_misses: int | None
    #: a vCPU ran on another physical CPU than the last time
    migrations: int
    #: the run priced: guest instructions, a VM exit and entry per context switch, a world
    #: switch and a TLB flush per switch of VM (the default cost profile's prices), the
    #: run-queue lock's waits, and each cache miss at `miss_cycles`
    estimated_cycles: int
    #: pause-loop exits (the ple policy)
    ple_exits: int
    #: one row per slot, one cell per physical CPU: the vCPU that ran longest in it ("" none)
    matrix: tuple[tuple[str, ...], ...]
    #: each VM's console output, (VM name, text), in arrival order: the guest-visible outcome
    consoles: tuple[tuple[str, str], ...]
    #: Gantt spans (lane, start, end, vCPU)
    spans: tuple[tuple[str, int, int, str], ...]

    def to_dict(self, spans: bool = False) -> dict[str, Any]:
        data = attrs.asdict(self, filter=lambda field, _v: spans or field.name != "spans")
        data["matrix"] = [list(row) for row in self.matrix]
        data["consoles"] = dict(self.consoles)
        if spans:
            data["spans"] = [list(span) for span in self.spans]
        return data


__all__ = ["PolicyRun"]
