"""The isolation properties of one guest under one VMM strategy, with every physical access audited.

- ``equivalence`` (Popek–Goldberg): the VM's guest-visible final state equals the native run's.
  Under ``trap-emulate`` and ``binary-translation`` (`DIRECT_USER_CODE`) a program with
  sensitive-unprivileged instructions may legitimately diverge (the ISA is not virtualizable,
  and user code runs untranslated); the property then requires the divergence to be *reported*
  (`toyvisor.vmm.equivalence.find_divergence` explains it).
- ``resource-control`` (Popek–Goldberg): the hypervisor's own audit and structural checks find
  nothing (`Hypervisor.resource_violations`).
- ``efficiency`` (Popek–Goldberg): the share of guest instructions executed directly is at least
  the threshold.
- ``vm-isolation``: run next to a second VM, no access made on the guest's behalf (load, store,
  page walk, fetch, DMA) lands outside its own frames — not in the other VM, not in the VMM
  region — and the other VM's memory is untouched.
- ``kernel-isolation`` (a property of the user's kernel, checked natively): no load or store
  executed at ring 3 lands outside the kernel's declared ``user_memory_*`` ranges.

Every check returns a `Finding` (None when the property held); `assert_*` raise
`PropertyViolation`, an `AssertionError` naming the property, the program as assembly and the
first offending access.
"""

from __future__ import annotations

import attrs

from toyvisor.asm import assemble_source
from toyvisor.isa.spec import PAGE_MASK, Privilege
from toyvisor.tools.guest import Guest

from .defaults import DEFAULT_EFFICIENCY
from .reach import Exposure, Survey, user_memory
from .smp import smp_victim
from .program import Program

PROPERTIES = ("equivalence", "resource-control", "efficiency", "vm-isolation")
KERNEL_PROPERTIES = ("kernel-isolation",)
#: Strategies that run guest code at ring 3 directly on the real CPU without hardware support:
#: a sensitive-unprivileged instruction there reads real state (Robin & Irvine; under binary
#: translation this is the "red pill": VMware, too, only translates kernel code).
DIRECT_USER_CODE = ("trap-emulate", "binary-translation")
_VICTIM_MEMORY = 0x4000
_VICTIM_PATTERN = bytes(range(256))


@attrs.frozen
class Access:
    """One physical access: what the CPU (or a device) did, where, and at which guest pc."""

    kind: str  # "read", "write" or "fetch"
    address: int
    size: int
    pc: int
    where: str = ""

    def __str__(self) -> str:
        place = f" ({self.where})" if self.where else ""
        return (f"{self.kind} of {self.size} byte(s) at physical {self.address:#010x}{place} "
                f"by the instruction at pc {self.pc:#010x}")


@attrs.frozen
class Finding:
    """A property that failed: its name, why, and the first offending access if there is one."""

    name: str
    reason: str
    access: Access | None = None
    #: For ``kernel-isolation``: the kernel frames the page tables map at ring 3 (`reach`).
    exposures: tuple[Exposure, ...] = ()


class PropertyViolation(AssertionError):
    """A property failed for a program (the message has the program as assembly)."""

    def __init__(self, finding: Finding, program: Program | None = None, strategy: str = ""):
        self.finding = finding
        self.program = program
        self.strategy = strategy
        lines = [f"property '{finding.name}' failed"
                 + (f" under {strategy}" if strategy else "") + f": {finding.reason}"]
        lines += [f"  {exposure}" for exposure in finding.exposures[:12]]
        if len(finding.exposures) > 12:
            lines.append(f"  ... and {len(finding.exposures) - 12} more (Finding.exposures)")
        if finding.access is not None:
            lines.append(f"first offending access: {finding.access}")
        if program is not None:
            lines += ["counterexample:", program.source().rstrip()]
        super().__init__("\n".join(lines))


def _kind(access: str, pa: int, size: int, pc: int) -> str:
    # An instruction fetch reads the word at the pc's page offset (when the decode cache misses).
    return "fetch" if access == "read" and size == 4 and pa & PAGE_MASK == pc & PAGE_MASK \
        else access


# -- under a VMM ---------------------------------------------------------------------------------

@attrs.frozen
class VMRun:
    """What one audited hypervisor run of a guest (next to a victim VM) observed."""

    strategy: str
    findings: tuple[Finding, ...]
    efficiency: float
    divergence: str | None


def _victim() -> Guest:
    """A second VM that keeps a known pattern in its memory and spins."""
    source = "start: jmp start\n.org 0x1000\n.byte " + ", ".join(map(str, _VICTIM_PATTERN))
    image = assemble_source(source, "<victim>").image
    return Guest(name="victim", image=image, memory_size=_VICTIM_MEMORY, max_steps=2_000)


def run_under(guest: Guest, spec: str, *, program: Program | None = None,
              efficiency: float = DEFAULT_EFFICIENCY, max_steps: int | None = None,
              properties=PROPERTIES, pcpus: int | None = None) -> VMRun:
    """Run `guest` under the strategy `spec` next to a victim VM, natively for comparison (only
    when ``equivalence`` is among `properties`), and evaluate `properties`.  A guest of several
    vCPUs (``guest.cpus``), or `pcpus` > 1, runs on a host of `pcpus` physical CPUs (default: one
    per vCPU) next to a victim of two vCPUs (`toyvisor.testing.smp`); ``equivalence`` is not
    judged for it (its vCPUs race)."""
    from toyvisor.vmm.equivalence import differences, find_divergence, native_state, vm_state
    from toyvisor.vmm.hypervisor import Hypervisor
    from toyvisor.vmm.strategies import StrategyError, make_strategy, vm_result
    from toyvisor.vmm.strategies.native import Native

    strategy = make_strategy(spec)
    if strategy.runs_port:
        raise StrategyError(f"{spec} runs a port of the kernel, not the guest's own image")
    smp = guest.cpus > 1 or (pcpus or 1) > 1
    if smp:
        victim = smp_victim(_VICTIM_MEMORY, _VICTIM_PATTERN)
        properties = tuple(p for p in properties if p != "equivalence")
    else:
        victim = _victim()
    round_up = -(-guest.memory_size // 4096) * 4096
    hv = Hypervisor(strategy, memory_size=(1 << 20) + round_up + _VICTIM_MEMORY, audit=True,
                    **({"pcpus": pcpus or guest.cpus} if smp else {}))
    # The hypervisor audits the VMs' slices; watch its own region too, so that a guest access
    # there is caught (its own page walks of the shadow tables stay exempt: `Hypervisor._audit`).
    hv.machine.memory.watch(0, hv.vmm_region, read=True, write=True)
    vm = hv.create_vm(guest)
    other = hv.create_vm(victim)
    vm.boot()
    other.boot()
    untouched = other.memory.snapshot()  # the victim only spins: its memory must stay so
    offending: list[Access] = []
    memory = hv.machine.memory
    audit = memory.audit

    def recording(access, pa, size, value):
        before = len(hv.violations)
        audit(access, pa, size, value)
        if len(hv.violations) > before and not offending:
            current = hv.current
            where = ("the other VM" if other.owns_host(pa, size) else
                     "the VMM region" if pa < hv.vmm_region else "not its memory")
            who = "" if current is vm else f"{current.name if current else 'no VM'}: "
            offending.append(Access(_kind(access, pa, size, hv.cpu.pc), pa, size, hv.cpu.pc,
                                    who + where))

    memory.audit = recording
    findings = []
    try:
        hv.run(max_steps=max_steps)
    except Exception as exc:  # noqa: BLE001 - whatever escapes the VMM is the VMM losing control
        findings.append(Finding("resource-control", f"the VMM lost control: {type(exc).__name__}: "
                                                    f"{exc}", offending[0] if offending else None))
    result = vm_result(strategy, hv, vm)

    diffs, divergence = [], None
    if "equivalence" in properties:
        native = Native()
        native.run(guest, max_steps=max_steps)
        diffs = differences(native_state(native.machine), vm_state(vm))
    if diffs:
        try:
            divergence = find_divergence(guest, spec, max_steps=max_steps)
        except Exception as exc:  # noqa: BLE001 - the replay runs the same (possibly broken) VMM
            divergence = f"the replay that explains it failed: {type(exc).__name__}: {exc}"
        expected = (strategy.name in DIRECT_USER_CODE and program is not None
                    and program.has(Privilege.SENSITIVE))
        if not expected or not divergence:
            findings.append(Finding("equivalence", "; ".join(diffs[:4]) + f" ({divergence})"))
    violations = list(result.resource_violations)
    if violations:
        findings.append(Finding("resource-control", violations[0],
                                offending[0] if offending else None))
    if result.efficiency < efficiency:
        findings.append(Finding("efficiency", f"{result.efficiency:.3f} of the instructions ran "
                                              f"directly, below the threshold {efficiency}"))
    intact = other.memory.snapshot() == untouched
    others = [v for v in hv.violations if not v.startswith(f"{vm.name}:")]
    if offending or not intact or hv.resource_violations(other) or others:
        reason = (hv.violations[0] if hv.violations else
                  "the other VM's memory changed" if not intact else
                  hv.resource_violations(other)[0])
        findings.append(Finding("vm-isolation", reason, offending[0] if offending else None))
    findings = [f for f in findings if f.name in properties]
    return VMRun(spec, tuple(findings), result.efficiency, divergence)


# -- the kernel's own protection (natively) ------------------------------------------------------

def _page_name(guest: Guest, pa: int) -> str:
    """How a report names kernel memory: the kernel's symbol for the page, if it has one."""
    page = pa & ~PAGE_MASK
    names = sorted(name for name, value in guest.image.symbols.items()
                   if value == page and not name.startswith("."))
    where = f"{names[0]} + {pa - page:#x}, " if names else ""
    return f"{where}outside the kernel's user memory"


def exposure_reason(exposures) -> str:
    """The reason of a ``kernel-isolation`` finding made by walking the page tables."""
    pages = "1 kernel page" if len(exposures) == 1 else f"{len(exposures)} kernel pages"
    return f"ring 3 can reach {pages}: the page tables at a ring-3 entry map it user-accessible" \
        .replace(" it ", " them " if len(exposures) != 1 else " it ")


def kernel_isolation(guest: Guest, *, max_steps: int | None = None,
                     walk: bool = True) -> Finding | None:
    """Run `guest` natively with every page audited; the first ring-3 load or store outside the
    kernel's ``user_memory_*`` ranges is a finding (page walks and interrupt delivery, which the
    hardware does on the kernel's behalf, are not counted).  With `walk`, every ring-3 entry's
    page tables are walked too (`toyvisor.testing.reach`): a user-accessible mapping of a kernel
    frame is a finding whether or not the program touched it."""
    from toyvisor.vmm.strategies.native import boot_native

    ranges = user_memory(guest)
    if not ranges:
        return Finding("kernel-isolation", f"{guest.name} declares no user_memory_* ranges "
                                           "(docs/testing-isolation.md)")
    machine = boot_native(guest)
    surveyed = Survey(guest, machine) if walk else None
    cpu, memory = machine.cpu, machine.memory
    hardware = [0]  # > 0 while the MMU walks tables or the CPU delivers an interrupt
    first: list[Access] = []
    translate, deliver = cpu.mmu.translate, cpu.deliver

    def walking(*args):
        hardware[0] += 1
        try:
            return translate(*args)
        finally:
            hardware[0] -= 1

    def delivering(*args, **kwargs):
        hardware[0] += 1
        try:
            return deliver(*args, **kwargs)
        finally:
            hardware[0] -= 1

    def audit(access, pa, size, value):
        if first or cpu.cpl != 3 or hardware[0]:
            return
        if any(start <= pa and pa + size <= end for _, start, end in ranges):
            return
        first.append(Access(_kind(access, pa, size, cpu.pc), pa, size, cpu.pc,
                            _page_name(guest, pa)))
        cpu.request_attention()

    cpu.mmu.translate = walking
    cpu.deliver = delivering
    memory.audit = audit
    memory.watch(0, memory.size, read=True, write=True)
    machine.run(max_steps=guest.max_steps if max_steps is None else max_steps)
    exposures = tuple(surveyed.exposures) if surveyed is not None else ()
    if exposures:
        return Finding("kernel-isolation", exposure_reason(exposures),
                       first[0] if first else None, exposures)
    if first:
        return Finding("kernel-isolation", "ring 3 reached kernel memory", first[0])
    return None


# -- assertions ----------------------------------------------------------------------------------

def check_program(guest: Guest, program: Program | None, strategies=("trap-emulate",), *,
                  properties=(*PROPERTIES, *KERNEL_PROPERTIES),
                  efficiency: float = DEFAULT_EFFICIENCY,
                  max_steps: int | None = None) -> list[tuple[str, Finding]]:
    """``(strategy, finding)`` for every property of `properties` that fails for `guest` (a
    kernel already carrying `program`, or a bare program guest); strategy ``native`` for the
    kernel's own properties."""
    failed = []
    if "kernel-isolation" in properties:
        finding = kernel_isolation(guest, max_steps=max_steps)
        if finding is not None:
            failed.append(("native", finding))
    wanted = [p for p in properties if p in PROPERTIES]
    if wanted:
        for spec in strategies:
            run = run_under(guest, spec, program=program, efficiency=efficiency,
                            max_steps=max_steps, properties=wanted)
            failed += [(spec, f) for f in run.findings]
    return failed


def assert_properties(guest: Guest, program: Program | None = None,
                      strategies=("trap-emulate",), **options) -> None:
    """Raise `PropertyViolation` for the first property `check_program` finds failing."""
    failed = check_program(guest, program, strategies, **options)
    if failed:
        spec, finding = failed[0]
        raise PropertyViolation(finding, program, spec)


def assert_equivalent(guest, strategy="trap-emulate", program=None, **options) -> None:
    """Popek–Goldberg equivalence of `guest` under `strategy` (see `run_under`)."""
    assert_properties(guest, program, (strategy,), properties=("equivalence",), **options)


def assert_resource_control(guest, strategy="trap-emulate", program=None, **options) -> None:
    """Popek–Goldberg resource control of `guest` under `strategy`."""
    assert_properties(guest, program, (strategy,), properties=("resource-control",), **options)


def assert_efficient(guest, strategy="trap-emulate", program=None, *,
                     threshold: float = DEFAULT_EFFICIENCY, **options) -> None:
    """Popek–Goldberg efficiency: at least `threshold` of the instructions ran directly."""
    assert_properties(guest, program, (strategy,), properties=("efficiency",),
                      efficiency=threshold, **options)


def assert_isolated(guest, strategy="trap-emulate", program=None, **options) -> None:
    """Isolation between VMs and from the VMM (every physical access audited)."""
    assert_properties(guest, program, (strategy,), properties=("vm-isolation",), **options)


def assert_kernel_isolates(guest, program=None, **options) -> None:
    """The kernel keeps ring 3 inside its ``user_memory_*`` ranges."""
    assert_properties(guest, program, (), properties=KERNEL_PROPERTIES, **options)


__all__ = ["DEFAULT_EFFICIENCY", "DIRECT_USER_CODE", "KERNEL_PROPERTIES", "PROPERTIES", "Access", "Finding",
           "PropertyViolation", "VMRun", "assert_efficient", "assert_equivalent",
           "assert_isolated", "assert_kernel_isolates", "assert_properties",
           "assert_resource_control", "check_program", "kernel_isolation", "run_under"]
