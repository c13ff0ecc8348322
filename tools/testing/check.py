"""`check_kernel`: find what breaks a kernel's or a VMM's isolation.

First the machine is asked (`toyvisor.testing.reach`): the kernel boots with an empty user
program and, at every ring-3 entry, its live page tables are walked; each user-accessible
mapping of a frame the kernel uses fails ``kernel-isolation`` at once (`exposed`), with a probe
program that touches it.  Then, for what a walk cannot see, hypothesis generates `examples` user
programs for the kernel's own property (natively; after a `sweep` of one store and one load at
each of its targets, when the walk found nothing) and for every chosen VMM strategy
(``equivalence``, ``resource-control``, ``efficiency``, ``vm-isolation``): privileged and
sensitive instructions, wild jumps, accesses aimed at the pages the walk found reachable, the
kernel's frames and page tables, the VMM region, other VMs and device ports, self-modifying
code.  Each runs on top of the kernel (`toyvisor.testing.harness.user_guest`); a failure is
shrunk, then made to stand alone (`toyvisor.testing.program.Program.standalone`).  A property
that failed is reported and the search goes on for the others.  The same `seed` gives the same
report.
"""

from __future__ import annotations

import attrs
from hypothesis import HealthCheck, Phase, Verbosity, assume, example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable

from toyvisor.tools.guest import Guest

from . import strategies
from .defaults import DEFAULT_EFFICIENCY, DEFAULT_EXAMPLES, DEFAULT_SEED
from .harness import HarnessError, fits, kernel_targets, reach, user_guest
from .program import Instr, Program
from .properties import (
    KERNEL_PROPERTIES,
    PROPERTIES,
    Finding,
    PropertyViolation,
    exposure_reason,
    kernel_isolation,
    run_under,
)
from .reach import Exposure, Survey
from .smp import (
    SMP_PROPERTIES,
    SMPCheckError,
    bare_smp_guest,
    check_counts,
    smp_label,
    smp_programs,
)


#: Exposures `CheckReport.text` lists (a kernel that maps all memory at PL3 exposes every
#: frame; the JSON report has them all).
SHOWN_EXPOSURES = 12


def default_vmms() -> tuple[str, ...]:
    """Every registered strategy that runs the kernel's own image, in its default variant."""
    from toyvisor.vmm.strategies import STRATEGIES, load_builtin, make_strategy

    load_builtin()
    return tuple(make_strategy(name).spec for name, cls in STRATEGIES.items()
                 if name != "native" and not cls.runs_port)


@attrs.frozen
class PropertyReport:
    """One property under one strategy (``native`` for the kernel's own property)."""

    name: str
    strategy: str
    held: bool
    reason: str | None = None
    counterexample: str | None = None
    access: str | None = None
    #: For ``kernel-isolation``: the kernel pages ring 3 can reach (found by walking the page
    #: tables at ring-3 entries, before any search).
    exposures: tuple[Exposure, ...] = ()

    def to_dict(self) -> dict:
        return attrs.asdict(self)


@attrs.frozen
class CheckReport:
    """Every property's outcome for one kernel."""

    guest: str
    seed: int
    examples: int
    properties: tuple[PropertyReport, ...]

    @property
    def held(self) -> bool:
        return all(p.held for p in self.properties)

    def to_dict(self) -> dict:
        return {"guest": self.guest, "seed": self.seed, "examples": self.examples,
                "held": self.held, "properties": [p.to_dict() for p in self.properties]}

    def text(self) -> str:
        lines = []
        for p in self.properties:
            lines.append(f"{'held  ' if p.held else 'FAILED'}  {p.name:<17} {p.strategy}")
            if not p.held:
                lines.append(f"        {p.reason}")
                lines += [f"          {exposure}" for exposure in p.exposures[:SHOWN_EXPOSURES]]
                if len(p.exposures) > SHOWN_EXPOSURES:
                    lines.append(f"          ... and {len(p.exposures) - SHOWN_EXPOSURES} more "
                                 "(--json lists them all)")
                if p.access:
                    lines.append(f"        first offending access: {p.access}")
                if p.counterexample:
                    lines.append("        counterexample:")
                    lines += [f"          {line}" for line in p.counterexample.splitlines()]
        verdict = "every property held" if self.held else "a property FAILED"
        lines.append(f"{self.guest}: {verdict} ({self.examples} programs per property, "
                     f"seed {self.seed})")
        return "\n".join(lines)


def adversarial_programs(kernel: Guest, targets: strategies.Targets | None = None,
                         vectors=()):
    """The programs `check_kernel` tries on `kernel` (`targets`: `kernel_targets`'s;
    `vectors`: the system-call vectors its interrupt table opens to ring 3)."""
    return strategies.programs(privileged=True, sensitive=True, wild=True,
                               targets=kernel_targets(kernel) if targets is None else targets,
                               self_modifying=True, max_size=12, access_weight=4,
                               vectors=tuple(sorted(vectors)))


def probe(exposure: Exposure) -> Program:
    """The program that touches an exposed page: a load, or a store of 0 for a writable one."""
    what = exposure.holds.split(";")[0].split(" (")[0].split(" of ")[0].removeprefix("the ")
    address = Instr("li", (strategies.ADDRESS_REGISTER, exposure.va), what)
    if exposure.access == "write":
        return Program((address, Instr("li", (1, 0)),
                        Instr("st", ((strategies.ADDRESS_REGISTER, 0), 1))))
    return Program((address, Instr("ld", (1, (strategies.ADDRESS_REGISTER, 0)))))


def sweep(kernel: Guest, targets: strategies.Targets | None = None,
          vectors=()) -> list[Program]:
    """One store and one load at each of the kernel's own targets (its code and data, its page
    tables), and each of its system-call `vectors` once: the cheapest probes of its protection,
    tried before the random programs."""
    targets = kernel_targets(kernel) if targets is None else targets
    found = [Program((Instr("int", (vector,), "system call"),)) for vector in sorted(vectors)]
    for what, address in targets.addresses():
        if what not in ("kernel", "page_tables"):
            continue
        for op, values in (("st", ((strategies.ADDRESS_REGISTER, 0), 1)),
                           ("ld", (1, (strategies.ADDRESS_REGISTER, 0)))):
            setup = (Instr("li", (1, 0)),) if op == "st" else ()
            found.append(Program((Instr("li", (strategies.ADDRESS_REGISTER, address),
                                        what.replace("_", " ")), *setup, Instr(op, values))))
    return found


def _search(programs, test, examples: int, seed: int,
            explicit: tuple[Program, ...] = ()) -> PropertyViolation | None:
    """Run `test` on the `explicit` programs, then up to `examples` generated ones; the shrunk
    violation, or None."""

    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              verbosity=Verbosity.quiet, report_multiple_bugs=False, print_blob=False,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck))
    @hypothesis_seed(seed)
    @given(programs)
    def run(program):
        test(program)

    for program in reversed(explicit):
        run = example(program)(run)
    try:
        run()
    except PropertyViolation as violation:
        return violation
    except Unsatisfiable:
        raise HarnessError("the kernel's user_program area is too small for the generated "
                           "programs (they need up to 244 bytes)") from None
    return None


def _standalone(violation: PropertyViolation, test, registers, kernel) -> PropertyViolation:
    """The violation with its program made to set every register it reads (to the values the
    kernel leaves at its first ring-3 entry), when that program still fails the same way."""
    program = violation.program
    if program is None or registers is None:
        return violation
    whole = program.standalone(registers)
    if whole == program or not fits(kernel, whole):
        return violation
    try:
        test(whole, [violation.finding.name])
    except PropertyViolation as again:
        if again.finding.name == violation.finding.name:
            return again
    return violation


def _report(strategy: str, finding: Finding, program: Program | None) -> PropertyReport:
    return PropertyReport(finding.name, strategy, False, finding.reason,
                          program.source() if program is not None else None,
                          str(finding.access) if finding.access is not None else None,
                          finding.exposures)


def _reports(kernel, names, strategy, test, programs, examples, seed,
             explicit=(), registers=None, progress=None) -> list[PropertyReport]:
    remaining = list(names)
    reports = []
    while remaining:
        tried = [0]

        def counted(program, tried=tried):
            tried[0] += 1
            if progress is not None:
                progress(f"{', '.join(remaining)} under {strategy}",
                         min(tried[0], examples), examples)
            test(program, remaining)

        violation = _search(programs, counted, examples, seed, explicit)
        if violation is None:
            reports += [PropertyReport(name, strategy, True) for name in remaining]
            break
        violation = _standalone(violation, test, registers, kernel)
        reports.append(_report(strategy, violation.finding, violation.program))
        remaining.remove(violation.finding.name)
    order = {name: i for i, name in enumerate(names)}
    return sorted(reports, key=lambda r: order[r.name])


def native_test_for(kernel: Guest, max_steps: int | None = None, *, walk: bool = True):
    """``test(program, properties)``: raise `PropertyViolation` if `program` on `kernel` breaks
    the kernel's own property (natively) and it is among `properties`.  With `walk` the page
    tables are walked at the program's ring-3 entries too, so a program that makes the kernel
    expose a page (a system call that maps it at PL3) fails even if it never touches it."""

    def test(program: Program, remaining) -> None:
        if not fits(kernel, program):
            assume(False)
        finding = kernel_isolation(user_guest(kernel, program), max_steps=max_steps, walk=walk)
        if finding is not None and finding.name in remaining:
            raise PropertyViolation(finding, program, "native")

    return test


def vmm_test_for(kernel: Guest, spec: str, efficiency: float = DEFAULT_EFFICIENCY,
                 max_steps: int | None = None):
    """``test(program, properties)`` for the `PROPERTIES` under the strategy `spec`."""

    def test(program: Program, remaining) -> None:
        if not fits(kernel, program):
            assume(False)
        run = run_under(user_guest(kernel, program), spec, program=program,
                        efficiency=efficiency, max_steps=max_steps, properties=remaining)
        for finding in run.findings:
            if finding.name in remaining:
                raise PropertyViolation(finding, program, spec)

    return test


def smp_test_for(spec: str, cpus: int, pcpus: int | None = None,
                 efficiency: float = DEFAULT_EFFICIENCY, max_steps: int | None = None):
    """``test(program, properties)`` for the `SMP_PROPERTIES` of `program` as a VM of `cpus`
    vCPUs under `spec` on `pcpus` physical CPUs."""
    cpus, pcpus = check_counts(cpus, pcpus)
    label = smp_label(spec, cpus, pcpus)

    def test(program: Program, remaining) -> None:
        wanted = [p for p in remaining if p in SMP_PROPERTIES]
        run = run_under(bare_smp_guest(program, cpus), spec, program=program,
                        efficiency=efficiency, max_steps=max_steps, properties=wanted,
                        pcpus=pcpus)
        for finding in run.findings:
            raise PropertyViolation(finding, program, label)

    return test


def exposed(kernel: Guest, surveyed: Survey,
            max_steps: int | None = None) -> PropertyReport | None:
    """``kernel-isolation`` FAILED at once when the page tables at some ring-3 entry map a
    kernel page user-accessible (`toyvisor.testing.reach`), with a program that touches the
    first such page the user program can reach (checked by running it); None when none is."""
    if not surveyed.exposures:
        return None
    test = native_test_for(kernel, max_steps, walk=False)  # the probe's own access
    for exposure in surveyed.exposures[:8]:
        program = probe(exposure)
        if not fits(kernel, program):
            continue
        try:
            test(program, ["kernel-isolation"])
        except PropertyViolation as violation:
            finding = attrs.evolve(violation.finding, reason=exposure_reason(surveyed.exposures),
                                   exposures=tuple(surveyed.exposures))
            return _report("native", finding, program)
    finding = Finding("kernel-isolation", exposure_reason(surveyed.exposures),
                      exposures=tuple(surveyed.exposures))
    return _report("native", finding, None)


def budget(kernel: Guest) -> int:
    """The instruction budget of each run: twice what the kernel needs with an empty user
    program, plus 10,000 (a program that spins costs that, not the kernel's whole budget), and
    never more than the kernel's own ``max_steps``.  Checks the user-program convention too."""
    from toyvisor.vmm.strategies.native import Native

    empty = Native().run(user_guest(kernel, Program(())))
    return min(kernel.max_steps, 2 * empty.guest_instructions + 10_000)


def check_kernel(kernel: Guest, vmms=None, *, examples: int = DEFAULT_EXAMPLES,
                 seed: int = DEFAULT_SEED, efficiency: float = DEFAULT_EFFICIENCY,
                 max_steps: int | None = None, progress=None, cpus: int = 1,
                 pcpus: int | None = None) -> CheckReport:
    """Check `kernel` (a guest following the user-program convention) natively and under each
    strategy spec of `vmms` (None: `default_vmms`; empty: the kernel's own property only);
    `max_steps` defaults to `budget`.  With `cpus` > 1 the VMM properties are also checked for
    SMP VMs: generated programs as guests of `cpus` vCPUs on `pcpus` physical CPUs
    (`toyvisor.testing.smp`).  `progress`, if given, is called as
    ``progress(what is searched, programs tried, programs per search)`` (`toyvisor.tools.progress`)."""
    from toyvisor.vmm.strategies import make_strategy

    from toyvisor.vmm.strategies import StrategyError

    if not 0.0 <= efficiency <= 1.0:  # nan compares false both ways: refused too
        raise HarnessError(f"the efficiency threshold must be a number from 0 to 1, "
                           f"not {efficiency!r}")
    if cpus != 1:
        cpus, pcpus = check_counts(cpus, pcpus)
    elif pcpus not in (None, 1):
        raise SMPCheckError("--pcpus needs --cpus (the vCPUs of the SMP VMs) above 1")
    vmms = default_vmms() if vmms is None else tuple(vmms)
    for spec in vmms:  # bad names fail before any search starts
        strategy = make_strategy(spec)
        if strategy.name == "native":
            raise StrategyError("native is the bare machine, not a VMM: the kernel's own property "
                                "is always checked on it (choose a VMM strategy for --vmm)")
        if strategy.runs_port:
            raise StrategyError(f"{spec} runs a port of the kernel; toyvisor check runs the "
                                "kernel's own image (choose another --vmm)")
    if max_steps is None:
        max_steps = budget(kernel)
    if progress is not None:
        progress("walking the page tables at ring-3 entries", 0, 0)
    surveyed = reach(kernel, max_steps)
    if not surveyed.entries:  # every property would hold, vacuously
        raise HarnessError(
            f"{kernel.name}: the kernel never entered ring 3 with an empty user program (it "
            f"stopped: {surveyed.machine.cpu.stop_reason or 'budget'} after "
            f"{surveyed.machine.cpu.retired:,} instructions), so no user program can be checked")
    targets = kernel_targets(kernel, surveyed)
    programs = adversarial_programs(kernel, targets, surveyed.vectors)
    registers = surveyed.entry_registers

    found = exposed(kernel, surveyed, max_steps)
    if found is not None:  # no search needed
        reports = [found]
    else:
        reports = _reports(kernel, KERNEL_PROPERTIES, "native", native_test_for(kernel, max_steps),
                           programs, examples, seed,
                           tuple(sweep(kernel, targets, surveyed.vectors)), registers, progress)
    for spec in vmms:
        reports += _reports(kernel, PROPERTIES, make_strategy(spec).spec,
                            vmm_test_for(kernel, spec, efficiency, max_steps), programs,
                            examples, seed, registers=registers, progress=progress)
    if cpus > 1:
        for spec in vmms:
            reports += _reports(kernel, SMP_PROPERTIES,
                                smp_label(make_strategy(spec).spec, cpus, pcpus),
                                smp_test_for(spec, cpus, pcpus, efficiency, max_steps),
                                smp_programs(), examples, seed, progress=progress)
    return CheckReport(kernel.name, seed, examples, tuple(reports))


__all__ = ["CheckReport", "PropertyReport", "adversarial_programs", "budget", "check_kernel",
           "default_vmms", "exposed", "native_test_for", "probe", "smp_test_for", "sweep",
           "vmm_test_for"]
