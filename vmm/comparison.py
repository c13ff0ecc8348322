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


def compare(guest, specs: Sequence[str] | None = None, *,
            cost_model: str | Path | costs.CostModel | None = None,
            placement: str = "system", max_steps: int | None = None,
            progress=None) -> list[VMRunResult]:
    """Run `guest` under each strategy spec (default: all) and price every run with one model.

    The native run always comes first (it is the reference for equivalence and slowdown).
    `progress`, if given, is called as ``progress(spec, runs done, runs in all)`` before each run.
    """
    from . import run_guest

    model = cost_model if isinstance(cost_model, costs.CostModel) else costs.resolve(cost_model)
    specs = list(specs or default_specs(guest))
    for spec in specs:  # fail on a bad name before running anything
        make_strategy(spec)
    if "native" not in specs:
        specs.insert(0, "native")
    specs.sort(key=lambda s: s != "native")
    results = []
    for done, spec in enumerate(specs):
        if progress is not None:
            progress(spec, done, len(specs))
        results.append(run_guest(guest, spec, placement=placement, max_steps=max_steps))
    return reprice(results, model)


__all__ = ["PREFERRED_ORDER", "StrategyError", "compare", "default_specs", "reprice"]
