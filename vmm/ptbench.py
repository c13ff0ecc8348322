"""The page-table-heavy benchmark under every strategy (``toyvisor ptbench``).

``guests/ptbench`` builds a fork-like address space of N page mappings, switches to it and
halts (docs/ptbench.md). `measure` runs it for each N under each strategy — native, the
full-virtualization strategies on the unmodified kernel (``ptbench.s``) and, when the
``paravirtual`` strategy is registered, the paravirtualized kernel (``pv.s``, the guest's
``pv_image``) — and tabulates the VMM entries and the estimated cycles of each run::

    trap-emulate (shadow paging)   ~ N VMM entries: every page-table store is traced (vmm:ptemod)
    paravirtual (batched)          ~ ceil(N / (B * M)) + a constant: one VMM entry per multicall
                                     of M mmu_update calls of B requests each

Every run prints the guest's summary line, which must be the one computed here (`expected_line`)
— the same line for every strategy and for both kernels — or `measure` raises.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from toyvisor.isa.errors import ToyvisorError

from . import costs
from .compare import TYPE_ONE_ONLY
from .comparison import compare, default_specs

GUEST = "ptbench"
DEFAULT_NS = (64, 256, 1024)
DEFAULT_BATCH = 32
DEFAULT_CALLS = 1
PARAVIRTUAL = "paravirtual"
#: The guest's limits (guests/ptbench/params.s).
MAX_N = 2048
MAX_BATCH = 512
MAX_CALLS = 16
INPUT_MAX = 64
#: Its layout (guests/ptbench/layout.s): page i maps the pseudo-physical frame DATA_BASE + i*4K.
DATA_BASE = 0x00400000
PAGE_SIZE = 4096
#: VMM-entry causes that are page-table writes, per kind of VMM (the ones a cause name tells).
PAGE_TABLE_CAUSES = ("vmm:ptemod", "callout:st", "hypercall:mmu_update", "hypercall:multicall",
                     "hypercall:mmuext_op", "hypercall:update_va_mapping")


class PtbenchError(ToyvisorError):
    """A bad parameter, or a run that did not do what the bare machine does."""


def command_line(n: int, batch: int = DEFAULT_BATCH, calls: int = DEFAULT_CALLS, *,
                 touch: bool = False, quiet: bool = False) -> str:
    """The guest's parameter words: ``"<N> b=<B> m=<M> [touch] [quiet]"`` (checked)."""
    for name, value, top in (("N", n, MAX_N), ("batch", batch, MAX_BATCH),
                             ("calls per multicall", calls, MAX_CALLS)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise PtbenchError(f"{name} must be an integer from 1 to {top}, not {value!r}")
    words = [str(n), f"b={batch}", f"m={calls}"]
    if touch:
        words.append("touch")
    if quiet:
        words.append("quiet")
    return " ".join(words)


def expected_line(n: int, touch: bool = False) -> str:
    """The summary line both kernels print for N mappings."""
    tables = -(-n // 1024)
    checksum = sum(DATA_BASE + i * PAGE_SIZE for i in range(n)) & 0xFFFFFFFF
    return (f"ptbench: n={n} tables={tables} checksum={checksum:#010x} "
            f"touched={n if touch else 0}\n")


def pv_batches(n: int, batch: int = DEFAULT_BATCH, calls: int = DEFAULT_CALLS) -> int:
    """VMM entries the paravirtual kernel spends on the N entries: ceil(N / (B * M))."""
    return math.ceil(n / (batch * calls))


def with_command_line(image, text: str):
    """`image` (the paravirtual kernel) with its ``cmdline`` set to `text` — what a domain
    builder does with Xen's ``start_info.cmd_line``: a domU cannot read the console port."""
    from toyvisor.asm.image import Segment

    data = text.encode("ascii")
    if len(data) > INPUT_MAX:
        raise PtbenchError(f"command line {text!r} longer than {INPUT_MAX} bytes")
    address = (image.symbols or {}).get("cmdline")
    if address is None:
        raise PtbenchError("the paravirtual kernel has no 'cmdline' symbol")
    segments = []
    for segment in image.segments:
        if segment.address <= address and address + INPUT_MAX + 1 <= segment.end:
            offset = address - segment.address
            body = bytearray(segment.data)
            body[offset:offset + INPUT_MAX + 1] = data.ljust(INPUT_MAX + 1, b"\0")
            segment = Segment(segment.name, segment.address, bytes(body))
            address = None
        segments.append(segment)
    if address is not None:
        raise PtbenchError("the paravirtual kernel's 'cmdline' is not inside one segment")
    return attrs.evolve(image, segments=tuple(segments))


def paravirtual_registered() -> bool:
    from .strategies import STRATEGIES, load_builtin

    load_builtin()
    return PARAVIRTUAL in STRATEGIES


def default_strategies() -> tuple[str, ...]:
    """`default_specs()` plus ``paravirtual`` when it is registered (compare leaves it out by
    default, as it needs a guest written for it: ptbench has one)."""
    specs = list(default_specs())
    if paravirtual_registered() and not any(s.partition(":")[0] == PARAVIRTUAL for s in specs):
        specs.append(PARAVIRTUAL)
    return tuple(specs)


@attrs.frozen
class Cell:
    """One N under one strategy."""

    n: int
    strategy: str
    vmm_entries: int
    #: VMM entries whose cause is a page-table write (`PAGE_TABLE_CAUSES`), or None when the
    #: strategy's cause names do not tell (a hardware exit for a page fault).
    page_table_entries: int | None
    by_cause: dict[str, int]
    cycles: int
    guest_instructions: int
    equivalent: bool
    divergence: str | None


@attrs.frozen
class PtbenchTable:
    ns: tuple[int, ...]
    batch: int
    calls: int
    touch: bool
    cost_model: str
    placement: str
    strategies: tuple[str, ...]
    cells: tuple[Cell, ...]

    def cell(self, n: int, strategy: str) -> Cell:
        for cell in self.cells:
            if cell.n == n and cell.strategy == strategy:
                return cell
        raise KeyError((n, strategy))

    def entries(self, n: int, strategy: str) -> int:
        return self.cell(n, strategy).vmm_entries


def _vmm_causes(by_cause) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(dict(by_cause).items()) if ":" in k and v}


def _page_table_entries(strategy: str, causes: dict[str, int]) -> int | None:
    name = strategy.partition(":")[0]
    if name == "native":
        return 0
    if name == "hardware-assisted" and causes.get("exit:exception"):
        return None  # shadow paging: a page-table write is a #PF exit, like a hidden fill
    return sum(causes.get(c, 0) for c in PAGE_TABLE_CAUSES)


def _cell(n: int, result, expected: str) -> Cell:
    strategy = str(result.strategy)
    if result.stop_reason != "halted" or result.console != expected:
        said = (result.console or "").strip().splitlines()
        why = said[0] if said else f"no output, stopped: {result.stop_reason}"
        if result.fault_report:
            why += f" ({result.fault_report.splitlines()[0]})"
        raise PtbenchError(f"ptbench N = {n} under {strategy}: expected {expected.strip()!r}, "
                           f"got {why!r}")
    causes = _vmm_causes(result.by_cause)
    return Cell(n=n, strategy=strategy, vmm_entries=int(result.vmm_entries),
                page_table_entries=_page_table_entries(strategy, causes), by_cause=causes,
                cycles=int(result.cycles), guest_instructions=int(result.guest_instructions),
                equivalent=bool(result.equivalent), divergence=result.divergence)


def _run_paravirtual(guest, spec: str, model, placement: str, results):
    """The paravirtual kernel under `spec`, priced by `model`. Equivalence with the bare
    machine is a memory comparison of the *same* kernel, which a port is not: what must agree
    is the summary line, which `_cell` checks. The guest is passed with its image replaced by
    the port (what the strategy boots)."""
    from . import run_guest

    ported = attrs.evolve(guest, image=guest.pv_image)
    result = run_guest(ported, spec, placement=placement, max_steps=guest.max_steps,
                       check_equivalence=False)
    native = next((r.cycles for r in results if str(r.strategy) == "native"), 0)
    cycles = model.cycles(result.events)
    return attrs.evolve(result, cycles=cycles, slowdown=cycles / native if native else 0.0)


def measure(ns: Iterable[int] = DEFAULT_NS, specs: Sequence[str] | None = None, batch: int =
            DEFAULT_BATCH, cost_model: str | Path | costs.CostModel | None = None, *,
            calls: int = DEFAULT_CALLS, touch: bool = False, placement: str = "system",
            guest=None) -> PtbenchTable:
    """Run ptbench for each N under each strategy (default: `default_strategies()`; native is
    always included) and return the table. `batch` is B (mmu_update requests per call) and
    `calls` M (calls per multicall) of the paravirtual kernel; `touch` also writes and reads
    every mapped page after the switch."""
    from toyvisor.tools.guest import load_guest

    ns = tuple(dict.fromkeys(int(n) for n in ns))
    if not ns:
        raise PtbenchError("no N to measure")
    for n in ns:
        command_line(n, batch, calls)  # check every parameter before running anything
    model = cost_model if isinstance(cost_model, costs.CostModel) else costs.resolve(cost_model)
    specs = list(specs) if specs else list(default_strategies())
    if guest is None:
        guest = load_guest(GUEST)
    wants_pv = any(s.partition(":")[0] == PARAVIRTUAL for s in specs)
    if wants_pv and getattr(guest, "pv_image", None) is None:
        raise PtbenchError(f"{guest.name} has no paravirtual kernel (pv_source)")
    cells = []
    strategies: list[str] = []
    for n in ns:
        text = command_line(n, batch, calls, touch=touch)
        changes: dict[str, Any] = {"console_input": (text + "\n").encode("ascii")}
        if getattr(guest, "pv_image", None) is not None:
            changes["pv_image"] = with_command_line(guest.pv_image, text)
        loaded = attrs.evolve(guest, **changes)
        others = [s for s in specs if s.partition(":")[0] != PARAVIRTUAL]
        results = compare(loaded, others, cost_model=model, placement=placement,
                          max_steps=guest.max_steps)
        for spec in specs:
            if spec.partition(":")[0] == PARAVIRTUAL:
                results.append(_run_paravirtual(loaded, spec, model, placement, results))
        expected = expected_line(n, touch)
        for result in results:
            cells.append(_cell(n, result, expected))
            if str(result.strategy) not in strategies:
                strategies.append(str(result.strategy))
    return PtbenchTable(ns=ns, batch=batch, calls=calls, touch=touch, cost_model=model.name,
                        placement=placement, strategies=tuple(strategies), cells=tuple(cells))


# -- rendering ---------------------------------------------------------------------------------


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(values):
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _mark(cell: Cell) -> str:
    return "" if cell.equivalent else "*"


def _settings(table: PtbenchTable) -> str:
    return (f"B = {table.batch} requests per mmu_update, M = {table.calls} per multicall"
            f"{', touch' if table.touch else ''}; cost profile '{table.cost_model}', "
            f"{table.placement} VMM")


def _ratios(table: PtbenchTable) -> list[tuple[str, list[str]]]:
    """Rows "x / paravirtual" of VMM entries, when paravirtual was measured."""
    pv = next((s for s in table.strategies if s.partition(":")[0] == PARAVIRTUAL), None)
    if pv is None:
        return []
    rows = []
    for strategy in table.strategies:
        if strategy.partition(":")[0] in ("native", PARAVIRTUAL):
            continue
        values = []
        for n in table.ns:
            mine, theirs = table.entries(n, strategy), table.entries(n, pv)
            values.append(f"{mine / theirs:.1f}x" if theirs else "-")
        rows.append((strategy, values))
    return rows


def _placement_note(table: PtbenchTable) -> str | None:
    pv = [s for s in table.strategies if s.partition(":")[0] == PARAVIRTUAL]
    if not pv or table.placement == "system":
        return None
    return (f"{pv[0]} ran as a system VMM: {table.placement} placement does not apply "
            f"({TYPE_ONE_ONLY}).")


def render_text(table: PtbenchTable) -> str:
    """Blocks with one row per strategy and one column per N: VMM entries, page-table-write
    entries, estimated cycles, and (with paravirtual) entries relative to paravirtual."""
    header = ["strategy", *(f"N={n}" for n in table.ns)]

    def rows(value):
        return [[s, *(value(table.cell(n, s)) for n in table.ns)] for s in table.strategies]

    lines = [f"ptbench: VMM entries ({_settings(table)})", ""]
    lines += _grid(header, rows(lambda c: _int(c.vmm_entries) + _mark(c)))
    lines += ["", "of which page-table writes (vmm:ptemod, callout:st, mmu hypercalls; "
                  "- : not told apart from other page faults)", ""]
    lines += _grid(header, rows(lambda c: _int(c.page_table_entries)))
    lines += ["", "estimated cycles", ""]
    lines += _grid(header, rows(lambda c: _int(c.cycles) + _mark(c)))
    ratios = _ratios(table)
    if ratios:
        lines += ["", "VMM entries / paravirtual's", ""]
        lines += _grid(header, [[s, *v] for s, v in ratios])
    lines += ["", "paravirtual's batches, ceil(N / (B*M)): "
              + ", ".join(f"N={n}: {pv_batches(n, table.batch, table.calls)}" for n in table.ns)]
    placement = _placement_note(table)
    if placement:
        lines += textwrap.wrap("note: " + placement, 100, subsequent_indent="    ")
    notes = [c for c in table.cells if not c.equivalent]
    if notes:
        lines += ["", "* not equivalent to the bare machine:"]
        lines += [f"  N={c.n} under {c.strategy}: {(c.divergence or '').splitlines()[0]}"
                  for c in notes]
    return "\n".join(lines) + "\n"


def render_markdown(table: PtbenchTable) -> str:
    """One Markdown table per quantity: rows = strategies, columns = N."""
    head = "| strategy | " + " | ".join(f"N = {n}" for n in table.ns) + " |"
    rule = "| --- |" + " ---: |" * len(table.ns)

    def block(value):
        return [head, rule, *(f"| `{s}` | " + " | ".join(value(table.cell(n, s))
                                                         for n in table.ns) + " |"
                              for s in table.strategies)]

    lines = [f"VMM entries ({_settings(table)}):", ""]
    lines += block(lambda c: _int(c.vmm_entries) + _mark(c))
    lines += ["", "Of which page-table writes (`vmm:ptemod`, `callout:st`, the mmu hypercalls; "
                  "- : hardware-assisted reports them as page-fault exits with the hidden "
                  "fills):", ""]
    lines += block(lambda c: _int(c.page_table_entries))
    lines += ["", "Estimated cycles:", ""]
    lines += block(lambda c: _int(c.cycles) + _mark(c))
    ratios = _ratios(table)
    if ratios:
        lines += ["", "VMM entries relative to `paravirtual`:", "", head, rule]
        lines += [f"| `{s}` | " + " | ".join(v) + " |" for s, v in ratios]
    lines += ["", "`paravirtual`'s batches, ⌈N / (B·M)⌉: "
              + ", ".join(f"{pv_batches(n, table.batch, table.calls)} (N = {n})"
                          for n in table.ns) + "."]
    placement = _placement_note(table)
    if placement:
        lines += ["", "Note: " + placement]
    notes = [c for c in table.cells if not c.equivalent]
    for c in notes:
        lines += ["", f"\\* N = {c.n} under `{c.strategy}` is not equivalent to the bare "
                      f"machine: {' '.join((c.divergence or '').split())}"]
    return "\n".join(lines) + "\n"


def to_json(table: PtbenchTable) -> dict[str, Any]:
    return {
        "ns": list(table.ns),
        "batch": table.batch,
        "calls_per_multicall": table.calls,
        "touch": table.touch,
        "cost_model": table.cost_model,
        "placement": table.placement,
        "strategies": list(table.strategies),
        "paravirtual_batches": {str(n): pv_batches(n, table.batch, table.calls)
                                for n in table.ns},
        "results": [attrs.asdict(c) for c in table.cells],
    }


def dumps(table: PtbenchTable) -> str:
    return json.dumps(to_json(table), indent=2) + "\n"


__all__ = ["Cell", "DEFAULT_BATCH", "DEFAULT_CALLS", "DEFAULT_NS", "PAGE_TABLE_CAUSES",
           "PtbenchError", "PtbenchTable", "command_line", "default_strategies", "dumps",
           "expected_line", "measure", "paravirtual_registered", "pv_batches",
           "render_markdown", "render_text", "to_json", "with_command_line"]
