"""How fast guests run on the host: the engine of ``toyvisor bench`` (docs/performance.md).

Every workload (`WORKLOADS`) runs under every native execution engine (`toyvisor.cpu.ENGINES`)
and every VMM strategy, `repeat` times; each run boots afresh and only the run is timed (the
boot is timed apart as ``setup``; assembling the guest is timed once per workload).  A result is
guest instructions per second of the median run, divided by two reference rates measured in the
same invocation (`toyvisor.tools.anchors`): the plain-Python ceiling and, if installed, py65.
A workload sized by an iteration count also runs with twice the count in every round: the
difference is the *steady* rate of its loop (``steady_mips``), free of what a run pays once
(decoding or translating the code, the start-up and the report), which is what the ceiling —
a bare loop — is to be compared with.
Rounds are interleaved — each round runs the anchors and then every configuration once — so a
busy host slows all of them alike and the ratios stay put while the absolute rates wander.

Nothing here is asserted about time, but every number is checked for meaning: instruction
counts must be the same in every run (``deterministic``); a native engine must give the
interpreter's console, stop reason and instruction count, and a VMM strategy must pass the
project's own equivalence check (`toyvisor.vmm.run_guest`, one extra untimed run) — both are
``equivalent``; the compute loop's checksum must be the ceiling loop's.

    >>> report = measure(workloads=["compute"], scale=0.1, repeat=3)
    >>> row = report.row("compute", engine="interpreter")
    >>> row.mips, report.ratio_to_ceiling(row)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence

import attrs

from toyvisor.cpu import ENGINES, Machine
from toyvisor.isa.errors import ToyvisorError

from . import anchors
from .anchors import Anchor
from .guest import Guest, load_guest

DEFAULT_REPEAT = 5
#: a steady rate is noise when its per-round differences spread wider than this share of their
#: median
NOISE_SPREAD = 0.5
#: the machine counts as busy when the ceiling's runs spread wider than this share of their
#: median, or the load average exceeds the CPUs
BUSY_SPREAD = 0.25
MAX_REPEAT = 1000
MAX_SCALE = 1000.0
NATIVE = "native"
#: The VMM strategies measured by default (each in its default variant); ``paravirtual`` only
#: for workloads whose guest has a paravirtual port.
DEFAULT_STRATEGIES = ("trap-emulate", "binary-translation", "hardware-assisted", "paravirtual")


class BenchError(ToyvisorError):
    """A benchmark request that cannot be measured (unknown workload, engine or strategy)."""


@attrs.frozen
class Workload:
    """A guest to measure: `target` is a bundled guest; `count`, when set, is the iteration
    count given on its console (guests/bench), scaled by `measure`'s `scale`."""

    name: str
    target: str
    count: int | None
    summary: str
    #: CPUs of the machine; the multiprocessor workloads run natively only (the VMMs run one
    #: CPU), smp1 included, so that the smp rows compare like with like
    cpus: int = 1
    native_only: bool = False


WORKLOADS = (
    Workload("compute", "bench/compute", 50_000,
             "register arithmetic, 7 instructions per iteration (the ceiling's loop)"),
    Workload("memory", "bench/memory", 8,
             "a load and a store per 6 instructions over 16 remapped pages, paging on"),
    Workload("syscall", "bench/syscall", 8_000,
             "ring-3 loop around int 0x80, 13 instructions and one trap per call"),
    Workload("minikernel", "minikernel", None,
             "two ring-3 tasks, timer preemption, syscalls, disk, a killed task"),
    Workload("nanobench", "nanobench", None,
             "the Adams & Agesen nanobenchmarks, 100 iterations each"),
    # the multiprocessor: the compute loop's iterations split over 1, 2, 4 and 8 CPUs with the
    # default interleave (docs/performance.md, "Multiprocessor")
    *(Workload(f"smp{n}", "bench/smp", 50_000,
               f"the compute loop split over {n} CPU{'s' if n > 1 else ''}", cpus=n,
               native_only=True)
      for n in (1, 2, 4, 8)),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)


@attrs.frozen
class Config:
    """What runs a workload: a native engine (strategy ``native``) or a VMM strategy."""

    strategy: str
    engine: str | None = None

    @property
    def label(self) -> str:
        return f"{NATIVE}/{self.engine}" if self.strategy == NATIVE else self.strategy


@attrs.frozen
class Row:
    """One workload under one configuration, over every round."""

    workload: str
    strategy: str
    engine: str | None
    guest_instructions: int
    stop_reason: str
    #: True when every run retired the same number of instructions
    deterministic: bool
    #: native engine: the interpreter's console, stop reason and instruction count; VMM
    #: strategy: `toyvisor.vmm.run_guest`'s verdict (state, or outcome for a port)
    equivalent: bool
    #: seconds of each timed run (the run only), in the order measured
    runs: tuple[float, ...]
    #: seconds of each boot (machine or hypervisor built, image loaded)
    setups: tuple[float, ...]
    #: with twice the iteration count (workloads sized by a count; else None / empty)
    double_instructions: int | None = None
    double_runs: tuple[float, ...] = ()
    #: the plain-Python ceiling's rate (operations/s) measured in the same rounds
    ceiling_rate: float | None = None

    @property
    def label(self) -> str:
        return Config(self.strategy, self.engine).label

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    @property
    def setup_seconds(self) -> float:
        return statistics.median(self.setups)

    @property
    def mips(self) -> float:
        """Millions of guest instructions per second (median run)."""
        return self.guest_instructions / self.seconds / 1e6

    @property
    def extra_times(self) -> list[float]:
        """Per round: the double-count run's seconds less the plain run's."""
        return [d - r for d, r in zip(self.double_runs, self.runs)]

    @property
    def steady_noise(self) -> str | None:
        """Why the steady rate cannot be trusted (None: it can, or there is none to judge):
        one round only, a difference that vanished or varies too much between rounds against
        its size, or a rate above the plain-Python ceiling (no CPU in Python beats it)."""
        if self.double_instructions is None or not self.double_runs:
            return None
        extras = self.extra_times
        if len(extras) < 2:
            return "one round: no spread to judge the difference by"
        extra = statistics.median(extras)
        if extra <= 0:
            return "the double-count run was not measurably longer"
        spread = (max(extras) - min(extras)) / extra
        if spread > NOISE_SPREAD:
            return (f"the per-round differences vary by {spread:.0%} of their median "
                    f"(more than {NOISE_SPREAD:.0%})")
        rate = (self.double_instructions - self.guest_instructions) / extra
        if self.ceiling_rate is not None and rate > self.ceiling_rate:
            return (f"{rate / self.ceiling_rate:.2f}x the plain-Python ceiling: noise, not a "
                    "result")
        return None

    @property
    def steady_mips(self) -> float | None:
        """Millions of instructions per second of the loop alone: the extra instructions of the
        double-count run over the median of the per-round extra times (None if not sized, or
        if it is noise: `steady_noise`)."""
        if self.double_instructions is None or not self.double_runs or self.steady_noise:
            return None
        extra = statistics.median(self.extra_times)
        return (self.double_instructions - self.guest_instructions) / extra / 1e6

    @property
    def best_mips(self) -> float:
        """The steady rate where there is one, else the whole-run rate."""
        return self.steady_mips or self.mips


@attrs.frozen
class WorkloadInfo:
    name: str
    target: str
    #: the console input given (the iteration count), or None for a guest run as it is
    count: int | None
    assemble_seconds: float
    summary: str


@attrs.frozen
class BenchReport:
    """Everything one `measure` call measured."""

    rows: tuple[Row, ...]
    workloads: tuple[WorkloadInfo, ...]
    ceiling: Anchor
    py65: Anchor
    repeat: int
    #: whether the guest's compute checksum equals `anchors.ceiling_loop`'s (None: not run)
    ceiling_checksum_matches: bool | None
    #: configurations not measured and why (e.g. paravirtual for a guest with no port)
    skipped: tuple[str, ...]
    environment: dict

    def row(self, workload: str, *, engine: str | None = None,
            strategy: str = NATIVE) -> Row:
        for row in self.rows:
            if row.workload == workload and row.engine == engine and row.strategy == strategy:
                return row
        raise KeyError((workload, strategy, engine))

    @property
    def busy(self) -> str | None:
        """Why the machine looked busy while measuring (None: it did not)."""
        reasons = []
        loads = self.environment.get("load_average") or []
        cpus = self.environment.get("cpus") or 1
        if loads and max(loads) > cpus:
            reasons.append(f"load average up to {max(loads):.1f} on {cpus} CPUs")
        runs = self.ceiling.runs
        if len(runs) >= 2:
            spread = (max(runs) - min(runs)) / statistics.median(runs)
            if spread > BUSY_SPREAD:
                reasons.append(f"the ceiling's runs varied by {spread:.0%} of their median")
        return "; ".join(reasons) or None

    def ratio_to_ceiling(self, row: Row, steady: bool = False) -> float | None:
        """`row`'s whole-run rate (or, with `steady`, its steady rate) over the ceiling's."""
        mips = row.steady_mips if steady else row.mips
        return None if mips is None else mips * 1e6 / self.ceiling.rate

    def ratio_to_py65(self, row: Row, steady: bool = False) -> float | None:
        mips = row.steady_mips if steady else row.mips
        return None if mips is None or self.py65.rate is None else mips * 1e6 / self.py65.rate

    def to_dict(self) -> dict:
        """The ``--json`` object (see docs/performance.md for the schema)."""
        return {
            "environment": self.environment,
            "busy": self.busy,
            "repeat": self.repeat,
            "ceiling": self.ceiling.to_dict(),
            "ceiling_checksum_matches": self.ceiling_checksum_matches,
            "py65": self.py65.to_dict(),
            "workloads": [attrs.asdict(w) for w in self.workloads],
            "results": [{
                "workload": r.workload, "strategy": r.strategy, "engine": r.engine,
                "guest_instructions": r.guest_instructions, "stop_reason": r.stop_reason,
                "deterministic": r.deterministic, "equivalent": r.equivalent,
                "mips": r.mips, "ratio_to_ceiling": self.ratio_to_ceiling(r),
                "ratio_to_py65": self.ratio_to_py65(r),
                "steady_mips": r.steady_mips,
                "steady_noisy": r.steady_noise,
                "steady_ratio_to_ceiling": self.ratio_to_ceiling(r, steady=True),
                "steady_ratio_to_py65": self.ratio_to_py65(r, steady=True),
                "median_seconds": r.seconds, "runs": list(r.runs),
                "setup_median_seconds": r.setup_seconds,
                "double_instructions": r.double_instructions, "double_runs": list(r.double_runs),
            } for r in self.rows],
            "skipped": list(self.skipped),
            "targets": [t.to_dict() for t in targets(self)],
        }


# -- measuring ---------------------------------------------------------------------------------

def _choose(names: Sequence[str] | None, known: Sequence[str], what: str) -> tuple[str, ...]:
    if names is None:
        return tuple(known)
    for name in names:
        if name not in known:
            raise BenchError(f"unknown {what} '{name}' (known: {', '.join(known)})")
    return tuple(dict.fromkeys(names))


def _strategies(specs: Sequence[str]) -> tuple[str, ...]:
    """Validate strategy specs (``trap-emulate:0/3/3`` ...) and spell them canonically."""
    from toyvisor.vmm import StrategyError, make_strategy

    spelled = []
    for spec in specs:
        try:
            strategy = make_strategy(spec)
        except StrategyError as exc:
            raise BenchError(str(exc)) from None
        if strategy.name == NATIVE:
            raise BenchError("'native' is measured with --engine, not as a VMM strategy")
        spelled.append(strategy.spec)
    return tuple(dict.fromkeys(spelled))


def _guests(workload: Workload, scale: float) -> tuple[Guest, Guest | None]:
    """The workload's guest, and the same with twice the iteration count (None if unsized)."""
    guest = attrs.evolve(load_guest(workload.target), cpus=workload.cpus)
    if workload.count is None:
        return guest, None
    count = max(1, round(workload.count * scale))
    return (attrs.evolve(guest, console_input=str(count).encode()),
            attrs.evolve(guest, console_input=str(2 * count).encode()))


@attrs.frozen
class _Run:
    seconds: float
    setup: float
    instructions: int
    stop_reason: str
    console: str


def _run_native(guest: Guest, engine: str) -> _Run:
    started = time.perf_counter()
    machine = Machine(memory_size=guest.memory_size, console_input=guest.console_input,
                      disk=guest.disk, cpus=guest.cpus, interleave=guest.interleave)
    machine.load(guest.image)
    booted = time.perf_counter()
    result = machine.run(guest.max_steps, engine=engine)
    done = time.perf_counter()
    return _Run(done - booted, booted - started, result.guest_instructions, result.stop_reason,
                result.console)


def _run_vmm(guest: Guest, spec: str) -> _Run:
    from toyvisor.vmm import make_strategy

    strategy = make_strategy(spec)
    started = time.perf_counter()
    result = strategy.run(guest)
    total = time.perf_counter() - started
    # Strategy.run times its own run (`wall_time`): what it did before that was the boot, what
    # it does after (collecting counters) is neither
    return _Run(strategy.wall_time, total - strategy.wall_time, result.guest_instructions,
                result.stop_reason, result.console)


def _execute(guest: Guest, config: Config) -> _Run:
    if config.strategy == NATIVE:
        return _run_native(guest, config.engine)
    return _run_vmm(guest, config.strategy)


def _runs_port(spec: str) -> bool:
    from toyvisor.vmm import make_strategy

    return make_strategy(spec).runs_port


def environment() -> dict:
    """Where the numbers come from: date, Python, machine."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": _load_average(),
    }


def _load_average() -> list[float]:
    """The 1-minute load average, as a one-element list ([] where the OS does not say)."""
    try:
        return [round(os.getloadavg()[0], 2)]
    except (AttributeError, OSError):
        return []


def measure(workloads: Sequence[str] | None = None, engines: Sequence[str] | None = None,
            strategies: Sequence[str] | None = None, *, repeat: int = DEFAULT_REPEAT,
            scale: float = 1.0) -> BenchReport:
    """Measure `workloads` (default: all of `WORKLOADS`) under `engines` (default: every engine
    of `toyvisor.cpu.ENGINES`; ``()`` for none) and `strategies` (default: `DEFAULT_STRATEGIES`;
    ``()`` for none), `repeat` rounds each.  `scale` multiplies the iteration counts of the
    guests/bench workloads (minikernel and nanobench run as they are) and the anchors' loops."""
    if not 1 <= repeat <= MAX_REPEAT:
        raise BenchError(f"repeat must be from 1 to {MAX_REPEAT}, not {repeat}")
    if not 0 < scale <= MAX_SCALE:
        raise BenchError(f"scale must be above 0 and at most {MAX_SCALE}, not {scale}")
    ceiling_iterations = max(1, round(anchors.DEFAULT_CEILING_ITERATIONS * scale))
    py65_steps = max(1, round(anchors.DEFAULT_PY65_STEPS * scale))
    chosen = [w for w in WORKLOADS if w.name in _choose(workloads, WORKLOAD_NAMES, "workload")]
    engine_names = _choose(engines, ENGINES, "engine")
    specs = _strategies(DEFAULT_STRATEGIES if strategies is None else strategies)

    guests: dict[str, Guest] = {}
    doubles: dict[str, Guest | None] = {}
    infos = []
    for workload in chosen:
        started = time.perf_counter()
        guest, doubles[workload.name] = _guests(workload, scale)
        guests[workload.name] = guest
        infos.append(WorkloadInfo(workload.name, workload.target,
                                  None if workload.count is None else int(guest.console_input),
                                  time.perf_counter() - started, workload.summary))

    plan: list[tuple[str, Config]] = []
    skipped = []
    for workload in chosen:
        plan.extend((workload.name, Config(NATIVE, e)) for e in engine_names)
        for spec in specs:
            if workload.native_only:
                skipped.append(f"{workload.name} under {spec}: the VMMs run one CPU")
                continue
            if _runs_port(spec) and guests[workload.name].pv_image is None:
                skipped.append(f"{workload.name} under {spec}: the guest has no paravirtual port")
                continue
            plan.append((workload.name, Config(spec)))
    if not plan:
        raise BenchError("nothing to measure: " + "; ".join(skipped) if skipped
                         else "nothing to measure")

    loads_before = _load_average()
    runs: dict[tuple[str, Config], list[_Run]] = {key: [] for key in plan}
    double_runs: dict[tuple[str, Config], list[_Run]] = {key: [] for key in plan}
    ceiling_runs = anchors.CeilingRuns(ceiling_iterations, {})
    py65_runs: list[float] = []
    for _ in range(repeat):
        ceiling_runs = ceiling_runs.extend(anchors.time_ceiling(ceiling_iterations, repeat=1))
        py65 = anchors.measure_py65(py65_steps, repeat=1)  # no runs if py65 is not installed
        py65_runs.extend(py65.runs)
        for key in plan:
            runs[key].append(_execute(guests[key[0]], key[1]))
            if doubles[key[0]] is not None:
                double_runs[key].append(_execute(doubles[key[0]], key[1]))
    ceiling = ceiling_runs.anchor()
    py65 = attrs.evolve(py65, runs=tuple(py65_runs))

    loads_after = _load_average()
    references = {name: _reference(guests[name], runs, name) for name in guests}
    rows = []
    for (name, config), measured in runs.items():
        first = measured[0]
        doubled = double_runs[name, config]
        if config.strategy == NATIVE:
            equivalent = all(_outcome(r) == references[name] for r in measured)
        else:
            equivalent = _equivalent(guests[name], config.strategy)
        rows.append(Row(
            workload=name, strategy=config.strategy, engine=config.engine,
            guest_instructions=first.instructions, stop_reason=first.stop_reason,
            deterministic=all(r.instructions == first.instructions for r in measured)
            and all(r.instructions == doubled[0].instructions for r in doubled),
            equivalent=equivalent,
            runs=tuple(r.seconds for r in measured), setups=tuple(r.setup for r in measured),
            double_instructions=doubled[0].instructions if doubled else None,
            double_runs=tuple(r.seconds for r in doubled), ceiling_rate=ceiling.rate))

    checksum = None
    if "compute" in guests:
        n = int(guests["compute"].console_input)
        acc, x = anchors.ceiling_loop(n)
        checksum = f"acc {acc:#010x}, x {x:#010x}" in references["compute"][0]
    measured_in = environment()
    measured_in["load_average"] = loads_before + loads_after
    return BenchReport(tuple(rows), tuple(infos), ceiling, py65, repeat, checksum,
                       tuple(skipped), measured_in)


def _outcome(run: _Run) -> tuple[str, str, int]:
    return run.console, run.stop_reason, run.instructions


def _reference(guest: Guest, runs: dict, name: str) -> tuple[str, str, int]:
    """The interpreter's outcome for `guest`: from the measured runs if the interpreter was
    measured, else from one untimed run."""
    for (workload, config), measured in runs.items():
        if workload == name and config == Config(NATIVE, "interpreter"):
            return _outcome(measured[0])
    return _outcome(_run_native(guest, "interpreter"))


def _equivalent(guest: Guest, spec: str) -> bool:
    from toyvisor.vmm import run_guest

    return run_guest(guest, spec).equivalent


# -- the targets of issue 6 --------------------------------------------------------------------

@attrs.frozen
class Target:
    """One speed target: `measured` must be at least `required` (at most, if `at_most`)."""

    name: str
    required: float
    measured: float | None
    at_most: bool = False
    #: why there is no measurement, when `measured` is None
    missing: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured <= self.required if self.at_most else self.measured >= self.required

    def to_dict(self) -> dict:
        return {"name": self.name, "required": self.required, "at_most": self.at_most,
                "measured": self.measured, "met": self.met, "missing": self.missing}


def _fastest_native(report: BenchReport, workload: str) -> Row | None:
    rows = [r for r in report.rows if r.workload == workload and r.strategy == NATIVE]
    return max(rows, key=lambda r: r.best_mips, default=None)


def targets(report: BenchReport) -> tuple[Target, ...]:
    """The targets of issue 6, judged on this report (None where it lacks the runs)."""
    def ratio(row: Row | None, to) -> dict:
        # the steady rate where there is one: the ceiling is a bare loop, with nothing to warm up
        if row is None:
            return {"measured": None, "missing": "not measured"}
        value = to(row, steady=row.steady_mips is not None)
        return {"measured": value, "missing": "" if value is not None else "py65 not installed"}

    compute, memory = _fastest_native(report, "compute"), _fastest_native(report, "memory")
    interpreter = next((r for r in report.rows if (r.workload, r.strategy, r.engine)
                        == ("compute", NATIVE, "interpreter")), None)
    bt = next((r for r in report.rows if r.workload == "minikernel"
               and r.strategy == "binary-translation"), None)
    native = _fastest_native(report, "minikernel")
    slowdown = ({"measured": native.mips / bt.mips} if bt and native
                else {"measured": None, "missing": "not measured"})
    return (
        Target("compute loop, fastest engine, x ceiling (steady)", 0.5,
               **ratio(compute, report.ratio_to_ceiling)),
        Target("compute loop, fastest engine, x py65 (steady)", 10.0, **ratio(compute, report.ratio_to_py65)),
        Target("compute loop, interpreter, x ceiling (steady)", 0.15,
               **ratio(interpreter, report.ratio_to_ceiling)),
        Target("memory loop (paging on), fastest engine, x ceiling (steady)", 0.25,
               **ratio(memory, report.ratio_to_ceiling)),
        Target("minikernel: fastest native engine / binary-translation VMM", 2.0,
               at_most=True, **slowdown),
    )


def render_targets(report: BenchReport, markdown: bool = False) -> str:
    """The targets and where each stands."""
    lines = (["| target | required | measured | met |", "| --- | ---: | ---: | --- |"]
             if markdown else [])
    for target in targets(report):
        sign = "<=" if target.at_most else ">="
        value = target.missing if target.measured is None else f"{target.measured:.3f}"
        met = {True: "yes", False: "NO", None: "-"}[target.met]
        lines.append(f"| {target.name} | {sign} {target.required:g} | {value} | {met} |"
                     if markdown else
                     f"target: {target.name} {sign} {target.required:g}: {value} ({met})")
    return "\n".join(lines) + "\n"


# -- presenting --------------------------------------------------------------------------------

def _anchor_line(anchor: Anchor) -> str:
    if not anchor.measured:
        return f"{anchor.name}: {anchor.note}"
    return (f"{anchor.name}: {anchor.rate / 1e6:.2f} M {anchor.unit}/s "
            f"(median of {len(anchor.runs)} runs of {anchor.count:,})"
            + (f", {anchor.note}" if anchor.note else ""))


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _columns(report: BenchReport, row: Row) -> list[str]:
    checks = [] if row.stop_reason == "halted" else [row.stop_reason]
    if not row.deterministic:
        checks.append("NONDETERMINISTIC")
    if not row.equivalent:
        checks.append("NOT EQUIVALENT")
    return [row.workload, row.label, f"{row.guest_instructions:,}", f"{row.seconds:.3f}",
            f"{row.setup_seconds * 1000:.1f}", f"{row.mips:.3f}",
            _number(report.ratio_to_ceiling(row), 3), _number(report.ratio_to_py65(row), 2),
            *(["noisy"] * 3 if row.steady_noise else
              [_number(row.steady_mips, 3), _number(report.ratio_to_ceiling(row, steady=True), 3),
               _number(report.ratio_to_py65(row, steady=True), 2)]),
            ", ".join(checks) or "ok"]


HEADERS = ["workload", "engine / strategy", "instructions", "run s", "setup ms", "MIPS",
           "x ceiling", "x py65", "steady MIPS", "steady x ceiling", "steady x py65", "check"]


def render_text(report: BenchReport) -> str:
    """The table for a terminal, with the anchors and environment above it."""
    env = report.environment
    lines = [f"{env['date']}, {env['python']}, {env['platform']}, {env['cpus']} CPUs; "
             f"median of {report.repeat} runs, run time only",
             _anchor_line(report.ceiling), _anchor_line(report.py65)]
    if report.ceiling_checksum_matches is False:
        lines.append("WARNING: the ceiling loop does not compute the compute guest's checksum")
    if report.busy:
        lines.append(f"WARNING: the machine was busy ({report.busy}): rates are noisy")
    lines.append("")
    table = [HEADERS] + [_columns(report, row) for row in report.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADERS))]
    for i, cells in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j < 2 or j == len(cells) - 1 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(cells, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.extend(f"skipped: {s}" for s in report.skipped)
    lines.extend(f"noisy: {row.workload} {row.label}: {row.steady_noise}"
                 for row in report.rows if row.steady_noise)
    return "\n".join(lines) + "\n\n" + render_targets(report)


def render_markdown(report: BenchReport) -> str:
    """The table as Markdown (docs/performance.md)."""
    lines = ["| " + " | ".join(HEADERS) + " |",
             "| " + " | ".join(["---"] * 2 + ["---:"] * (len(HEADERS) - 3) + ["---"]) + " |"]
    lines.extend("| " + " | ".join(_columns(report, row)) + " |" for row in report.rows)
    notes = [f"- noisy: {row.workload} {row.label}: {row.steady_noise}"
             for row in report.rows if row.steady_noise]
    if report.busy:
        notes.insert(0, f"- the machine was busy ({report.busy}): rates are noisy")
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n\n" + render_targets(report, markdown=True)


def dumps(report: BenchReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


__all__ = ["BenchError", "BenchReport", "Config", "DEFAULT_REPEAT", "DEFAULT_STRATEGIES",
           "Row", "Target", "WORKLOADS", "WORKLOAD_NAMES", "Workload", "dumps", "environment",
           "measure", "render_markdown", "render_targets", "render_text", "targets"]
