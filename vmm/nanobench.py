"""The Adams & Agesen nanobenchmarks per iteration, under every strategy (``toyvisor nanobench``).

For each benchmark of ``guests/nanobench`` and each strategy, `measure` runs the guest (through
`toyvisor.vmm.run_guest`, priced with one cost model) selecting that benchmark through its
console input, and the same for the ``empty`` baseline (the bare loop, ``addi``/``cmpi``/
``jnz``), and reports::

    f(N) = cycles per iteration = (Δcycles(benchmark) - Δcycles(empty)) / N
    VMM entries per iteration   = (Δentries(benchmark) - Δentries(empty)) / N

where Δ is the difference between a run of 2N iterations and a run of N iterations of the same
benchmark. Every run is ``quiet`` (prints nothing) and reads console input of the same length,
and the two runs of one benchmark execute exactly the same code but N more loop iterations, so
everything that happens once per run — booting, parsing the input, the benchmark's own set-up,
binary translation of its code, halting — cancels exactly.

What does not cancel is what a VMM does at its own pace, not per iteration: its timer (one exit
every few thousand guest instructions) lands a whole exit in one run or the other, a quantum
that weighs 1/N in f(N).  So N is chosen per cell: starting from the guest's ``.equ N``
constant, N doubles until f(N) and f(2N) agree within `TOLERANCE` (1 %), and the cell reports
f(2N) with that N; a cell that is still not stable at `MAX_ITERATIONS`, or is negative, is
reported as *unstable* (marked ``~`` with a footnote giving both figures) rather than as a
number to trust. See docs/nanobench.md.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from toyvisor.isa.errors import ToyvisorError

from . import costs
from .comparison import default_specs
from .strategies import make_strategy

#: The benchmarks in the guest's order; `measure` runs all of them by default.
BENCHMARKS = ("syscall", "in", "cr8wr", "call/ret", "pgfault", "divzero", "ptemod", "popf", "cpl")
#: The ones Adams & Agesen measured (the other two are sensitive-instruction probes).
PAPER_BENCHMARKS = ("syscall", "in", "cr8wr", "call/ret", "pgfault", "divzero", "ptemod")
#: The bare loop, subtracted from every benchmark.
BASELINE = "empty"
#: Other spellings the guest accepts.
ALIASES = {"callret": "call/ret"}
#: Every run's console input is padded to this many characters (plus a newline), so that every
#: run reads the same number of bytes at boot.
INPUT_WIDTH = 32
GUEST = "nanobench"
WIDTH = 100
#: f(N) and f(2N) must agree within this share of the larger for a figure to be *stable*
TOLERANCE = 0.01
#: the largest N tried (runs of up to 2 × this many iterations); the guest's count has 7 digits
MAX_ITERATIONS = 12_800
COUNT_DIGITS = 7


class NanobenchError(ToyvisorError):
    """An unknown benchmark, a guest without N, or a guest that did not run cleanly natively."""


def canonical(name: str) -> str:
    """The benchmark's name as the guest prints it (``callret`` → ``call/ret``)."""
    name = ALIASES.get(name, name)
    if name != BASELINE and name not in BENCHMARKS:
        known = ", ".join((BASELINE, *BENCHMARKS, *ALIASES))
        raise NanobenchError(f"unknown benchmark '{name}' (known: {known})")
    return name


def console_input(benchmark: str, count: int, digits: int = 7) -> bytes:
    """The input that makes the guest run only `benchmark`, `count` times, printing nothing:
    ``"<name> <count> quiet"`` with the count zero-padded to `digits`, blank-padded to
    `INPUT_WIDTH` — the same length for every benchmark and count."""
    text = f"{canonical(benchmark)} {count:0{digits}d} quiet"
    if len(text) > INPUT_WIDTH:
        raise NanobenchError(f"console input {text!r} longer than {INPUT_WIDTH} characters")
    return text.ljust(INPUT_WIDTH).encode("ascii") + b"\n"


_EQU_N = re.compile(r"^\s*(?:\.equ\s+N\s*,|N\s*=)\s*([0-9][0-9A-Fa-fxXoObB_]*)\s*(?:;.*)?$",
                    re.MULTILINE)


def iterations_from_source(text: str) -> int:
    """N from the entry source: ``.equ N, 100`` or ``N = 100`` (decimal, 0x, 0o, 0b)."""
    found = _EQU_N.findall(text)
    if len(found) != 1:
        raise NanobenchError("nanobench.s must define N exactly once with a plain number "
                             f"(found {len(found)} definitions)")
    try:
        value = int(found[0], 0)
    except ValueError:
        raise NanobenchError(f"nanobench.s: N = {found[0]!r} is not a number") from None
    if value <= 0:
        raise NanobenchError(f"nanobench.s: N must be positive, not {value}")
    return value


def iterations(guest) -> int:
    """N of a loaded nanobench guest: the assembler's value of the constant ``N`` (the
    ``.equ N`` line, evaluated), else the line itself parsed from the bundled source."""
    value = guest.image.symbols.get("N") if guest.image.symbols else None
    if value is not None:
        if value <= 0:
            raise NanobenchError(f"nanobench: N must be positive, not {value}")
        return int(value)
    from toyvisor.asm.assembler import guests_directory

    source = Path(guests_directory()) / GUEST / "nanobench.s"
    return iterations_from_source(source.read_text(encoding="utf-8"))


@attrs.frozen
class Cell:
    """One benchmark under one strategy, per iteration."""

    benchmark: str
    strategy: str
    cycles_per_iteration: float
    vmm_entries_per_iteration: float
    #: Event counts per iteration (same arithmetic as the cycles); zeros left out.
    events_per_iteration: dict[str, float]
    #: All four runs (benchmark and baseline, N and 2N iterations) equivalent to the bare machine.
    equivalent: bool
    divergence: str | None
    #: Cycles of the runs: benchmark (N, 2N iterations), baseline (N, 2N iterations).
    cycles: tuple[int, int] = (0, 0)
    baseline_cycles: tuple[int, int] = (0, 0)
    vmm_entries: tuple[int, int] = (0, 0)
    baseline_vmm_entries: tuple[int, int] = (0, 0)
    #: N of this figure (the runs had N and 2N iterations)
    iterations: int = 0
    #: f(N/2): the same figure with half the iterations (None: not measured)
    previous: float | None = None
    #: f(N/2) and f(N) agree within `TOLERANCE` and the figure is not negative
    stable: bool = True


def _delta(short, long) -> tuple[int, int, dict[str, int]]:
    if str(short.strategy) != str(long.strategy):
        raise NanobenchError(f"runs under different strategies: {short.strategy}, {long.strategy}")
    events_s, events_l = dict(short.events or {}), dict(long.events or {})
    events = {key: events_l.get(key, 0) - events_s.get(key, 0)
              for key in set(events_s) | set(events_l)}
    return (int(long.cycles) - int(short.cycles),
            int(long.vmm_entries) - int(short.vmm_entries), events)


def per_iteration(benchmark: str, bench: tuple[Any, Any], baseline: tuple[Any, Any],
                  extra: int) -> Cell:
    """The cell of `benchmark` under one strategy from four runs — `bench` and `baseline`, each
    (run with n iterations, run with n + `extra` iterations) — anything with ``strategy``,
    ``cycles``, ``vmm_entries``, ``events``, ``equivalent`` and ``divergence``::

        per iteration = ((bench long - bench short) - (baseline long - baseline short)) / extra
    """
    if extra <= 0:
        raise NanobenchError(f"the runs must differ by a positive number of iterations, not {extra}")
    strategies = {str(run.strategy) for run in (*bench, *baseline)}
    if len(strategies) != 1:
        raise NanobenchError(f"runs under different strategies: {', '.join(sorted(strategies))}")
    cycles_b, entries_b, events_b = _delta(*bench)
    cycles_e, entries_e, events_e = _delta(*baseline)
    events = {}
    for key in sorted(set(events_b) | set(events_e)):
        delta = events_b.get(key, 0) - events_e.get(key, 0)
        if delta:
            events[key] = delta / extra
    runs = (("", bench[0]), ("", bench[1]), (f"baseline '{BASELINE}': ", baseline[0]),
            (f"baseline '{BASELINE}': ", baseline[1]))
    equivalent = all(bool(run.equivalent) for _, run in runs)
    divergence = None
    if not equivalent:
        divergence = next((prefix + str(run.divergence) for prefix, run in runs
                           if not run.equivalent and run.divergence),
                          "no divergence reported")
    return Cell(
        benchmark=benchmark,
        strategy=strategies.pop(),
        cycles_per_iteration=(cycles_b - cycles_e) / extra,
        vmm_entries_per_iteration=(entries_b - entries_e) / extra,
        events_per_iteration=events,
        equivalent=equivalent,
        divergence=divergence,
        cycles=(int(bench[0].cycles), int(bench[1].cycles)),
        baseline_cycles=(int(baseline[0].cycles), int(baseline[1].cycles)),
        vmm_entries=(int(bench[0].vmm_entries), int(bench[1].vmm_entries)),
        baseline_vmm_entries=(int(baseline[0].vmm_entries), int(baseline[1].vmm_entries)),
        iterations=extra,
    )


def agrees(previous: float, current: float, tolerance: float = TOLERANCE) -> bool:
    """f(N) and f(2N) within `tolerance` of the larger in magnitude, and not negative."""
    if current < 0 or previous < 0:
        return False
    return abs(current - previous) <= tolerance * max(abs(current), abs(previous))


@attrs.frozen
class NanobenchTable:
    """Per-iteration costs of each benchmark (rows) under each strategy (columns)."""

    iterations: int
    cost_model: str
    placement: str
    benchmarks: tuple[str, ...]
    strategies: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, benchmark: str, strategy: str) -> Cell:
        benchmark = ALIASES.get(benchmark, benchmark)
        for cell in self.cells:
            if cell.benchmark == benchmark and cell.strategy == strategy:
                return cell
        raise KeyError((benchmark, strategy))

    def cycles(self, benchmark: str, strategy: str) -> float:
        """Cycles per iteration of `benchmark` under `strategy`."""
        return self.cell(benchmark, strategy).cycles_per_iteration

    def unstable(self) -> list[Cell]:
        """The cells whose figure did not settle within `TOLERANCE` (or is negative)."""
        return [cell for cell in self.cells if not cell.stable]


def build_table(runs: Mapping[str, tuple[Sequence[Any], Sequence[Any]]],
                baseline: tuple[Sequence[Any], Sequence[Any]], n: int, *, cost_model: str,
                placement: str) -> NanobenchTable:
    """The table from, for each benchmark and for the baseline, the results of a run of `n`
    iterations and of a run of 2`n` iterations (each: one result per strategy, matched by
    strategy name). The columns follow the baseline's order of strategies."""
    def by_strategy(results):
        return {str(r.strategy): r for r in results}

    base_short, base_long = by_strategy(baseline[0]), by_strategy(baseline[1])
    strategies = tuple(str(r.strategy) for r in baseline[0])
    cells = []
    for benchmark, (short, long) in runs.items():
        short, long = by_strategy(short), by_strategy(long)
        for strategy in strategies:
            try:
                bench = (short[strategy], long[strategy])
                base = (base_short[strategy], base_long[strategy])
            except KeyError:
                raise NanobenchError(f"no run of '{benchmark}' or of the baseline under "
                                     f"{strategy}") from None
            cells.append(per_iteration(benchmark, bench, base, n))
    return NanobenchTable(iterations=n, cost_model=cost_model, placement=placement,
                          benchmarks=tuple(runs), strategies=strategies, cells=tuple(cells))


def _check_native(benchmark: str, results: Sequence[Any]) -> None:
    native = next((r for r in results if str(r.strategy) == "native"), None)
    if native is None:
        return
    if native.stop_reason != "halted" or native.console:
        said = (native.console or "").strip().splitlines()
        why = said[0] if said else f"stopped: {native.stop_reason}"
        raise NanobenchError(f"nanobench did not run '{benchmark}' cleanly on the bare machine "
                             f"({why})")


def without_vmm_timer(result, strategy, model: costs.CostModel):
    """`result` priced with `model`, less the entries of the VMM's own scheduling timer
    (`Strategy.timer_entry`): their number depends on how long the run is in real ticks, not
    on the iterations, and one more or fewer in a run would weigh 1/N in a per-iteration
    figure."""
    events = dict(result.events or {})
    entries = int(result.vmm_entries)
    if strategy.timer_entry is not None:
        cause, event = strategy.timer_entry
        ticks = dict(result.by_cause or {}).get(cause, 0)
        priced = [event] + (["host_syscall"] if result.placement == "hosted" else [])
        for key in priced:
            events[key] = events.get(key, 0) - ticks
            if events[key] < 0:
                raise NanobenchError(f"{strategy.spec}: fewer '{key}' events than timer "
                                     f"entries ({cause})")
        entries -= ticks
    return attrs.evolve(result, events=events, vmm_entries=entries,
                        cycles=model.cycles(events))


def measure(specs: Sequence[str] | None = None, *,
            cost_model: str | Path | costs.CostModel | None = None,
            placement: str = "system", benchmarks: Iterable[str] | None = None,
            guest=None, max_iterations: int = MAX_ITERATIONS,
            tolerance: float = TOLERANCE) -> NanobenchTable:
    """Run each benchmark and the baseline under each strategy (default: `default_specs()`;
    native is always included) and return the per-iteration table, each cell's N doubled from
    the guest's N until its figure is stable (see the module docstring).

    `guest` defaults to the bundled ``nanobench``; pass a loaded guest to measure a modified copy.
    """
    from toyvisor.tools.guest import load_guest

    from . import run_guest

    names = [canonical(name) for name in (benchmarks or BENCHMARKS)]
    names = list(dict.fromkeys(names))  # once each, in the given order
    model = cost_model if isinstance(cost_model, costs.CostModel) else costs.resolve(cost_model)
    specs = list(specs) if specs else list(default_specs())
    for spec in specs:  # fail on a bad name before running anything
        make_strategy(spec)
    strategies = ["native", *[s for s in specs if s != "native"]]
    if guest is None:
        guest = load_guest(GUEST)
    n = iterations(guest)
    limit = max(n, max_iterations)
    if 2 * limit >= 10 ** COUNT_DIGITS:
        raise NanobenchError(f"at most {10 ** COUNT_DIGITS // 2 - 1:,} iterations")
    runs: dict[tuple[str, int, str], Any] = {}

    def run(name: str, count: int, spec: str):
        key = (name, count, spec)
        if key not in runs:
            loaded = attrs.evolve(guest, console_input=console_input(name, count, COUNT_DIGITS))
            budget = guest.max_steps * max(1, -(-count // n))
            result = run_guest(loaded, spec, placement=placement, max_steps=budget)
            runs[key] = without_vmm_timer(result, make_strategy(spec), model)
            if spec == "native":
                _check_native(name, [runs[key]])
        return runs[key]

    def figure(name: str, spec: str, count: int) -> Cell:
        return per_iteration(name, (run(name, count, spec), run(name, 2 * count, spec)),
                             (run(BASELINE, count, spec), run(BASELINE, 2 * count, spec)), count)

    cells = []
    for name in names:
        for spec in strategies:
            count = n
            cell = figure(name, spec, count)
            while True:
                if 2 * count > limit:
                    cell = attrs.evolve(cell, stable=False)
                    break
                count *= 2
                cell = attrs.evolve(figure(name, spec, count),
                                    previous=cell.cycles_per_iteration)
                if agrees(cell.previous, cell.cycles_per_iteration, tolerance):
                    break
            cells.append(cell)
    spelled = tuple(dict.fromkeys(str(run("empty", n, s).strategy) for s in strategies))
    return NanobenchTable(iterations=n, cost_model=model.name, placement=placement,
                          benchmarks=tuple(names), strategies=spelled, cells=tuple(cells))


# -- rendering ---------------------------------------------------------------------------------


def _cycles(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"


def _entries(value: float) -> str:
    return f"{value:.2f}"


def method_text(table: NanobenchTable) -> str:
    """One paragraph: how the figures were made (N, the stability rule, the timer)."""
    return (f"f(N) = (Δcycles(benchmark) - Δcycles({BASELINE})) / N, Δ = run of 2N iterations "
            f"- run of N iterations; N doubles from {table.iterations} until f(N/2) and f(N) "
            f"agree within {TOLERANCE:.0%} (at most {MAX_ITERATIONS:,}); the entries of the "
            "VMM's own scheduling timer are left out (they come with run time, not with "
            "iterations).")


def unstable_text(cell: Cell) -> str:
    previous = "-" if cell.previous is None else _cycles(cell.previous)
    return (f"f({cell.iterations // 2:,}) = {previous}, f({cell.iterations:,}) = "
            f"{_cycles(cell.cycles_per_iteration)} cycles per iteration")


def format_cycles(cell: Cell) -> str:
    """A cell's cycles as the tables print them (``~`` before an unstable figure)."""
    return ("" if cell.stable else "~") + _cycles(cell.cycles_per_iteration)


def _notes(table: NanobenchTable) -> list[Cell]:
    return [cell for cell in table.cells if not cell.equivalent]


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(values):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def render_text(table: NanobenchTable) -> str:
    """Two blocks — cycles per iteration, VMM entries per iteration — with one row per strategy
    and one column per benchmark; ``*`` marks a cell whose runs are not equivalent to the bare
    machine (footnotes below)."""
    notes = _notes(table)
    marked = {(c.benchmark, c.strategy) for c in notes}
    header = ["strategy", *table.benchmarks]

    def rows(value, fmt, marks=True):
        out = []
        for strategy in table.strategies:
            row = [strategy]
            for benchmark in table.benchmarks:
                cell = table.cell(benchmark, strategy)
                if not marks:
                    row.append(fmt(value(cell)))
                    continue
                mark = "*" if (benchmark, strategy) in marked else ""
                row.append(("" if cell.stable else "~") + fmt(value(cell)) + mark)
            out.append(row)
        return out

    lines = [f"nanobench: cycles per iteration (cost profile '{table.cost_model}', "
             f"{table.placement} VMM)", *textwrap.wrap(method_text(table), WIDTH), ""]
    lines += _grid(header, rows(lambda c: c.cycles_per_iteration, _cycles))
    lines += ["", "VMM entries per iteration (the VMM's timer left out)", ""]
    lines += _grid(header, rows(lambda c: c.vmm_entries_per_iteration, _entries))
    lines += ["", "N per benchmark and strategy", ""]
    lines += _grid(header, rows(lambda c: c.iterations, str, marks=False))
    unstable = table.unstable()
    if unstable:
        lines += ["", f"~ not stable: f(N/2) and f(N) differ by more than {TOLERANCE:.0%} (or "
                      "the figure is negative) at the largest N tried:"]
        for cell in unstable:
            lines += [f"  {cell.benchmark} under {cell.strategy}: {unstable_text(cell)}"]
    if notes:
        lines += ["", "* not equivalent to the bare machine:"]
        for cell in notes:
            first = (cell.divergence or "no divergence reported").strip().splitlines()[0]
            lines += textwrap.wrap(f"{cell.benchmark} under {cell.strategy}: {first}", WIDTH,
                                   initial_indent="  ", subsequent_indent="      ")
    return "\n".join(lines) + "\n"


def render_markdown(table: NanobenchTable) -> str:
    """Markdown: one row per benchmark, one column per strategy (cycles per iteration, then VMM
    entries per iteration), footnotes for non-equivalent runs."""
    notes = _notes(table)
    numbers = {(c.benchmark, c.strategy): i for i, c in enumerate(notes, 1)}
    head = "| benchmark | " + " | ".join(f"`{s}`" for s in table.strategies) + " |"
    rule = "| --- |" + " ---: |" * len(table.strategies)

    def block(value, fmt, marks=True):
        out = [head, rule]
        for benchmark in table.benchmarks:
            cells = []
            for strategy in table.strategies:
                cell = table.cell(benchmark, strategy)
                if not marks:
                    cells.append(fmt(value(cell)))
                    continue
                note = numbers.get((benchmark, strategy))
                cells.append(("" if cell.stable else "~") + fmt(value(cell))
                             + (f" [{note}]" if note else ""))
            out.append(f"| `{benchmark}` | " + " | ".join(cells) + " |")
        return out

    lines = [f"Cycles per iteration (cost profile `{table.cost_model}`, {table.placement} VMM). "
             + method_text(table), ""]
    lines += block(lambda c: c.cycles_per_iteration, _cycles)
    lines += ["", "VMM entries per iteration (the VMM's timer left out):", ""]
    lines += block(lambda c: c.vmm_entries_per_iteration, _entries)
    lines += ["", "N of each figure:", ""]
    lines += block(lambda c: c.iterations, lambda v: f"{v:,}", marks=False)
    unstable = table.unstable()
    if unstable:
        lines += ["", f"~ Not stable: f(N/2) and f(N) differ by more than {TOLERANCE:.0%} (or the "
                      "figure is negative) at the largest N tried: "
                  + "; ".join(f"`{c.benchmark}` under `{c.strategy}`: {unstable_text(c)}"
                              for c in unstable) + "."]
    for number, cell in enumerate(notes, 1):
        text = " ".join((cell.divergence or "no divergence reported").split())
        lines += ["", f"[{number}] `{cell.benchmark}` under `{cell.strategy}` is not equivalent "
                      f"to the bare machine: {text}"]
    return "\n".join(lines) + "\n"


def to_json(table: NanobenchTable) -> dict[str, Any]:
    """A JSON-ready object: the settings and one record per (benchmark, strategy)."""
    return {
        "iterations": table.iterations,
        "cost_model": table.cost_model,
        "placement": table.placement,
        "baseline": BASELINE,
        "method": method_text(table) + " cycles, vmm_entries: [N run, 2N run] of each cell's N",
        "tolerance": TOLERANCE,
        "max_iterations": MAX_ITERATIONS,
        "benchmarks": list(table.benchmarks),
        "strategies": list(table.strategies),
        "results": [{
            "benchmark": c.benchmark,
            "strategy": c.strategy,
            "cycles_per_iteration": c.cycles_per_iteration,
            "vmm_entries_per_iteration": c.vmm_entries_per_iteration,
            "events_per_iteration": dict(sorted(c.events_per_iteration.items())),
            "equivalent": c.equivalent,
            "divergence": c.divergence,
            "cycles": list(c.cycles),
            "baseline_cycles": list(c.baseline_cycles),
            "vmm_entries": list(c.vmm_entries),
            "baseline_vmm_entries": list(c.baseline_vmm_entries),
            "n": c.iterations,
            "previous_cycles_per_iteration": c.previous,
            "stable": c.stable,
        } for c in table.cells],
    }


def dumps(table: NanobenchTable) -> str:
    return json.dumps(to_json(table), indent=2) + "\n"


__all__ = ["ALIASES", "BASELINE", "BENCHMARKS", "Cell", "NanobenchError", "NanobenchTable",
           "MAX_ITERATIONS", "PAPER_BENCHMARKS", "TOLERANCE", "agrees", "build_table",
           "canonical", "console_input", "format_cycles", "iterations", "method_text",
           "without_vmm_timer",
           "iterations_from_source", "measure", "per_iteration", "render_markdown",
           "render_text", "to_json"]
