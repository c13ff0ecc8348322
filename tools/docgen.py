"""Docs that cannot drift: regenerate every command output and figure quoted in the docs.

A document marks what the code produces, and this module reruns it:

- a **block**: ``<!-- generate: SOURCE -->`` on a line of its own, the produced text, then
  ``<!-- end -->``.  SOURCE is ``toyvisor ARGS`` (the command's output, verbatim: a Markdown
  table, say) or ``$ toyvisor ARGS`` (a transcript: a fenced block showing the command line
  and what it printed, standard error included, the way a terminal shows it).  A transcript may
  end in ``| head -N``, ``| tail -N`` or ``| sed -n A,Bp``, and ``$ cat PATH`` quotes a shipped file;
- a **debugger transcript**: a block whose SOURCE is ``debug GUEST [--vmm NAME] [--input TEXT]
  [--max-steps N]``; its ``(toyvisor) COMMAND`` lines are the script, and the block is what
  ``toyvisor debug … --commands`` prints for them;
- a **picture**: a file under docs/ named in `PICTURES`, drawn by toyvisor.tools.plot;
- a **figure** inside prose: ``<!-- fig: NAME ARGS -->VALUE<!-- /fig -->``, where NAME is one
  of `FIGURES` (a cost-profile price, a nanobenchmark cell, a run's instruction count …).

Commands run in a scratch directory where ``guests`` and ``tests`` lead to the repository's, so
relative paths read as in the docs and files a command writes (``asm -o``) land nowhere that
matters.  ``python -m toyvisor.tools.docgen`` rewrites the stale regions of every document
(`DOCUMENTS`); ``--check`` only lists them and exits 1 if there are any.  tests/test_docs.py
runs the check, so a change that alters an output fails until the docs are regenerated.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import write_atomic

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^<!-- generate: (?P<source>[^\n]*?) -->\n(?P<body>.*?)^<!-- end -->$",
                   re.S | re.M)
FIGURE = re.compile(r"<!-- fig: (?P<source>[^\n]*?) -->(?P<value>[^\n]*?)<!-- /fig -->")
#: what a scratch directory links to, so that relative paths in the docs resolve
LINKED = ("guests", "tests")
_PIPE = re.compile(r"\s*\|\s*(?:(head|tail)\s+-(\d+)|sed\s+-n\s+(\d+),(\d+)p)\s*$")


class DocgenError(ToyvisorError):
    """A marker whose source cannot be produced (unknown figure, command that is not toyvisor)."""


def documents(root: Path = REPO) -> list[Path]:
    """The documents with generated regions: README.md, docs/*.md, guests/**/README.md."""
    found = [root / "README.md", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "guests").glob("**/README.md"))]
    return [p for p in found if p.is_file()]


# -- producing ----------------------------------------------------------------------------------

@functools.cache
def _scratch() -> Path:
    where = Path(tempfile.mkdtemp(prefix="toyvisor-docgen-"))
    for name in LINKED:
        os.symlink(REPO / name, where / name)
    return where


@functools.cache
def toyvisor(command: str) -> str:
    """What ``toyvisor ARGS`` prints (standard output and error, interleaved), run in the
    scratch directory; any exit status is accepted (a doc may show a failure)."""
    from click.testing import CliRunner

    from .cli import main

    words = shlex.split(command)
    if not words or words[0] != "toyvisor":
        raise DocgenError(f"not a toyvisor command: {command!r}")
    here = Path.cwd()
    os.chdir(_scratch())
    try:
        result = CliRunner().invoke(main, words[1:], prog_name="toyvisor")
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise DocgenError(f"{command}: {type(result.exception).__name__}: {result.exception}")
    return result.output


def transcript(command: str) -> str:
    """A fenced block: ``$ COMMAND`` then what it printed (``| head/tail -N`` applied)."""
    pipe = _PIPE.search(command)
    run = command[:pipe.start()] if pipe else command
    words = shlex.split(run)
    if words[:1] == ["cat"] and len(words) == 2:
        output = (REPO / words[1]).read_text(encoding="utf-8")
    else:
        output = toyvisor(run)
    lines = output.splitlines()
    if pipe:
        if pipe[1]:
            n = int(pipe[2])
            lines = lines[:n] if pipe[1] == "head" else lines[-n:]
        else:  # sed -n A,Bp: lines A to B, counted from 1
            lines = lines[int(pipe[3]) - 1:int(pipe[4])]
    body = "".join(line.rstrip() + "\n" for line in lines)
    return f"```\n$ {command}\n{body}```\n"


def produce_block(source: str, written: str = "") -> str:
    """The text a block marker's SOURCE stands for (`written`, the block as it stands, gives a
    debugger transcript its script)."""
    if source.startswith("debug "):
        return debug_transcript(source[len("debug "):], written)
    if source.startswith("$ "):
        return transcript(source[2:])
    if source.startswith("toyvisor "):
        return toyvisor(source)
    if source.startswith("table "):
        name, *args = shlex.split(source)[1:] or [""]
        if name not in TABLES:
            raise DocgenError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        return TABLES[name](*args)
    raise DocgenError(f"unknown block source {source!r} (toyvisor ARGS, $ toyvisor ARGS, "
                      "debug ARGS or table NAME ARGS)")


def debug_transcript(args: str, written: str) -> str:
    """A fenced ``text`` block: what ``toyvisor debug ARGS --commands`` prints for the
    ``(toyvisor) COMMAND`` lines of `written`."""
    from .debug import Session
    from .debug.monitor import PROMPT, Monitor, banner, run_script
    from .guest import load_guest
    from .runner import with_overrides

    commands = [line[len(PROMPT):] for line in written.splitlines() if line.startswith(PROMPT)]
    words = shlex.split(args)
    if not words:
        raise DocgenError("debug: which guest?")
    guest, options = words[0], words[1:]
    values = {"--vmm": None, "--input": None, "--max-steps": None}
    while options:
        name = options.pop(0)
        if name not in values or not options:
            raise DocgenError(f"debug: unsupported option {name!r} in {args!r}")
        values[name] = options.pop(0)
    loaded = with_overrides(load_guest(guest), console_input=values["--input"],
                            max_steps=int(values["--max-steps"]) if values["--max-steps"]
                            else None)
    session = Session(loaded, vmm=values["--vmm"])
    try:
        monitor = Monitor(session)
        out = [banner(monitor)]
        run_script(monitor, commands, out.append)
    finally:
        session.close()
    return "```text\n" + "\n".join(out) + "\n```\n"


def _hardware_exits(*guests: str) -> str:
    """Per guest: native and both hardware-assisted generations — exits by reason, the
    events the hardware delivered itself, the VMM's injections, the slowdown in cycles."""
    lines = ["| guest | strategy | exits by reason | guest_trap | injections | slowdown (cycles) |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for guest in guests:
        name = Path(guest).name
        for spec in ("native", "hardware-assisted:2", "hardware-assisted:1"):
            result = _run(guest, spec)
            exits = sorted(((c.removeprefix("exit:"), n) for c, n in result.by_cause.items()
                            if c.startswith("exit:")), key=lambda item: (-item[1], item[0]))
            total = sum(n for _, n in exits)
            reasons = (", ".join(f"{c} {n:,}" for c, n in exits) + f" ({total:,})"
                       if exits else "—")
            injections = ("—" if spec == "native"
                          else f"{result.events.get('interrupt_injection', 0):,}")
            lines.append(f"| {name} | {spec} | {reasons} | "
                         f"{result.events.get('guest_trap', 0):,} | {injections} | "
                         f"{result.slowdown:.2f}× |")
    return "\n".join(lines) + "\n"


# -- blocks of issue 10: a user's cost profile and its errors, the hypervisor's log ------------

def _example_profile() -> str:
    """A user's profile file: pentium4's prices under a name of the user's own."""
    from toyvisor.vmm import costs

    return costs.CostModel(
        name="my-machine", description="my lab machine, measured with guests/nanobench under KVM",
        costs=costs.named("pentium4").costs,  # the document says whose prices they are
        sources={"vm_exit": "my measurement: 1,000,000 cpuid exits, rdtsc before/after"},
    ).to_toml()


def _cost_profile_example() -> str:
    return f"```toml\n{_example_profile()}```\n"


def _cost_profile_errors() -> str:
    """What ``--cost-model my.toml`` says for the example broken in one way each (and missing)."""
    from toyvisor.vmm import costs

    good = _example_profile()
    broken = [
        re.sub(r"^world_switch = .*\n", "", good, flags=re.M),
        re.sub(r"^trap = .*$", "trap = -1", good, flags=re.M),
        re.sub(r"^trap = .*$", "trap = 1.5", good, flags=re.M),
        good.replace("[costs]\n", "[costs]\nteleport = 5\n"),
        "speed = 3\n" + good,
        good.replace("[costs]\n", "[costs]\ninstruction = one\n").replace("\ninstruction = 1\n", "\n"),
    ]
    lines = []
    for text in broken:
        try:
            costs.parse(text, origin="my.toml")
        except costs.CostModelError as error:
            lines.append(f"error: {error}")
        else:
            raise DocgenError("a broken example profile loaded")
    missing = _scratch() / "my.toml"
    try:
        costs.load(missing)
    except costs.CostModelError as error:
        lines.append(f"error: {str(error).replace(str(missing), 'my.toml')}")
    return "```\n" + "\n".join(lines) + "\n```\n"


def _pv_log(config: str, command: str, kernel: str) -> str:
    """The hypervisor's log lines of `config` booted with one management `command`, then of a
    paravirtual `kernel` (a .s file) run alone: a fenced block."""
    from toyvisor.tools.domains import boot, hypervisor_log, load_config

    lines = hypervisor_log(boot(load_config(REPO / config), [command])).splitlines()
    lines += [refusal.line() for refusal in _pv_run(kernel).refusals]
    return "```\n" + "\n".join(lines) + "\n```\n"


#: name → function of the marker's arguments returning a whole block (Markdown).
def _nanobench_markdown() -> str:
    """What ``toyvisor nanobench --markdown`` prints (the same table the figures read)."""
    from toyvisor.vmm import nanobench

    return nanobench.render_markdown(_nanobench())


def _net(function: str) -> Callable[[], str]:
    """A table of docs/multicomputer.md: the function of toyvisor.tools.netreport so named."""
    def table() -> str:
        from . import netreport

        return getattr(netreport, function)()
    return table


def _smp_shootdown(guest: str, cpus: str, pcpus: str | None = None) -> str:
    """guests/pvsmp under every strategy as a VM of `cpus` vCPUs: its totals, and what its one
    TLB shootdown took — IPIs to the other vCPUs (each a handler and an ``invlpg``) under the
    classic strategies, one hypercall under paravirtual (docs/paravirtualization.md, SMP)."""
    import attrs as _attrs

    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm.comparison import compare

    from toyvisor.asm import assemble_file
    from toyvisor.vmm import run_guest

    loaded = _attrs.evolve(load_guest(guest), cpus=int(cpus))
    pcpus = None if pcpus is None else int(pcpus)
    lines = ["| strategy | equivalent | guest instructions | VMM entries | est. cycles | "
             "IPIs on vector 0x31 (shootdown) | `invlpg` callouts / exits | "
             "`event_channel_op` hypercalls | `mmuext_op` hypercalls |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    ipi_port = _attrs.evolve(loaded, pv_image=assemble_file(
        Path(guest) / "kernel_ipi.s", include_paths=(Path(guest),)).image)
    runs = [(r.strategy, r) for r in compare(loaded, pcpus=pcpus)]
    runs.append(("paravirtual, shootdown by IPIs (kernel_ipi.s)",
                 run_guest(ipi_port, "paravirtual", pcpus=pcpus)))
    for name, r in runs:
        causes = r.by_cause
        invlpg = sum(n for k, n in causes.items() if k.endswith(":invlpg"))
        lines.append(f"| {name} | {'yes' if r.equivalent else 'NO'} | "
                     f"{r.guest_instructions:,} | {r.vmm_entries:,} | {r.cycles:,} | "
                     f"{causes.get('ipi 0x31', 0)} | {invlpg} | "
                     f"{causes.get('hypercall:event_channel_op', 0)} | "
                     f"{causes.get('hypercall:mmuext_op', 0)} |")
    return "\n".join(lines) + "\n"


TABLES: dict[str, Callable[..., str]] = {
    "hardware-exits": _hardware_exits,          # table hardware-exits GUEST...
    "nanobench": _nanobench_markdown,           # table nanobench: = toyvisor nanobench --markdown
    # the multicomputer (docs/multicomputer.md)
    "net-figures": _net("figures_markdown"),    # the topologies' figures
    "net-zero-load": _net("zero_load_markdown"),  # zero-load latency, formula and measured
    "net-doc-load": _net("doc_load_markdown"),  # latency vs offered load (its picture too)
    "net-deadlock": _net("deadlock_markdown"),  # wormhole on a torus, without and with dateline
    "net-copies": _net("copies_markdown"),      # copies per message, by path
    "net-variants": _net("variants_markdown"),  # the send and receive variants' consoles
    "net-pingpong": _net("pingpong_markdown"),  # ping-pong latency by topology and switching
    "net-guests": _net("guests_markdown"),      # the example cluster files' results
    # issue 10's loose ends (docs/cost-model.md, docs/paravirtualization.md)
    "cost-profile-example": _cost_profile_example,  # a user's profile (pentium4's prices)
    "cost-profile-errors": _cost_profile_errors,    # what loading it broken says
    "pv-log": _pv_log,                          # table pv-log CONFIG COMMAND KERNEL.s
    "smp-shootdown": _smp_shootdown,            # table smp-shootdown GUEST CPUS [PCPUS]
}


# -- figures --------------------------------------------------------------------------------------

@functools.cache
def _nanobench():
    from toyvisor.vmm import nanobench

    return nanobench.measure()  # what `toyvisor nanobench` measures by default


def _nanobench_cycles(benchmark: str, strategy: str) -> str:
    from toyvisor.vmm import nanobench

    return nanobench.format_cycles(_nanobench().cell(benchmark, strategy))


def _nanobench_entries(benchmark: str, strategy: str) -> str:
    return f"{_nanobench().cell(benchmark, strategy).vmm_entries:.2f}"


def _cost(key: str, profile: str = "pentium4") -> str:
    from toyvisor.vmm import costs

    return f"{costs.named(profile).cost(key):,}"


def _cycles(expression: str, profile: str = "pentium4") -> str:
    """``trap+interrupt_injection``, ``2*translated_instruction``, ``a+b-c``: the events'
    cycles under `profile`."""
    from toyvisor.vmm import costs

    model = costs.named(profile)
    total = 0
    for sign, term in re.findall(r"([+-]?)([^+-]+)", expression):
        count, _, key = term.rpartition("*")
        total += (-1 if sign == "-" else 1) * int(count or 1) * model.cost(key)
    return f"{total:,}"


@functools.cache
def _run(guest: str, strategy: str):
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm import run_guest

    return run_guest(load_guest(REPO / guest), strategy)


def _instructions(guest: str, strategy: str = "native") -> str:
    return f"{_run(guest, strategy).guest_instructions:,}"


def _plain_instructions(guest: str, strategy: str = "native") -> str:
    return str(_run(guest, strategy).guest_instructions)


@functools.cache
def _pv_run(kernel: str):
    """A paravirtual kernel (a .s file) run alone as dom0, 64 KiB, priced with pentium4."""
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm import costs, make_strategy

    guest = load_guest(REPO / kernel)
    guest = attrs.evolve(guest, pv_image=guest.image, memory_size=0x10000)
    result = make_strategy("paravirtual").run(guest)
    return attrs.evolve(result, cycles=costs.named("pentium4").cycles(result.events))


def _pv(kernel: str, field: str) -> str:
    result = _pv_run(kernel)
    value = {"instructions": result.guest_instructions, "entries": result.vmm_entries,
             "cycles": result.cycles,
             "hypercalls": sum(n for c, n in result.by_cause.items()
                               if c.startswith("hypercall:"))}[field]
    return f"{value:,}"


def _slowdown(guest: str, strategy: str) -> str:
    return f"{_run(guest, strategy).slowdown:.2f}x"


def _default_vmms() -> str:
    from toyvisor.testing.check import default_vmms

    return ", ".join(f"`{spec}`" for spec in default_vmms())


def _nanobench_n() -> str:
    return str(_nanobench().iterations)


# -- split drivers, the domains example, check's defaults (issue 10) ----------------------------

@functools.cache
def _split_run(domus: str):
    """dom0 + two domUs through the split drivers: ``minikernel`` (the PV port twice) or
    ``hello`` (guests/dom0/domu_hello.s twice), measured as tests/vmm/test_pv_split_drivers.py."""
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm.paravirt.setup import measure

    if domus == "minikernel":
        guests = [load_guest("minikernel")] * 2
    else:
        hello = load_guest(REPO / "guests" / "dom0" / "domu_hello.s")
        guests = [attrs.evolve(hello, name=n, memory_size=0x10000, max_steps=200_000)
                  for n in ("a", "b")]
    return measure(load_guest("dom0"), guests,
                   disk=(REPO / "guests" / "minikernel" / "disk.txt").read_bytes())


def _split(domus: str, what: str, *args: str) -> str:
    """``split DOMUS stat DEVICE KIND`` (domU 1's ``DEVICE KIND``: requests, notifications to
    dom0 / from dom0, joined by '-'), ``split DOMUS checks`` (ring checks), ``split DOMUS
    outstanding DEVICE`` (most requests outstanding), ``split DOMUS entries DOMID``, ``split
    DOMUS cause DOMID CAUSE`` (VMM entries of one cause), ``split DOMUS disk-reads``,
    ``split DOMUS port-writes`` (dom0's
    console-port writes inside its multicalls) and ``split DOMUS per-byte`` (dom0's entries had
    each of them been a hypercall of its own)."""
    measured = _split_run(domus)
    system = measured.system
    domains = {d.domid: d for d in (system.dom0, *system.domus)}
    dom0 = system.dom0.vm
    multicalls = dom0.by_cause.get("hypercall:multicall", 0)
    # every physdev_op hypercall is one port access; the rest were inside multicalls
    port_writes = dom0.events["port_io"] - dom0.by_cause.get("hypercall:physdev_op", 0)
    if what == "stat":
        device, kind = args
        value = measured.stats()[1][f"{device} {kind.replace('-', ' ')}"]
    elif what == "checks":
        value = measured.watchers[0].checks
    elif what == "outstanding":
        index = [c.kind for c in system.connections].index(args[0])
        value = measured.watchers[index].max_outstanding
    elif what == "entries":
        value = domains[int(args[0])].vm.entries
    elif what == "cause":
        value = domains[int(args[0])].vm.by_cause.get(args[1], 0)
    elif what == "disk-reads":
        value = system.hypervisor.machine.platform.disk.reads
    elif what == "port-writes":
        value = port_writes
    elif what == "per-byte":
        value = dom0.entries - multicalls + port_writes
    else:
        raise DocgenError(f"unknown split-driver figure {what!r}")
    return f"{value:,}"


def _domains_ticks(config: str) -> str:
    """The machine clock when a domains configuration's run (no commands) ends."""
    from toyvisor.tools.domains import boot, load_config

    system = boot(load_config(REPO / config))
    return f"{system.hypervisor.cpu.platform.clock:,}"


def _check_default(name: str) -> str:
    """``toyvisor check``'s default ``examples``, ``seed`` or ``efficiency``."""
    from toyvisor.testing import defaults

    return str(getattr(defaults, f"DEFAULT_{name.upper()}"))


@functools.cache
def _ptbench_table():
    from toyvisor.vmm import ptbench

    return ptbench.measure()  # what `toyvisor ptbench` measures by default


def _ptbench(n: str, strategy: str, what: str) -> str:
    """``ptbench N STRATEGY entries|pt-entries|other|ratio``: VMM entries, those that wrote page
    tables, the rest, and the entries relative to paravirtual's (``18×``)."""
    table = _ptbench_table()
    cell = table.cell(int(n), strategy)
    if what == "ratio":
        return f"{cell.vmm_entries / table.entries(int(n), 'paravirtual'):.0f}×"
    value = {"entries": cell.vmm_entries, "pt-entries": cell.page_table_entries,
             "other": cell.vmm_entries - (cell.page_table_entries or 0)}[what]
    return f"{value:,}"


def _ptbench_port_io(n: str) -> str:
    """Port accesses of ptbench's native run for N mappings (its console input and output)."""
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm import ptbench, run_guest

    text = ptbench.command_line(int(n)) + "\n"
    guest = attrs.evolve(load_guest(ptbench.GUEST), console_input=text.encode("ascii"))
    return f"{run_guest(guest, 'native').events['port_io']:,}"


def _basis(guest: str, strategy: str) -> str:
    """What a run's equivalence verdict is based on (``equivalence_basis``)."""
    return _run(guest, strategy).equivalence_basis


def _pv_divergence(guest: str) -> str:
    """The divergence the port's outcome rules report when the port runs without a disk."""
    from toyvisor.tools.guest import load_guest
    from toyvisor.vmm import run_guest
    from toyvisor.vmm.outcome import Outcome, compare

    loaded = load_guest(REPO / guest)
    native = _run(guest, "native")
    port = run_guest(attrs.evolve(loaded, disk=None), "paravirtual")
    return compare(Outcome(native.console, b"", native.stop_reason),
                   Outcome(port.console, b"", port.stop_reason), loaded.port_outcome,
                   "paravirtual")


def _constant(module: str, name: str) -> str:
    """``constant toyvisor.MODULE NAME``: a module-level number of the code (a default, a
    limit), digit-grouped."""
    import importlib

    if not module.startswith("toyvisor."):
        raise DocgenError(f"constant: {module!r} is not a toyvisor module")
    value = getattr(importlib.import_module(module), name)
    return f"{value:,}"


#: name → function of the marker's arguments returning the figure's text.
FIGURES: dict[str, Callable[..., str]] = {
    "cost": _cost,                              # cost KEY [PROFILE]: a price, 3,209
    "cycles": _cycles,                          # cycles KEY+2*KEY-KEY [PROFILE]: their sum
    "nanobench": _nanobench_cycles,             # nanobench BENCH STRATEGY: cycles / iteration
    "nanobench-entries": _nanobench_entries,    # nanobench-entries BENCH STRATEGY
    "nanobench-n": _nanobench_n,                # the iteration count N the table used
    "instructions": _instructions,              # instructions GUEST [STRATEGY]: 40,801
    "instructions-plain": _plain_instructions,  # the same without digit grouping: 40801
    "slowdown": _slowdown,                      # slowdown GUEST STRATEGY: 0.19x
    "pv": _pv,                                  # pv KERNEL.s instructions|entries|cycles|hypercalls
    "default-vmms": _default_vmms,              # toyvisor check's default strategies
    "split": _split,                            # split minikernel|hello WHAT ARGS (see _split)
    "domains-ticks": _domains_ticks,            # domains-ticks CONFIG: clock at the run's end
    "check-default": _check_default,            # check-default examples|seed|efficiency
    "ptbench": _ptbench,                        # ptbench N STRATEGY entries|pt-entries|other|ratio
    "ptbench-port-io": _ptbench_port_io,        # ptbench-port-io N: the native run's port accesses
    "basis": _basis,                            # basis GUEST STRATEGY: the verdict's basis
    "pv-divergence": _pv_divergence,            # pv-divergence GUEST: the port without a disk
    "constant": _constant,                      # constant toyvisor.MODULE NAME: 2,000
}


def produce_figure(source: str) -> str:
    name, *args = shlex.split(source)
    if name not in FIGURES:
        raise DocgenError(f"unknown figure {name!r} (known: {', '.join(FIGURES)})")
    try:
        return FIGURES[name](*args)
    except (KeyError, TypeError) as exc:
        raise DocgenError(f"figure {source!r}: {exc}") from None


# -- pictures -------------------------------------------------------------------------------------
#: Small configurations, so that the docs test stays fast; each picture's doc says which.
NANOBENCH_STRATEGIES = ("native", "binary-translation", "hardware-assisted:1",
                        "hardware-assisted:2")
PTBENCH_NS = (16, 64, 256)


def _compare_picture():
    from toyvisor.vmm import comparison

    from . import pictures
    from .guest import load_guest

    guest = load_guest("minikernel")
    return pictures.compare_chart(comparison.compare(guest), None, guest.name)


def _nanobench_picture():
    from toyvisor.vmm import nanobench

    from . import pictures

    return pictures.nanobench_chart(nanobench.measure(NANOBENCH_STRATEGIES,
                                                      benchmarks=nanobench.PAPER_BENCHMARKS))


def _ptbench_picture():
    from toyvisor.vmm import ptbench

    from . import pictures

    return pictures.ptbench_chart(ptbench.measure(PTBENCH_NS, None, ptbench.DEFAULT_BATCH, None))


def _multicomputer_load_picture():
    from . import netreport

    return netreport.load_chart(netreport.doc_load_table())


def _migration_rounds_picture():
    """``toyvisor migrate guests/migration/dirty --input "256 400 2000" --method pre-copy
    --method pre-copy:qemu --method stop-and-copy --method post-copy --plot FILE``."""
    from toyvisor.vmm.migration import Link, compare
    from toyvisor.vmm.migration.compress import parse_methods

    from .guest import load_guest
    from .migrate_cli import DEFAULT_AT, rounds_chart
    from .runner import with_overrides

    guest = with_overrides(load_guest(REPO / "guests" / "migration" / "dirty"),
                           console_input="256 400 2000")
    results = compare(guest, "trap-emulate",
                      ["pre-copy", "pre-copy:qemu", "stop-and-copy", "post-copy"], link=Link(),
                      at=DEFAULT_AT, compression=parse_methods("none"), downtime_limit=1000)
    return rounds_chart(results)


def _sched(workload: str, policy: str) -> Callable[[], object]:
    """The Gantt chart of guests/sched/WORKLOAD.toml under POLICY (docs/scheduling.md)."""
    def draw():
        from toyvisor.vmm.sched import load_workload, simulate

        from .sched_cli import gantt_chart

        loaded = load_workload(REPO / "guests" / "sched" / f"{workload}.toml")
        (run,) = simulate(loaded, [policy])
        return gantt_chart(run, loaded.name)
    return draw


#: docs/ path → function drawing the picture (a toyvisor.tools.plot Chart); written as SVG.
PICTURES: dict[str, Callable[[], object]] = {
    "pictures/compare-minikernel.svg": _compare_picture,
    "pictures/nanobench.svg": _nanobench_picture,
    "pictures/ptbench.svg": _ptbench_picture,
    "pictures/multicomputer-load.svg": _multicomputer_load_picture,
    "migration-rounds.svg": _migration_rounds_picture,
    **{f"figures/sched-{workload}-{policy}.svg": _sched(workload, policy)
       for workload, policy in (("tanenbaum", "gang"), ("barrier", "timesharing"),
                                ("barrier", "gang"), ("locks", "smart"),
                                ("independent", "two-level"), ("mix", "space"), ("mix", "gang"))},
}


def pictures(root: Path = REPO) -> dict[Path, bytes]:
    """Every picture of `PICTURES` under ``root/docs`` with the bytes it must have."""
    from . import plot

    return {root / "docs" / name: plot.svg(draw()).encode("utf-8")
            for name, draw in PICTURES.items()}


def stale_pictures(root: Path = REPO) -> dict[Path, bytes]:
    """The pictures whose file is missing or differs from what the code draws now."""
    return {path: data for path, data in pictures(root).items()
            if not path.is_file() or path.read_bytes() != data}


# -- checking and rewriting ---------------------------------------------------------------------

@attrs.frozen
class Region:
    """One generated region of a document, as written and as the code produces it now."""

    path: Path
    line: int
    source: str
    written: str
    produced: str

    @property
    def stale(self) -> bool:
        return self.written != self.produced

    def where(self) -> str:
        return f"{self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path}:" \
               f"{self.line}"


def regions(path: Path) -> list[Region]:
    """Every block and figure of `path`, with what the code produces for it now."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Region(path, line, match["source"], match["body"],
                            produce_block(match["source"], match["body"])))
    for match in FIGURE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.append(Region(path, line, match["source"], match["value"],
                            produce_figure(match["source"])))
    return found


def regenerate_text(text: str) -> str:
    """`text` with every block and figure replaced by what the code produces now."""
    text = BLOCK.sub(lambda m: f"<!-- generate: {m['source']} -->\n"
                               f"{produce_block(m['source'], m['body'])}<!-- end -->", text)
    return FIGURE.sub(lambda m: f"<!-- fig: {m['source']} -->{produce_figure(m['source'])}"
                                "<!-- /fig -->", text)


def regenerate(paths: Iterable[Path]) -> list[Path]:
    """Rewrite the stale documents among `paths` (atomically); returns those changed."""
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = regenerate_text(text)
        if new != text:
            write_atomic(path, new.encode("utf-8"))
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m toyvisor.tools.docgen [--check] [FILE...]`` (default: every document)."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    named = [Path(a).resolve() for a in args if a != "--check"]
    paths = named or documents()
    try:
        drawn = {} if named else stale_pictures()
        if check:
            stale = [r for p in paths for r in regions(p) if r.stale]
            for region in stale:
                print(f"{region.where()}: stale: {region.source}")
            for path in drawn:
                print(f"{path.relative_to(REPO)}: stale picture")
            return 1 if stale or drawn else 0
        for path in regenerate(paths):
            print(f"regenerated {path}")
        for path, data in drawn.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
            print(f"redrew {path}")
    except (ToyvisorError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["BLOCK", "FIGURE", "FIGURES", "PICTURES", "DocgenError", "Region",
           "debug_transcript", "documents", "main", "pictures", "produce_block",
           "produce_figure", "regenerate", "regenerate_text", "regions", "stale_pictures",
           "toyvisor", "transcript"]
