"""What a migration reports: its phases, its rounds and its totals (immutable values)."""

from __future__ import annotations

from typing import Any

import attrs

#: the flashcard's six steps (seed 002, §9), in their order for pre-copy
PHASES = ("choose-hosts", "init-container", "pre-copy", "suspend-copy", "commit", "resume")
#: post-copy runs the rest after the resume: its own phase between resume and commit
POST_COPY_PHASE = "post-copy"


@attrs.frozen
class Phase:
    """One named step: when it started and ended on the migration's clock (ticks)."""

    name: str
    start: int
    end: int
    detail: str = ""


@attrs.frozen
class Round:
    """One round of page copying."""

    number: int
    pages_sent: int
    #: pages the guest dirtied while the round ran (what the next round has to send)
    pages_dirtied: int
    wire_bytes: int
    ticks: int
    #: the share of the vCPU's time auto-converge took away during the round
    throttle: float = 0.0
    #: False for the last copy, made with the VM suspended
    live: bool = True


@attrs.frozen
class MigrationResult:
    """The outcome of one migration of one guest under one strategy with one method."""

    guest: str
    strategy: str
    method: str
    bandwidth: float
    latency: int
    at: int
    compression: tuple[str, ...]
    memory_pages: int
    #: "migrated", "aborted" (the link failed: the VM kept running at the source) or "lost"
    outcome: str
    phases: tuple[Phase, ...]
    rounds: tuple[Round, ...]
    stop_reason: str
    total_ticks: int
    downtime_ticks: int
    pages_sent: int
    wire_bytes: int
    raw_bytes: int
    pages_by_encoding: tuple[tuple[str, int], ...]
    network_faults: int
    fault_stall_ticks: int
    #: the most times any one page was sent
    max_sends_per_page: int
    dirty_log: str
    dirty_log_faults: int
    #: pages whose destination copy differed from the source at the switch-over (must be empty)
    stale_pages: tuple[int, ...]
    equivalent: bool
    divergence: str | None
    cycles: int
    unmigrated_cycles: int
    #: the resource-control findings of the hypervisor the VM ended on (docs/vmm-design.md)
    resource_violations: tuple[str, ...] = ()
    #: paravirtual: pfns the destination put on other machine frames (its p2m changed)
    remapped_frames: int = 0
    #: paravirtual: what the domain's suspend hypercall returned (0 resumed in a new domain,
    #: 1 cancelled), None if it never suspended
    resume_value: int | None = None
    log: tuple[str, ...] = attrs.field(repr=False, default=())
    #: the console of the migrated run (what the guest printed, at the source then the
    #: destination)
    console: str = attrs.field(repr=False, default="")

    @property
    def bytes_saved(self) -> int:
        return self.raw_bytes - self.wire_bytes

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=True)
        data["phases"] = [attrs.asdict(p) for p in self.phases]
        data["rounds"] = [attrs.asdict(r) for r in self.rounds]
        data["pages_by_encoding"] = dict(self.pages_by_encoding)
        data["compression"] = list(self.compression)
        data["stale_pages"] = list(self.stale_pages)
        data["log"] = list(self.log)
        data["resource_violations"] = list(self.resource_violations)
        data["bytes_saved"] = self.bytes_saved
        return data


__all__ = ["MigrationResult", "PHASES", "POST_COPY_PHASE", "Phase", "Round"]
