"""Multiprocessor runs side by side: one guest on several CPU counts (``toyvisor smp``), the
figures of docs/multiprocessor.md.

    >>> table = scaling_table(load_guest("smpkernel"), cpus=(1, 2, 4, 8))
    >>> print(render(table, markdown=True))

Everything here is a count from the machine (instructions, ticks, idle ticks, IPIs, cache
hits and misses, the guest's own printed answers): deterministic, so the docs can quote it and a
test can regenerate it.
"""

from __future__ import annotations

import re
import time

import attrs

from toyvisor.cpu import RunResult
from toyvisor.cpu.cache import CacheGeometry
from toyvisor.cpu.machine import check_cpus

from . import runner
from .guest import Guest

#: The CPU counts `toyvisor smp` compares by default (the issue's 1, 2, 4, 8).
DEFAULT_CPUS = (1, 2, 4, 8)

#: smpkernel's answers, as it prints them (name -> pattern with one group).
_ANSWERS = (
    ("locked", r"locked counter: (\d+)"),
    ("unlocked", r"unlocked counter: (\d+)"),
    ("lost", r"\((\d+) updates lost\)"),
    ("sum", r"parallel sum of squares 1\.\.1024: (\d+)"),
)


@attrs.frozen
class ScalingRow:
    """One run of the guest: the machine's figures and the CPUs' spread."""

    cpus: int
    stop_reason: str
    guest_instructions: int
    #: the furthest CPU's clock: the run's length in guest time
    ticks: int
    idle_ticks: int
    #: retired instructions of the busiest and the least busy CPU
    busiest: int
    least_busy: int
    ipis: int
    #: `pause` instructions retired: the spin loops' iterations
    pauses: int
    cache_hits: int
    cache_misses: int
    cache_invalidations: int
    #: the answers the guest printed, when it is smpkernel (else empty)
    answers: dict[str, int]
    #: with timing: guest instructions per host CPU second (process time, the best of the
    #: repeats: what other processes on a shared host take is not counted), else None
    host_mips: float | None = None


@attrs.frozen
class ScalingTable:
    guest: str
    engine: str
    interleave: int
    cache: str | None
    rows: tuple[ScalingRow, ...]
    #: runs per CPU count timed (0: not timed)
    timed: int = 0


def answers(console: str) -> dict[str, int]:
    """smpkernel's printed answers (locked, unlocked, lost, sum); empty for another guest."""
    found = {}
    for name, pattern in _ANSWERS:
        match = re.search(pattern, console)
        if match:
            found[name] = int(match[1])
    return found


def row(cpus: int, result: RunResult, host_mips: float | None = None) -> ScalingRow:
    per_cpu = result.per_cpu
    return ScalingRow(
        cpus=cpus, stop_reason=result.stop_reason,
        guest_instructions=result.guest_instructions, ticks=result.ticks,
        idle_ticks=result.idle_ticks,
        busiest=max(c.guest_instructions for c in per_cpu),
        least_busy=min(c.guest_instructions for c in per_cpu),
        ipis=sum(c.ipis_sent for c in per_cpu),
        pauses=sum(c.pauses for c in per_cpu),
        cache_hits=sum(c.cache_hits for c in per_cpu),
        cache_misses=sum(c.cache_misses for c in per_cpu),
        cache_invalidations=sum(c.cache_invalidations for c in per_cpu),
        answers=answers(result.console),
        host_mips=host_mips,
    )


def scaling_table(guest: Guest, cpus: tuple[int, ...] = DEFAULT_CPUS, *,
                  engine: str = "interpreter", interleave: int | None = None,
                  cache: CacheGeometry | None = None, timed: int = 0) -> ScalingTable:
    """Run `guest` once per CPU count (its own interleave unless `interleave` is given); with
    `timed` > 0, `timed` more runs of each are timed in host CPU time, interleaved by round so
    that a busy host slows every count alike."""
    configured = [runner.with_overrides(guest, cpus=check_cpus(count), interleave=interleave)
                  for count in cpus]
    results = [runner.run(each, engine=engine, cache=cache) for each in configured]
    best = [0.0] * len(cpus)
    for _round in range(timed):
        for index, each in enumerate(configured):
            machine = runner.boot(each, cache)
            started = time.process_time()
            result = machine.run(each.max_steps, engine=engine)
            seconds = max(time.process_time() - started, 1e-9)
            best[index] = max(best[index], result.guest_instructions / seconds / 1e6)
    rows = tuple(row(count, result, best[index] if timed else None)
                 for index, (count, result) in enumerate(zip(cpus, results)))
    chosen = runner.with_overrides(guest, interleave=interleave).interleave
    return ScalingTable(guest.name, engine, chosen, None if cache is None else str(cache), rows,
                        timed)


def render(table: ScalingTable, markdown: bool = False) -> str:
    """The table as text (or a Markdown table)."""
    headers = ["CPUs", "stop", "instructions", "ticks", "idle ticks", "busiest CPU",
               "least busy CPU", "IPIs", "pauses"]
    if table.cache is not None:
        headers += ["cache hits", "cache misses", "invalidations"]
    names = [name for name, _ in _ANSWERS if any(name in r.answers for r in table.rows)]
    headers += names
    if table.timed:
        headers += ["host MIPS (CPU time)", "x 1st row"]
    body = []
    for r in table.rows:
        cells = [str(r.cpus), r.stop_reason, f"{r.guest_instructions:,}", f"{r.ticks:,}",
                 f"{r.idle_ticks:,}", f"{r.busiest:,}", f"{r.least_busy:,}", f"{r.ipis:,}", f"{r.pauses:,}"]
        if table.cache is not None:
            cells += [f"{r.cache_hits:,}", f"{r.cache_misses:,}", f"{r.cache_invalidations:,}"]
        cells += [f"{r.answers[n]:,}" if n in r.answers else "-" for n in names]
        if table.timed:
            first = table.rows[0].host_mips
            cells += [f"{r.host_mips:.2f}", f"{r.host_mips / first:.2f}"]
        body.append(cells)
    title = (f"{table.guest} on the {table.engine} engine, interleave {table.interleave}"
             + (f", caches {table.cache}" if table.cache is not None else "")
             + (f", best of {table.timed} timed runs" if table.timed else ""))
    if markdown:
        lines = [title + ":", "", "| " + " | ".join(headers) + " |",
                 "| " + " | ".join("---" for _ in headers) + " |"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(headers)]
    lines = [title, "  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cells, widths)) for cells in body]
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_CPUS", "ScalingRow", "ScalingTable", "answers", "render", "row",
           "scaling_table"]
