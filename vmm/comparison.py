"""Run one guest natively and under several VMM strategies, priced by one cost model.

This is the engine of ``toyvisor compare``; `toyvisor.vmm.compare` renders what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from . import costs
from .result import VMRunResult
from .strategies import STRATEGIES, StrategyError, load_builtin, make_strategy

#: The order strategies appear in a comparison (registered ones not listed here come last).
PREFERRED_ORDER = ("native", "trap-emulate", "binary-translation", "hardware-assisted",
                   "paravirtual")


def default_specs(guest=None) -> tuple[str, ...]:
    """Every registered strategy in every variant: ``native``, ``trap-emulate:0/1/3``, ...

    Strategies that run a port of the kernel (``paravirtual``) are included only for a `guest`
    that has one (``pv_source`` in its guest.toml).
    """
    load_builtin()
    has_port = getattr(guest, "pv_image", None) is not None

    def wanted(name: str) -> bool:
        cls = STRATEGIES[name]
        return cls.in_default_comparison or (cls.runs_port and has_port)

    def order(name: str) -> tuple[int, str]:
        known = PREFERRED_ORDER.index(name) if name in PREFERRED_ORDER else len(PREFERRED_ORDER)
        return known, name

    specs = []
    for name in sorted(filter(wanted, STRATEGIES), key=order):
        variants = STRATEGIES[name].variants
        # Variants in their natural order (hardware generation 1 before 2), not default-first.
        specs.extend([f"{name}:{v}" for v in sorted(variants)] if variants else [name])
    return tuple(specs)


def reprice(results: Sequence[VMRunResult], model: costs.CostModel) -> list[VMRunResult]:
    """The results with `cycles` from `model` and `slowdown` relative to the native run."""
    priced = [attrs.evolve(r, cycles=model.cycles(r.events)) for r in results]
    native = next((r.cycles for r in priced if r.strategy == "native"), 0)
    return [attrs.evolve(r, slowdown=r.cycles / native if native else 0.0) for r in priced]


def not_applicable(guest, pcpus: int | None = None) -> list[tuple[str, str]]:
    """(strategy, why) for every registered strategy that cannot host `guest` as an SMP VM
    (`Strategy.smp_unsupported`): empty for one vCPU on one physical CPU."""
    load_builtin()
    if getattr(guest, "cpus", 1) == 1 and (pcpus or 1) == 1:
        return []
    return [(name, cls.smp_unsupported) for name, cls in sorted(STRATEGIES.items())
            if cls.smp_unsupported]


def compare(guest, specs: Sequence[str] | None = None, *,
            cost_model: str | Path | costs.CostModel | None = None,
            placement: str = "system", max_steps: int | None = None,
            progress=None, pcpus: int | None = None) -> list[VMRunResult]:
    """Run `guest` under each strategy spec (default: all) and price every run with one model.

    The native run always comes first (it is the reference for equivalence and slowdown).
    `progress`, if given, is called as ``progress(spec, runs done, runs in all)`` before each run.
    A guest of several CPUs runs as a VM of as many vCPUs on `pcpus` physical CPUs (default: as
    many); by default the strategies in `not_applicable` are left out, named ones are refused.
    """
    from . import run_guest
    from .hypervisor import check_pcpus

    model = cost_model if isinstance(cost_model, costs.CostModel) else costs.resolve(cost_model)
    if pcpus is not None:
        check_pcpus(pcpus)
    skipped = dict(not_applicable(guest, pcpus))
    if specs:
        specs = list(specs)
    else:
        specs = [s for s in default_specs(guest) if s.partition(":")[0] not in skipped]
    for spec in specs:  # fail on a bad name before running anything
        chosen = make_strategy(spec)
        if chosen.name in skipped:
            raise StrategyError(f"{chosen.name}: not applicable to {guest.cpus} vCPUs on "
                                f"{pcpus or guest.cpus} physical CPUs: {skipped[chosen.name]}")
    if "native" not in specs:
        specs.insert(0, "native")
    specs.sort(key=lambda s: s != "native")
    results = []
    for done, spec in enumerate(specs):
        if progress is not None:
            progress(spec, done, len(specs))
        results.append(run_guest(guest, spec, placement=placement, max_steps=max_steps,
                                 pcpus=pcpus))
    return reprice(results, model)


def smp_notes(guest, results: Sequence[VMRunResult], pcpus: int | None = None) -> list[str]:
    """The lines a comparison of an SMP guest adds under its table: the configuration, what
    equivalence was judged on, and each strategy not applicable (and why)."""
    skipped = not_applicable(guest, pcpus)
    physical = pcpus or guest.cpus
    if guest.cpus == 1 and physical == 1:
        return []
    notes = [f"{guest.name}: {guest.cpus} vCPU{'s' * (guest.cpus != 1)} on {physical} physical "
             f"CPU{'s' * (physical != 1)} (native: a machine of {guest.cpus} CPUs)"]
    basis = next((r.equivalence_basis for r in results if r.equivalence_basis), None)
    if basis is not None and guest.cpus > 1:
        notes.append(f"equivalence: {basis} (docs/vmm-design.md, \"SMP VMs\")")
    notes += [f"{name}: not applicable - {why}" for name, why in skipped]
    return notes


__all__ = ["PREFERRED_ORDER", "StrategyError", "compare", "default_specs", "not_applicable",
           "reprice", "smp_notes"]
