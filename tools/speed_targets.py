"""Issue 13's speed targets judged in one run on this host: ``toyvisor bench --targets``
(docs/performance.md, "The targets of issue 13").

Every case is timed in process CPU time (a host shared with other work stretches wall time by
whatever else runs, CPU time much less), medians of `repeat` interleaved rounds after a warm-up
round.  The plain-Python ceiling is the fastest of the four formulations `toyvisor bench` times
(`toyvisor.tools.anchors.CEILING_FORMULATIONS`), each timed in the same rounds as the guests.

The issue states three targets in MIPS, which depend on the host; its figures were taken on a
host whose ceiling was `ISSUE_CEILING_MOPS`.  So a MIPS goal also gives its rate as a share of
this host's ceiling, beside the share the target is of the issue's host's ceiling: the shares
compare across hosts, the MIPS do not.

    >>> report = measure(scale=10, repeat=5)
    >>> print(render_text(report))
"""

from __future__ import annotations

import gc
import statistics
import time

import attrs

from toyvisor.cpu import ENGINES
from toyvisor.isa.errors import ToyvisorError
from toyvisor.vmm import make_strategy

from .anchors import CEILING_FORMULATIONS, OPS_PER_ITERATION
from .bench import BUSY_SPREAD, MAX_REPEAT, MAX_SCALE, environment
from .guest import Guest, load_guest
from .trapbench import NATIVE, Config, _run

#: the plain-Python ceiling (M operations/s) of the host the issue's figures were taken on
#: (docs/performance.md, Results, commit 630e831)
ISSUE_CEILING_MOPS = 17.86
VMMS = ("trap-emulate:0/1/3", "binary-translation", "hardware-assisted:2", "hardware-assisted:1")
COMPUTE_ITERATIONS = 50_000
SYSCALL_CALLS = 8_000


class TargetsError(ToyvisorError):
    """Targets that cannot be measured as asked (bad scale or repeat)."""


@attrs.frozen
class Goal:
    """One target: `required` as the issue states it (">= 2"), `measured` in its unit."""

    name: str
    required: str
    measured: float | None
    met: bool | None
    note: str = ""
    #: MIPS goals: the measured rate and the target as shares of a ceiling (this host's, and
    #: the issue's host's), so that hosts compare
    share: float | None = None
    required_share: float | None = None


@attrs.frozen
class TargetReport:
    environment: dict
    scale: float
    repeat: int
    #: this host's ceiling, M operations/s, and the median seconds of every formulation
    ceiling_mops: float
    ceiling_runs: dict
    goals: tuple[Goal, ...]
    #: the 1-minute load average when the rounds ended
    load_after: float | None

    @property
    def busy(self) -> str | None:
        """Why the machine looked busy while measuring (None: it did not)."""
        reasons = []
        cpus = self.environment.get("cpus") or 1
        loads = [*(self.environment.get("load_average") or []),
                 *([] if self.load_after is None else [self.load_after])]
        if loads and max(loads) > cpus:
            reasons.append(f"load average up to {max(loads):.1f} on {cpus} CPUs")
        runs = min(self.ceiling_runs.values(), key=statistics.median)
        if len(runs) >= 2:
            spread = (max(runs) - min(runs)) / statistics.median(runs)
            if spread > BUSY_SPREAD:
                reasons.append(f"the ceiling's runs varied by {spread:.0%} of their median")
        return "; ".join(reasons) or None

    def goal(self, name: str) -> Goal:
        for goal in self.goals:
            if goal.name == name:
                return goal
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"environment": self.environment, "scale": self.scale, "repeat": self.repeat,
                "ceiling_mops": self.ceiling_mops, "issue_ceiling_mops": ISSUE_CEILING_MOPS,
                "ceiling_runs": {k: list(v) for k, v in self.ceiling_runs.items()},
                "load_after": self.load_after, "busy": self.busy,
                "goals": [attrs.asdict(goal) for goal in self.goals]}


def _timed(action) -> tuple[float, int]:
    # A full collection of the cyclic garbage collector costs what the whole heap of this
    # process holds, not what the run allocates, and with every round allocating alike it
    # lands in the same case round after round: collected before each timed run, so a run
    # pays for its own garbage.
    gc.collect()
    started = time.process_time()
    instructions = action()
    return time.process_time() - started, instructions


def _sized(name: str, count: int | None) -> Guest:
    guest = load_guest(name)
    return guest if count is None else attrs.evolve(guest, console_input=str(count).encode())


def _cases(scale: float) -> tuple[dict, tuple[str, ...]]:
    """Every timed case by name (an action returning the instructions or operations it ran),
    and the names of the ~40,000-instruction guests."""
    def native(guest: Guest, engine: str):
        return lambda: _run(guest, Config(NATIVE, engine)).instructions

    def vmm(guest: Guest, spec: str):
        return lambda: make_strategy(spec).run(guest).guest_instructions

    def ceiling(loop, n: int):
        return lambda: (loop(n), OPS_PER_ITERATION * n)[1]

    iterations = max(1, round(COMPUTE_ITERATIONS * scale))
    compute = _sized("bench/compute", iterations)
    syscall = _sized("bench/syscall", max(1, round(SYSCALL_CALLS * scale)))
    kernels = {"minikernel": _sized("minikernel", None), "nanobench": _sized("nanobench", None)}
    short = {"syscall": _sized("bench/syscall", 3000), "compute": _sized("bench/compute", 5700),
             "memory": _sized("bench/memory", 1), **kernels}
    cases = {f"ceiling {name}": ceiling(loop, iterations)
             for name, loop in CEILING_FORMULATIONS.items()}
    cases.update({"compute fast": native(compute, "fast"),
                  "syscall fast": native(syscall, "fast"),
                  "syscall interpreter": native(syscall, "interpreter"),
                  "syscall trap-emulate": vmm(syscall, "trap-emulate:0/1/3")})
    cases.update({f"compute {spec}": vmm(compute, spec)  # (paravirtual: the port, compute/pv.s)
                  for spec in (*VMMS, "paravirtual")})
    cases.update({f"short {name} {engine}": native(guest, engine)
                  for name, guest in short.items() for engine in ENGINES})
    cases.update({f"minikernel {spec}": vmm(kernels["minikernel"], spec)
                  for spec in (*VMMS, "paravirtual")})
    return cases, tuple(short)


def _load_now() -> float | None:
    loads = environment().get("load_average") or []
    return loads[0] if loads else None


def measure(scale: float = 10.0, repeat: int = 5) -> TargetReport:
    """Issue 13's targets: the loops sized like ``toyvisor bench --scale`` (compute
    50,000 × `scale` iterations, the system-call loop 8,000 × `scale` calls), minikernel and
    nanobench as they are, the loops at about 40,000 instructions for the short-run target.
    A strategy's time includes its boot (a few milliseconds at most)."""
    if not 0 < scale <= MAX_SCALE:
        raise TargetsError(f"--scale must be above 0 and at most {MAX_SCALE:g}, not {scale}")
    if not 1 <= repeat <= MAX_REPEAT:
        raise TargetsError(f"--repeat must be 1 to {MAX_REPEAT}, not {repeat}")
    env = environment()
    cases, short = _cases(scale)
    for action in cases.values():  # the warm-up round: caches, translations, imports
        action()
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, action in cases.items():
            runs[name].append(_timed(action))
    mips = {name: rs[0][1] / max(statistics.median(r[0] for r in rs), 1e-9) / 1e6
            for name, rs in runs.items()}
    ceilings = {name: mips[f"ceiling {name}"] for name in CEILING_FORMULATIONS}
    ceiling = max(ceilings.values())

    def rate_goal(name: str, required: float, measured: float) -> Goal:
        return Goal(name, f">= {required:g}", measured, measured >= required,
                    share=measured / ceiling, required_share=required / ISSUE_CEILING_MOPS)

    def best(name: str) -> float:
        return max(mips[f"short {name} {engine}"] for engine in ENGINES)

    native_syscall = max(mips["syscall fast"], mips["syscall interpreter"])
    goals = [rate_goal("minikernel natively, fastest engine (MIPS)", 2, best("minikernel")),
             rate_goal("nanobench natively, fastest engine (MIPS)", 2, best("nanobench")),
             rate_goal("system-call loop natively, fastest engine (MIPS)", 1.5, native_syscall),
             rate_goal("system-call loop under trap-emulate (MIPS)", 0.8,
                       mips["syscall trap-emulate"])]
    for spec in (*VMMS, "paravirtual"):
        ratio = mips[f"compute {spec}"] / mips["compute fast"]
        goals.append(Goal(f"compute loop, {spec} / native fast", ">= 0.5", ratio, ratio >= 0.5))
    for spec in (*VMMS, "paravirtual"):
        ratio = best("minikernel") / mips[f"minikernel {spec}"]
        goals.append(Goal(f"minikernel, fastest native / {spec}", "<= 2", ratio, ratio <= 2))
    for name in short:
        ratio = mips[f"short {name} fast"] / mips[f"short {name} interpreter"]
        goals.append(Goal(f"~40,000 instructions ({name}), fast / interpreter", ">= 1", ratio,
                          ratio >= 1, f"{runs[f'short {name} fast'][0][1]:,} instructions"))
    ratio = mips["compute fast"] / ceiling
    goals.append(Goal("compute loop, fast / ceiling, whole run", ">= 0.9", ratio, ratio >= 0.9))
    seconds = {name: tuple(r[0] for r in runs[f"ceiling {name}"]) for name in CEILING_FORMULATIONS}
    return TargetReport(env, scale, repeat, ceiling, seconds, tuple(goals), _load_now())


def _table(report: TargetReport) -> str:
    lines = ["| target | required | measured (CPU time) | met |", "| --- | ---: | ---: | --- |"]
    for goal in report.goals:
        measured = "-" if goal.measured is None else f"{goal.measured:.3f}"
        met = "-" if goal.met is None else "yes" if goal.met else "no"
        notes = [goal.note] if goal.note else []
        if goal.share is not None:
            notes.append(f"{goal.share:.4f} of the ceiling; the target is "
                         f"{goal.required_share:.4f} of the issue's")
        note = f" ({'; '.join(notes)})" if notes else ""
        lines.append(f"| {goal.name}{note} | {goal.required} | {measured} | {met} |")
    return "\n".join(lines) + "\n"


def _notes(report: TargetReport) -> list[str]:
    rates = ", ".join(f"{name} {rate:.2f}" for name, rate in _formulation_rates(report).items())
    notes = [f"ceiling: {report.ceiling_mops:.2f} M operations/s, the fastest of ({rates}); "
             f"the issue's figures were taken under a ceiling of {ISSUE_CEILING_MOPS} "
             "M operations/s"]
    if report.busy:
        notes.append(f"WARNING: the machine was busy ({report.busy}): rates are noisy")
    return notes


def render_markdown(report: TargetReport) -> str:
    """The goals as a Markdown table (MIPS goals with their shares of the ceilings), and the
    ceiling below it."""
    return _table(report) + "\n" + "".join(f"- {note}\n" for note in _notes(report))


def render_text(report: TargetReport) -> str:
    """Where and when, the ceiling, busy or not, and the table."""
    env = report.environment
    head = [f"issue 13's targets: {env['date']}, {env['python']}, {env['platform']}, "
            f"{env['cpus']} CPUs; --scale {report.scale:g}, median of {report.repeat} rounds, "
            "process CPU time", *_notes(report)]
    return "\n".join(head) + "\n\n" + _table(report)


def _formulation_rates(report: TargetReport) -> dict[str, float]:
    """M operations/s of each ceiling formulation, from the fastest one's rate and the medians."""
    medians = {name: statistics.median(runs) for name, runs in report.ceiling_runs.items()}
    fastest = min(medians.values())
    return {name: report.ceiling_mops * fastest / seconds for name, seconds in medians.items()}


__all__ = ["Goal", "ISSUE_CEILING_MOPS", "TargetReport", "TargetsError", "measure",
           "render_markdown", "render_text"]
