"""`VMRunResult`: what one run of a guest under a strategy reports (docs/vmm-design.md)."""

from __future__ import annotations

from typing import Any

import attrs


def _frozen_dict(value: Any) -> dict:
    return dict(sorted(dict(value).items()))


@attrs.frozen
class VMRunResult:
    """The result shape shared by every strategy, native included (see docs/vmm-design.md)."""

    strategy: str
    placement: str
    guest: str
    halted: bool
    stop_reason: str
    #: Guest instructions retired (directly executed + emulated/translated).
    guest_instructions: int
    #: Every guest→VMM transfer (traps, exits, callouts, hypercalls); 0 natively.
    vmm_entries: int
    #: Guest-visible causes as on bare metal plus VMM entries by cause (``vmm:*``).
    by_cause: dict[str, int] = attrs.field(converter=_frozen_dict)
    #: Priced events (see the table in docs/vmm-design.md); absent means 0.
    events: dict[str, int] = attrs.field(converter=_frozen_dict)
    emulated_instructions: int = 0
    callouts: int = 0
    blocks_translated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    invalidations: int = 0
    console: str = ""
    equivalent: bool = True
    divergence: str | None = None
    #: What `equivalent` was judged on: the final machine state (``"state: ..."``), or for a
    #: port the guest-visible outcome (``"outcome: ..."``, `toyvisor.vmm.outcome`); None when
    #: no check ran (native, or ``check_equivalence=False``).
    equivalence_basis: str | None = None
    resource_violations: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: Share of guest instructions executed without VMM intervention.
    efficiency: float = 1.0
    cycles: int = 0
    slowdown: float = 0.0
    #: For a triple fault: the report (pc, cause chain, registers).
    fault_report: str | None = None
    #: For a paravirtual run: the hypercalls the VMM refused and why, oldest first
    #: (`toyvisor.vmm.paravirt.log.Refusal`; what Xen's ``xl dmesg`` shows).
    refusals: tuple = attrs.field(default=(), converter=tuple)
    #: The VM's vCPUs and the physical CPUs of its host (natively: the machine's CPUs, twice)
    vcpus: int = 1
    pcpus: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``vcpus``/``pcpus`` only for an SMP run)."""
        data = attrs.asdict(self)
        data["resource_violations"] = list(self.resource_violations)
        data["refusals"] = [r.to_dict() for r in self.refusals]
        if self.vcpus == 1 and self.pcpus == 1:
            del data["vcpus"], data["pcpus"]
        return data


def cost_cycles(events: dict[str, int]) -> int:
    """Cycles of `events` under the default cost model, or 0 while no cost model exists."""
    try:
        from toyvisor.vmm.costs import default_model
    except ImportError:
        return 0
    return int(default_model().cycles(events))


__all__ = ["VMRunResult", "cost_cycles"]
