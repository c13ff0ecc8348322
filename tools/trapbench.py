"""Where a kernel's host time goes: ``toyvisor bench --trap-heavy`` (docs/performance.md).

A kernel is made of exceptions, system calls, port I/O and timer interrupts, and under a VMM of
the VMM entries they cause.  For each such guest event this measures the host nanoseconds it
costs, natively on every engine and under every VMM strategy:

| event | guest | one iteration |
| --- | --- | --- |
| exception | ``nanobench divzero`` | a ``div`` by zero, #DE delivered, the handler skips it and ``iret``s |
| int/iret pair | ``nanobench syscall`` | ``int 0x80`` to a handler that ``iret``s |
| port access | ``nanobench in`` | one ``in`` from a device port |
| page fault | ``nanobench pgfault`` | a load from an unmapped page, #PF, the handler maps it |
| timer interrupt | ``guests/bench/timer`` | ``hlt``, IRQ 0 delivered, a two-instruction handler, the idle loop's test |

Every event runs at `count` and at twice `count` iterations (the nanobenchmarks through their
``<name> <count> quiet`` console input, the timer guest through its count), and a nanobenchmark's
``empty`` loop likewise; with Δ the difference of the medians of the two sizes,

    host ns per event        = (Δseconds(event) - Δseconds(empty)) / count      (timer: no empty)
    VMM entries per event    = (Δentries(event) - Δentries(empty)) / count
    host ns per VMM entry    = (ns per event under the strategy - ns per event natively on the
                                fastest engine) / VMM entries per event

so everything a run does once (boot, set-up, translation, the report) cancels, and the last
figure is what the VMM adds per entry.  Rounds are interleaved as in `toyvisor.tools.bench`.
Times are the CPU time of this process (`time.process_time`), not wall time: a host shared with
other work stretches wall time by whatever else runs, CPU time much less.
Nothing here is asserted about time; every run must halt and retire the same instructions in
every round (``deterministic``).

    >>> report = measure(count=200, repeat=3)
    >>> report.ns_per_event("int/iret pair", "native/fast")
"""

from __future__ import annotations

import collections
import cProfile
import json
import os
import pstats
import statistics
import sys
import threading
import time
from collections.abc import Sequence

import attrs
import click

import toyvisor.cpu
from toyvisor.cpu import ENGINES, Machine
from toyvisor.isa.errors import ToyvisorError
from toyvisor.vmm import make_strategy
from toyvisor.vmm.nanobench import console_input
from toyvisor.vmm.strategies import StrategyError

from .bench import environment
from .guest import Guest, load_guest

DEFAULT_COUNT = 2000
DEFAULT_REPEAT = 5
MAX_COUNT = 1_000_000
#: The VMM strategies measured by default; ``paravirtual`` runs only guests with a port, and these
#: have none.
DEFAULT_STRATEGIES = ("trap-emulate:0/1/3", "binary-translation", "hardware-assisted:2",
                      "hardware-assisted:1")
NATIVE = "native"


class TrapBenchError(ToyvisorError):
    """A trap-heavy measurement that cannot be made (bad count, repeat or strategy)."""


@attrs.frozen
class Event:
    """A guest event and the guest that repeats it: `benchmark` names a nanobenchmark of
    ``guests/nanobench`` (its ``empty`` loop is subtracted), None for a guest of its own whose
    count is its whole input."""

    name: str
    target: str
    benchmark: str | None
    summary: str


EVENTS = (
    Event("exception", "nanobench", "divzero", "div by zero: #DE, the handler skips it, iret"),
    Event("int/iret pair", "nanobench", "syscall", "int 0x80 to a handler that irets"),
    Event("port access", "nanobench", "in", "one in from a device port"),
    Event("page fault", "nanobench", "pgfault", "a load from an unmapped page: #PF, mapped"),
    Event("timer interrupt", "bench/timer", None,
          "hlt, IRQ 0, a 2-instruction handler and the idle loop's test"),
)
BASELINE = "empty"


@attrs.frozen
class Config:
    strategy: str
    engine: str | None

    @property
    def label(self) -> str:
        return f"{NATIVE}/{self.engine}" if self.strategy == NATIVE else self.strategy


@attrs.frozen
class _Run:
    seconds: float
    instructions: int
    entries: int
    stop_reason: str


@attrs.frozen
class Cell:
    """One event under one configuration."""

    event: str
    config: str
    #: host nanoseconds per event, VMM entries per event (0 natively)
    ns: float
    entries: float
    #: what the VMM adds per entry (None natively or with fewer than one entry every other
    #: event)
    ns_per_entry: float | None
    deterministic: bool
    halted: bool


@attrs.frozen
class TrapReport:
    environment: dict
    count: int
    repeat: int
    configs: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, event: str, config: str) -> Cell:
        for cell in self.cells:
            if cell.event == event and cell.config == config:
                return cell
        raise KeyError((event, config))

    def ns_per_event(self, event: str, config: str) -> float:
        return self.cell(event, config).ns

    def to_dict(self) -> dict:
        return {"environment": self.environment, "count": self.count, "repeat": self.repeat,
                "configs": list(self.configs),
                "events": [attrs.asdict(e) for e in EVENTS],
                "cells": [attrs.asdict(c) for c in self.cells]}


def _guest(event_or_baseline: Event | None, count: int) -> Guest:
    if event_or_baseline is None:
        return attrs.evolve(load_guest("nanobench"), console_input=console_input(BASELINE, count))
    guest = load_guest(event_or_baseline.target)
    if event_or_baseline.benchmark is None:
        return attrs.evolve(guest, console_input=str(count).encode())
    return attrs.evolve(guest, console_input=console_input(event_or_baseline.benchmark, count))


def _run(guest: Guest, config: Config) -> _Run:
    if config.strategy == NATIVE:
        machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                          disk=guest.disk)
        machine.load(guest.image)
        started = time.process_time()
        result = machine.run(guest.max_steps, engine=config.engine)
        seconds = time.process_time() - started
        return _Run(seconds, result.guest_instructions, 0, result.stop_reason)
    started = time.process_time()  # the boot is the same at both sizes: it cancels
    result = make_strategy(config.strategy).run(guest)
    return _Run(time.process_time() - started, result.guest_instructions, result.vmm_entries,
                result.stop_reason)


def _configs(engines: Sequence[str] | None, specs: Sequence[str] | None) -> tuple[Config, ...]:
    chosen = tuple(engines) if engines else ENGINES
    for engine in chosen:
        if engine not in ENGINES:
            raise TrapBenchError(f"unknown engine '{engine}' (known: {', '.join(ENGINES)})")
    configs = [Config(NATIVE, engine) for engine in chosen]
    for spec in DEFAULT_STRATEGIES if specs is None else specs:
        try:
            strategy = make_strategy(spec)
        except StrategyError as exc:
            raise TrapBenchError(str(exc)) from None
        if strategy.name == NATIVE or strategy.runs_port:
            raise TrapBenchError(f"'{spec}' cannot run these guests (native is measured with "
                                 "--engine; paravirtual needs a port)")
        configs.append(Config(strategy.spec, None))
    return tuple(dict.fromkeys(configs))


def measure(engines: Sequence[str] | None = None, specs: Sequence[str] | None = None, *,
            count: int = DEFAULT_COUNT, repeat: int = DEFAULT_REPEAT) -> TrapReport:
    """Measure every `EVENTS` entry under every native engine and strategy (module docstring)."""
    if not isinstance(count, int) or not 1 <= count <= MAX_COUNT // 2:
        raise TrapBenchError(f"count must be 1 to {MAX_COUNT // 2}, not {count!r}")
    if not isinstance(repeat, int) or not 1 <= repeat <= 100:
        raise TrapBenchError(f"repeat must be 1 to 100, not {repeat!r}")
    configs = _configs(engines, specs)
    subjects: list[Event | None] = [None, *EVENTS]
    guests = {(i, size): _guest(subject, size * count)
              for i, subject in enumerate(subjects) for size in (1, 2)}
    runs: dict[tuple, list[_Run]] = {}
    for _ in range(repeat):
        for config in configs:
            for key, guest in guests.items():
                runs.setdefault((key, config), []).append(_run(guest, config))

    def delta(i: int, config: Config) -> tuple[float, float, bool, bool]:
        small, large = runs[((i, 1), config)], runs[((i, 2), config)]
        seconds = (statistics.median(r.seconds for r in large)
                   - statistics.median(r.seconds for r in small))
        entries = large[0].entries - small[0].entries
        same = all(len({(r.instructions, r.entries) for r in side}) == 1
                   for side in (small, large))
        halted = all(r.stop_reason == "halted" for r in small + large)
        return seconds, entries, same, halted

    cells = []
    for i, event in enumerate(EVENTS, start=1):
        per_config = {}
        for config in configs:
            seconds, entries, same, halted = delta(i, config)
            if event.benchmark is not None:
                base_seconds, base_entries, base_same, base_halted = delta(0, config)
                seconds -= base_seconds
                entries -= base_entries
                same, halted = same and base_same, halted and base_halted
            per_config[config] = (seconds / count * 1e9, entries / count, same, halted)
        natives = [per_config[c][0] for c in configs if c.strategy == NATIVE]
        fastest = min(natives) if natives else None
        for config in configs:
            ns, entries, same, halted = per_config[config]
            per_entry = ((ns - fastest) / entries
                         if config.strategy != NATIVE and entries >= 0.5 and fastest is not None
                         else None)
            cells.append(Cell(event.name, config.label, ns, entries, per_entry, same, halted))
    return TrapReport({**environment(), "repeat": repeat}, count, repeat, tuple(c.label for c in configs),
                      tuple(cells))


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render_markdown(report: TrapReport) -> str:
    """Two tables: host ns per event, and VMM entries per event with host ns per entry."""
    configs = report.configs
    lines = ["| event | " + " | ".join(configs) + " |",
             "| --- | " + " | ".join("---:" for _ in configs) + " |"]
    for event in EVENTS:
        row = []
        for config in configs:
            cell = report.cell(event.name, config)
            text = _number(cell.ns)
            row.append(text if cell.deterministic and cell.halted else f"{text} (not checked)")
        lines.append(f"| {event.name} (host ns) | " + " | ".join(row) + " |")
    vmms = [c for c in configs if not c.startswith(f"{NATIVE}/")]
    if vmms:
        lines += ["", "| event | " + " | ".join(
            f"{c}: entries, ns per entry" for c in vmms) + " |",
            "| --- | " + " | ".join("---:" for _ in vmms) + " |"]
        for event in EVENTS:
            row = []
            for config in vmms:
                cell = report.cell(event.name, config)
                row.append(f"{cell.entries:.2f}, {_number(cell.ns_per_entry)}")
            lines.append(f"| {event.name} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def render_text(report: TrapReport) -> str:
    head = (f"trap-heavy: host ns per guest event, {report.count:,} and {2 * report.count:,} "
            f"iterations, median of {report.repeat} rounds\n\n")
    return head + render_markdown(report)


@attrs.frozen
class Profile:
    """Where one run's host time goes (`profile`): the top functions by own time."""

    target: str
    config: str
    instructions: int
    #: exceptions, interrupts and software interrupts the guest took (its by_cause natively)
    events: int
    seconds: float
    #: (function, share of the profiled time, calls per guest event: None when sampled)
    rows: tuple[tuple[str, float, float | None], ...]
    #: sampled views only: the samples taken and the runs they were pooled over
    samples: int | None = None
    runs: int = 1


def _label(code: tuple[str, int, str], root: str) -> str:
    filename, _line, function = code
    if filename.startswith("<bt:"):
        return "compiled blocks (<bt:...>)"
    if filename.startswith("<isa:"):
        return "ISA handlers (<isa:...>)"
    if filename == "<cold>":  # cpu/bt/cold.py's unrolled functions, one per block shape
        return "cold blocks, unrolled (<cold>)"
    if filename.startswith(root):
        return f"{filename[len(root):].lstrip('/')}:{function}"
    return f"{filename.rsplit('/', 1)[-1]}:{function}" if filename != "~" else function


def _subject(target: str, config: str, count: int | None) -> tuple[Guest, Config]:
    """The guest and configuration `profile` and `sample` look at, after one run that warms
    the process's caches."""
    guest = load_guest(target)
    if count is not None:
        guest = attrs.evolve(guest, console_input=str(count).encode())
    native, _, engine = config.partition("/")
    chosen = Config(NATIVE, engine) if native == NATIVE else Config(config, None)
    _run(guest, chosen)
    return guest, chosen


def _guest_events(guest: Guest) -> int:
    """The exceptions, interrupts and software interrupts `guest` takes on the bare machine."""
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk)
    machine.load(guest.image)
    return sum(machine.run(guest.max_steps).by_cause.values()) or 1


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(toyvisor.cpu.__file__))


def profile(target: str, config: str, count: int | None = None, top: int = 8) -> Profile:
    """cProfile one run of bundled guest `target` (console input `count` if given) under
    `config` (``native/<engine>`` or a strategy), after one unprofiled run that warms the
    process's caches: the top functions by own time (cProfile slows small functions more than
    big ones, so read shares, not absolute times)."""
    guest, chosen = _subject(target, config, count)
    profiler = cProfile.Profile()
    profiler.enable()
    run = _run(guest, chosen)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {code: (calls, primitive, tottime, cumtime, callers)}
    root = _package_root()
    grouped: dict[str, list[float]] = {}
    for code, (_prim, calls, tottime, _cum, _callers) in stats.items():
        entry = grouped.setdefault(_label(code, root), [0.0, 0])
        entry[0] += tottime
        entry[1] += calls
    total = sum(t for t, _ in grouped.values()) or 1.0
    events = _guest_events(guest)
    rows = sorted(grouped.items(), key=lambda item: -item[1][0])[:top]
    return Profile(target, config, run.instructions, events, total,
                   tuple((name, t / total, calls / events) for name, (t, calls) in rows))


def sample(target: str, config: str, count: int | None = None, top: int = 8,
           interval: float = 0.0005, min_samples: int = 50, max_runs: int = 100) -> Profile:
    """A sampling view of the same run as `profile`, without cProfile's per-call distortion:
    a thread records the innermost frame of the running one every `interval` seconds (at the
    interpreter's thread-switch points, its switch interval lowered to `interval` meanwhile).
    A short run on a busy host may end before the sampler is scheduled at all, so the run is
    repeated until `min_samples` samples are taken (at most `max_runs` runs): every run is
    the same deterministic run, so their samples pool.  Rows are (function, share of samples,
    None); the seconds are those of one run (the median)."""
    if min_samples < 1 or max_runs < 1:
        raise TrapBenchError(f"sample needs min_samples and max_runs >= 1, "
                             f"not {min_samples} and {max_runs}")
    guest, chosen = _subject(target, config, count)
    root = _package_root()
    counts: collections.Counter = collections.Counter()
    runner = threading.get_ident()
    started, done = threading.Event(), threading.Event()

    def sampler() -> None:
        started.set()
        while not done.is_set():
            frame = sys._current_frames().get(runner)
            if frame is not None and frame.f_code.co_filename != threading.__file__:
                # (not the runner waiting on an Event)
                code = frame.f_code
                counts[_label((code.co_filename, 0, code.co_name), root)] += 1
            time.sleep(interval)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    runs: list[_Run] = []
    try:
        started.wait()
        while not runs or (sum(counts.values()) < min_samples and len(runs) < max_runs):
            runs.append(_run(guest, chosen))
    finally:
        done.set()
        thread.join()
        sys.setswitchinterval(switch)
    if any(run.instructions != runs[0].instructions for run in runs):
        raise TrapBenchError(f"{target} under {config} retired a different number of "
                             "instructions in repeated runs")
    total = sum(counts.values()) or 1
    seconds = statistics.median(run.seconds for run in runs)
    return Profile(target, config, runs[0].instructions, _guest_events(guest), seconds,
                   tuple((name, n / total, None) for name, n in counts.most_common(top)),
                   samples=sum(counts.values()), runs=len(runs))


def render_profile(profile: Profile) -> str:
    sampled = profile.samples is not None
    head = (f"{profile.target}, {profile.config}: {profile.instructions:,} instructions, "
            f"{profile.events:,} guest events (traps, interrupts), "
            f"{profile.seconds / profile.events * 1e6:,.1f} µs of host time per event "
            + (f"(CPU time of the sampled run; {profile.samples:,} samples over "
               f"{profile.runs} run{'s' if profile.runs > 1 else ''})" if sampled
               else "(under cProfile)") + "\n\n"
            "| function | share of time | calls per guest event |\n| --- | ---: | ---: |\n")
    return head + "".join(f"| `{name}` | {share:.0%} | "
                          f"{'-' if calls is None else f'{calls:.1f}'} |\n"
                          for name, share, calls in profile.rows)


def compile_times(target: str, count: int | None = None) -> tuple[tuple[int, float], ...]:
    """What compiling each block of a run of bundled guest `target` costs: the fast engine run
    natively with every block compiled at its first entry (``hot_threshold=1``), one
    ``(instructions in the block, CPU seconds to compile it)`` per compiled block, in order.
    The translation thresholds weigh this against running blocks cold (docs/performance.md)."""
    guest = load_guest(target)
    if count is not None:
        guest = attrs.evolve(guest, console_input=str(count).encode())
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk)
    machine.load(guest.image)
    translator = machine.engine("fast")
    translator.hot_threshold = 1
    compile_block = translator._compile
    times: list[tuple[int, float]] = []

    def timed(block) -> None:
        started = time.process_time()
        compile_block(block)
        times.append((block.n, time.process_time() - started))

    translator._compile = timed
    machine.run(guest.max_steps, engine="fast")
    return tuple(times)


def command(workloads, engines, specs, no_vmm, repeat, scale, scaling, as_json,
            markdown) -> None:
    """The body of ``toyvisor bench --trap-heavy`` (its options as the bench command got them)."""
    if workloads or scaling:
        raise TrapBenchError("--trap-heavy takes no --workload or --scaling")
    if no_vmm and specs:
        raise TrapBenchError("--no-vmm and --vmm exclude each other")
    if not scale > 0 or scale * DEFAULT_COUNT > MAX_COUNT // 2:
        raise TrapBenchError(f"--scale must be above 0 and at most {MAX_COUNT // 2 // DEFAULT_COUNT}"
                             f" with --trap-heavy, not {scale}")
    report = measure(engines or None, () if no_vmm else (specs or None),
                     count=max(1, round(DEFAULT_COUNT * scale)), repeat=repeat)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json
               else render_markdown(report) if markdown else render_text(report), nl=as_json)


__all__ = ["Cell", "Config", "DEFAULT_COUNT", "DEFAULT_STRATEGIES", "EVENTS", "Event", "Profile",
           "TrapBenchError", "TrapReport", "command", "compile_times", "measure", "profile",
           "render_markdown", "render_profile", "render_text", "sample"]
