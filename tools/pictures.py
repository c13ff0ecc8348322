"""The pictures of the measuring commands (`--plot FILE`), built from their results.

Each function turns what a command measured into a `toyvisor.tools.plot` chart; nothing here
measures or prices anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from toyvisor.vmm import costs
from toyvisor.vmm.costs import split_key

from . import plot

#: Adams & Agesen, ASPLOS 2006, §6.3 (Pentium 4), cycles per iteration, as docs/nanobench.md
#: quotes them: "native", "BT" (VMware's software VMM) and "HW" (first-generation VT-x).  Only
#: the figures the paper states as numbers; its approximate ones ("native + ≈2,000", "≈4× BT",
#: "fifteen times faster") are left out.  ptemod's native figure is its "a single cycle store".
PAPER_CYCLES = {
    "in": {"native": 3209, "HW": 15826},
    "cr8wr": {"BT": 35},
    "call/ret": {"native": 11, "BT": 51, "HW": 11},
    "pgfault": {"native": 1093, "BT": 3927, "HW": 11242},
    "divzero": {"native": 889, "BT": 3223, "HW": 1014},
    "ptemod": {"native": 1, "BT": 391, "HW": 12733},
}
PAPER_SYSTEMS = ("native", "BT", "HW")
#: cost keys shown one by one in `compare_chart`; the rest add up to "other"
TOP_EVENTS = 9


def compare_chart(results: Sequence, cost_model: str | costs.CostModel | None = None,
                  guest: str = "") -> plot.Chart:
    """Estimated cycles per strategy, stacked by priced event (`toyvisor compare --plot`)."""
    model = cost_model if isinstance(cost_model, costs.CostModel) else costs.resolve(cost_model)
    strategies = [str(r.strategy) for r in results]
    per_run = []
    for result in results:
        parts: dict[str, int] = {}
        for key, cycles in model.breakdown(result.events).items():
            event = split_key(key)[0]
            parts[event] = parts.get(event, 0) + cycles
        per_run.append(parts)
    totals: dict[str, int] = {}
    for parts in per_run:
        for event, cycles in parts.items():
            totals[event] = totals.get(event, 0) + cycles
    ranked = [e for e, total in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])) if total]
    shown, rest = ranked[:TOP_EVENTS], ranked[TOP_EVENTS:]
    series = {event: [parts.get(event, 0) for parts in per_run] for event in shown}
    if rest:
        series["other"] = [sum(parts.get(e, 0) for e in rest) for parts in per_run]
    title = f"{guest}: estimated cycles by event ({model.name})" if guest else \
        f"estimated cycles by event ({model.name})"
    return plot.bars(title, strategies, series, stacked=True, ylabel="cycles")


def nanobench_chart(table) -> plot.Chart:
    """Cycles per iteration of each benchmark per strategy, log scale, with the paper's figures
    beside ours (`toyvisor nanobench --plot`).  A value ≤ 0 cannot be drawn on a log scale and
    is left out (the tables print it)."""
    series: dict[str, list[float | None]] = {}
    for strategy in table.strategies:
        values = [table.cycles(b, strategy) for b in table.benchmarks]
        series[strategy] = [v if v > 0 else None for v in values]
    for system in PAPER_SYSTEMS:
        values = [PAPER_CYCLES.get(b, {}).get(system) for b in table.benchmarks]
        if any(v is not None for v in values):
            series[f"paper {system}"] = values
    return plot.bars(f"nanobench: toyvisor ({table.cost_model}) and the paper",
                     list(table.benchmarks), series, log=True,
                     ylabel="cycles per iteration (log)")


def ptbench_chart(table) -> plot.Chart:
    """Estimated cycles to build N mappings, one line per strategy (`toyvisor ptbench --plot`)."""
    series = {s: [(n, table.cell(n, s).cycles) for n in table.ns] for s in table.strategies}
    if all(cycles > 0 for points in series.values() for _, cycles in points):
        return plot.lines(f"ptbench: cycles to map N pages ({table.cost_model})",
                          "N (page mappings)", "cycles (log)", series, log=True)
    return plot.lines(f"ptbench: cycles to map N pages ({table.cost_model})",
                      "N (page mappings)", "cycles", series)


__all__ = ["PAPER_CYCLES", "compare_chart", "nanobench_chart", "ptbench_chart"]
