"""The comparison table: one row per run of the same guest (native and under VMM strategies).

This module only builds and renders the table; running the guests is the caller's job. A result
is duck-typed: any object with the attributes of the contract's `VMRunResult`
(docs/vmm-design.md) — `strategy`, `equivalent`, `divergence`, `guest_instructions`,
`vmm_entries`, `by_cause`, `events`, `emulated_instructions`, `callouts`, `blocks_translated`,
`cache_hits`, `cycles`, `slowdown`, `efficiency` — will do.

`render_text` prints two blocks that each fit a 100-column terminal: the costs (guest
instructions, VMM entries, estimated cycles, slowdown vs native, efficiency, equivalence) and the
mechanisms (emulated instructions, callouts, translated blocks / cache hits, the top causes of VMM
entries), then one footnote per non-equivalent run with its divergence.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence

import attrs

#: `by_cause` keys with these prefixes count guest→VMM transfers; the others are guest-visible
#: causes (what the guest would see on bare metal), which the table does not list as VMM entries.
VMM_CAUSE_PREFIXES = ("vmm:", "exit:", "callout:", "hypercall:")
TOP_CAUSES = 3
WIDTH = 100

#: The fields `to_json` emits, in order.
JSON_FIELDS = (
    "strategy", "placement", "stop_reason", "equivalent", "equivalence_basis", "divergence",
    "guest_instructions",
    "vmm_entries",
    "by_cause", "events", "emulated_instructions", "callouts", "blocks_translated", "cache_hits",
    "cache_misses", "cycles", "slowdown", "efficiency",
)


@attrs.frozen
class Row:
    """One run, reduced to what the table shows."""

    strategy: str
    guest_instructions: int
    vmm_entries: int
    top_causes: tuple[tuple[str, int], ...]
    other_causes: int
    emulated_instructions: int
    callouts: int
    blocks_translated: int
    cache_hits: int
    cycles: int | None
    slowdown: float | None
    efficiency: float | None
    equivalent: bool
    divergence: str | None
    #: how the run ended (``halted``, ``budget``, ``triple-fault`` ...)
    stop_reason: str = "halted"
    events: Mapping[str, int] = attrs.field(factory=dict)
    placement: str | None = None


def vmm_causes(by_cause: Mapping[str, int] | None) -> list[tuple[str, int]]:
    """The VMM-entry causes of `by_cause`, most frequent first (ties by name)."""
    items = [(cause, count) for cause, count in (by_cause or {}).items()
             if cause.startswith(VMM_CAUSE_PREFIXES) and count]
    return sorted(items, key=lambda item: (-item[1], item[0]))


def _int(value) -> int:
    return int(value or 0)


def build_rows(results: Iterable[object], top: int = TOP_CAUSES) -> list[Row]:
    """One `Row` per result, in the given order."""
    rows = []
    for result in results:
        causes = vmm_causes(getattr(result, "by_cause", None))
        rows.append(Row(
            strategy=str(result.strategy),
            guest_instructions=_int(getattr(result, "guest_instructions", 0)),
            vmm_entries=_int(getattr(result, "vmm_entries", 0)),
            top_causes=tuple(causes[:top]),
            other_causes=len(causes[top:]),
            emulated_instructions=_int(getattr(result, "emulated_instructions", 0)),
            callouts=_int(getattr(result, "callouts", 0)),
            blocks_translated=_int(getattr(result, "blocks_translated", 0)),
            cache_hits=_int(getattr(result, "cache_hits", 0)),
            cycles=getattr(result, "cycles", None),
            slowdown=getattr(result, "slowdown", None),
            efficiency=getattr(result, "efficiency", None),
            equivalent=bool(getattr(result, "equivalent", True)),
            divergence=getattr(result, "divergence", None),
            stop_reason=str(getattr(result, "stop_reason", None) or "halted"),
            events=dict(getattr(result, "events", None) or {}),
            placement=getattr(result, "placement", None),
        ))
    return rows


def _verdict(row: Row, note: int | None) -> str:
    verdict = "yes" if note is None else f"NO [{note}]"
    return verdict if row.stop_reason == "halted" else f"{verdict}, {row.stop_reason}"


#: What an event a VMM saves stands for, for the note under the table.
_SAVED = {
    "port_io": "natively {count:,} port accesses wait on the real device ({price:,} cycles "
               "each), under a VMM on an emulated one ({other:,})",
}


#: Why a placement other than system does not apply to paravirtual (its `placements`).
TYPE_ONE_ONLY = ("a Xen-style hypervisor is type 1: dom0 drives the real devices, there is no "
                 "host OS under it to call")


def placement_note(rows: Sequence[Row]) -> str | None:
    """One line naming the strategies that ran with another placement than native (asked for
    ``hosted``, a type-1-only strategy runs as a system VMM), or None."""
    native = next((r for r in rows if r.strategy == "native"), None)
    if native is None or native.placement is None:
        return None
    other = [r for r in rows if r.placement is not None and r.placement != native.placement]
    if not other:
        return None
    names = ", ".join(r.strategy for r in other)
    return (f"note: {names} ran as a {other[0].placement} VMM: {native.placement} placement "
            f"does not apply ({TYPE_ONE_ONLY}).")


def cheaper_note(rows: Sequence[Row], cost_profile: str | None) -> str | None:
    """One line saying why some strategy is estimated cheaper than native, or None."""
    from . import costs

    native = next((r for r in rows if r.strategy == "native"), None)
    cheaper = [r for r in rows if r is not native and r.slowdown is not None and r.slowdown < 1]
    if native is None or not cheaper or not native.events:
        return None
    try:
        model = costs.resolve(cost_profile)
        base = model.breakdown(native.events)
        saved: dict[str, int] = {}
        for row in cheaper:
            theirs = model.breakdown(row.events)
            for key, cycles in base.items():
                saved[key] = saved.get(key, 0) + cycles - theirs.get(key, 0)
    except costs.CostModelError:
        return None
    key = max(saved, key=saved.__getitem__)
    names = ", ".join(f"{r.strategy} ({_slowdown(r.slowdown)})" for r in cheaper)
    verb = "costs" if len(cheaper) == 1 else "cost"
    if key in _SAVED:
        why = _SAVED[key].format(count=native.events.get(key, 0), price=model.cost(key),
                                 other=model.cost("device_access"))
    else:
        why = f"they spend fewer cycles on {key} than the native run ({base[key]:,})"
    return f"note: {names} {verb} less than native: {why}."


# -- text --------------------------------------------------------------------------------------


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _slowdown(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}x"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _table(header: Sequence[str], cells: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first `left` columns left-aligned, the rest right-aligned."""
    widths = [max(len(header[i]), *(len(row[i]) for row in cells)) for i in range(len(header))]

    def line(values: Sequence[str]) -> str:
        parts = [value.ljust(width) if i < left else value.rjust(width)
                 for i, (value, width) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [line(header), rule, *(line(row) for row in cells)]


def _causes_text(row: Row, room: int) -> str:
    """The top causes, dropping whole causes (counted in "+N more") until the text fits."""
    if not row.top_causes:
        return "-"
    shown = [f"{cause} {count:,}" for cause, count in row.top_causes]
    hidden = row.other_causes

    def text() -> str:
        return ", ".join(shown) + (f", +{hidden} more" if hidden else "")

    while len(text()) > room and len(shown) > 1:
        shown.pop()
        hidden += 1
    result = text()
    return result if len(result) <= room else result[: max(room - 3, 1)] + "..."


def render_text(rows: Sequence[Row], *, cost_profile: str | None = None,
                notes_below: Sequence[str] = ()) -> str:
    """The comparison as aligned text (two blocks and the footnotes)."""
    if not rows:
        return "no runs to compare\n"
    notes: list[tuple[int, Row]] = []
    cost_cells = []
    for row in rows:
        note = None
        if not row.equivalent:
            notes.append((len(notes) + 1, row))
            note = len(notes)
        cost_cells.append([
            row.strategy, _number(row.guest_instructions), _number(row.vmm_entries),
            _number(row.cycles), _slowdown(row.slowdown), _share(row.efficiency),
            _verdict(row, note),
        ])
    lines = _table(
        ["strategy", "guest instr", "VMM entries", "est. cycles", "slowdown", "efficiency",
         "equivalent"],
        cost_cells,
    )
    lines.append("")

    mech_cells = []
    for row in rows:
        translated = ("-" if not (row.blocks_translated or row.cache_hits)
                      else f"{row.blocks_translated:,} / {row.cache_hits:,}")
        mech_cells.append([row.strategy, _number(row.emulated_instructions),
                           _number(row.callouts), translated, ""])
    header = ["strategy", "emulated", "callouts", "blocks / hits", "top VMM entry causes"]
    widths = [max(len(header[i]), *(len(cells[i]) for cells in mech_cells)) for i in range(4)]
    room = max(20, WIDTH - sum(widths) - 2 * 4)
    for cells, row in zip(mech_cells, rows):
        cells[4] = _causes_text(row, room)
    mech = _table(header, mech_cells, left=1)
    # The causes column reads better left-aligned: re-pad it.
    lines += [_left_last(line, sum(widths) + 2 * 4) for line in mech]

    if cost_profile:
        lines += ["", f"est. cycles: cost profile '{cost_profile}' (docs/cost-model.md); "
                      "slowdown = cycles / native cycles"]
    for note in (cheaper_note(rows, cost_profile), placement_note(rows), *notes_below):
        if note:
            lines += textwrap.wrap(note, WIDTH, subsequent_indent="    ")
    if notes:
        lines.append("")
        for number, row in notes:
            text = (row.divergence or "no divergence reported").strip().splitlines() or [""]
            first = f"[{number}] {row.strategy}: {text[0]}"
            lines += textwrap.wrap(first, WIDTH, subsequent_indent="    ") or [first]
            for more in text[1:]:
                lines += textwrap.wrap(more.strip(), WIDTH, initial_indent="    ",
                                       subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def _left_last(line: str, start: int) -> str:
    head, tail = line[:start], line[start:]
    return (head + tail.strip()).rstrip()


def table(results: Iterable[object], *, cost_profile: str | None = None,
          notes_below: Sequence[str] = ()) -> str:
    """`render_text(build_rows(results))`; `notes_below`: more lines under the table."""
    return render_text(build_rows(results), cost_profile=cost_profile, notes_below=notes_below)


def render_markdown(rows: Sequence[Row], *, cost_profile: str | None = None,
                    notes_below: Sequence[str] = ()) -> str:
    """The comparison as one Markdown table (for docs and notebooks), footnotes below it."""
    if not rows:
        return "no runs to compare\n"
    lines = [
        "| strategy | guest instr | VMM entries | top VMM entry causes | emulated | callouts "
        "| blocks / hits | est. cycles | slowdown | efficiency | equivalent |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    notes = []
    for row in rows:
        causes = ", ".join(f"{cause} {count:,}" for cause, count in row.top_causes) or "-"
        if row.other_causes:
            causes += f", +{row.other_causes} more"
        translated = ("-" if not (row.blocks_translated or row.cache_hits)
                      else f"{row.blocks_translated:,} / {row.cache_hits:,}")
        note = None
        if not row.equivalent:
            notes.append(row)
            note = len(notes)
        verdict = _verdict(row, note)
        lines.append(
            f"| `{row.strategy}` | {_number(row.guest_instructions)} | {_number(row.vmm_entries)} "
            f"| {causes} | {_number(row.emulated_instructions)} | {_number(row.callouts)} "
            f"| {translated} | {_number(row.cycles)} | {_slowdown(row.slowdown)} "
            f"| {_share(row.efficiency)} | {verdict} |")
    if cost_profile:
        lines += ["", f"Estimated cycles with the cost profile `{cost_profile}`; slowdown = cycles / "
                      "native cycles."]
    for note in (cheaper_note(rows, cost_profile), placement_note(rows), *notes_below):
        if note:
            lines += ["", note[0].upper() + note[1:]]
    for number, row in enumerate(notes, 1):
        text = " ".join((row.divergence or "no divergence reported").split())
        lines += ["", f"[{number}] `{row.strategy}`: {text}"]
    return "\n".join(lines) + "\n"


# -- JSON --------------------------------------------------------------------------------------


def _plain(value):
    if isinstance(value, Mapping):
        return {str(key): _plain(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def to_json(results: Iterable[object]) -> list[dict]:
    """One JSON-ready object per run (fields `JSON_FIELDS`; an absent attribute is null, an
    absent `by_cause` / `events` is {}; an SMP run adds ``vcpus`` and ``pcpus``)."""
    out = []
    for result in results:
        record = {}
        for field in JSON_FIELDS:
            value = getattr(result, field, None)
            if field in ("by_cause", "events") and value is None:
                value = {}
            record[field] = _plain(value)
        record["strategy"] = str(result.strategy)
        record["equivalent"] = bool(record["equivalent"]) if record["equivalent"] is not None else None
        vcpus, pcpus = getattr(result, "vcpus", 1), getattr(result, "pcpus", 1)
        if vcpus > 1 or pcpus > 1:  # an SMP run: its configuration
            record["vcpus"], record["pcpus"] = vcpus, pcpus
        out.append(record)
    return out
