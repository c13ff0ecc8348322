"""Tables of migration results, as text or Markdown (what `toyvisor migrate` prints)."""

from __future__ import annotations

from .result import MigrationResult


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                     for i, (h, w) in enumerate(zip(header, widths)))]
    for row in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(out) + "\n"


def rounds_table(result: MigrationResult, markdown: bool = False) -> str:
    """One row per round: pages sent, pages dirtied meanwhile, bytes on the wire, duration."""
    rows = []
    for r in result.rounds:
        name = str(r.number) if r.live else f"{r.number} (suspended)"
        if result.method.startswith("post-copy"):
            name = "push" if r.number == 1 else "network faults"
        rows.append([name, f"{r.pages_sent:,}", f"{r.pages_dirtied:,}", f"{r.wire_bytes:,}",
                     f"{r.ticks:,}", f"{r.throttle:.0%}"])
    return _table(["round", "pages sent", "dirtied meanwhile", "bytes", "ticks", "throttle"],
                  rows, markdown)


def comparison_table(results: list[MigrationResult], markdown: bool = False) -> str:
    """One row per migration: the totals."""
    rows = []
    for r in results:
        rows.append([
            r.method if len({x.strategy for x in results}) == 1 else f"{r.strategy} {r.method}",
            str(sum(1 for x in r.rounds if x.live)) if r.method.startswith("pre-copy") else "-",
            r.stop_reason, f"{r.total_ticks:,}", f"{r.downtime_ticks:,}", f"{r.pages_sent:,}",
            f"{r.wire_bytes:,}", f"{r.bytes_saved:,}", f"{r.network_faults:,}",
            f"{r.dirty_log_faults:,}", "yes" if r.equivalent else "NO"])
    return _table(["method", "rounds", "stopped by", "total ticks", "downtime", "pages sent",
                   "bytes sent", "bytes saved", "network faults", "dirty-log faults",
                   "equivalent"], rows, markdown)


def summary_text(result: MigrationResult) -> str:
    """The lines after a migration's rounds table."""
    r = result
    lines = [f"outcome: {r.outcome}; stopped by: {r.stop_reason}",
             f"total migration time {r.total_ticks:,} ticks, downtime {r.downtime_ticks:,} ticks",
             f"sent {r.pages_sent:,} pages ({r.memory_pages:,} in memory, each at most "
             f"{r.max_sends_per_page}x), {r.wire_bytes:,} bytes on the wire"
             + (f", {r.bytes_saved:,} saved by {'+'.join(r.compression)} "
                f"({', '.join(f'{k} {v}' for k, v in r.pages_by_encoding)})"
                if r.compression else "")]
    if r.method.startswith("post-copy"):
        lines.append(f"network page faults {r.network_faults:,}, stalling the VM "
                     f"{r.fault_stall_ticks:,} ticks")
    if r.dirty_log:
        lines.append(f"dirty log: {r.dirty_log}, {r.dirty_log_faults:,} VMM entries; "
                     f"{r.cycles:,} cycles vs {r.unmigrated_cycles:,} unmigrated")
    if r.resume_value is not None:
        told = {0: "resumed in a new domain", 1: "suspend cancelled"}.get(r.resume_value, "?")
        lines.append(f"p2m: {r.remapped_frames:,} of {r.memory_pages:,} pfns on other machine "
                     f"frames; the domain's suspend hypercall returned {r.resume_value} ({told})")
    for violation in r.resource_violations:
        lines.append(f"resource control: {violation}")
    lines.append("equivalent to the unmigrated run: " + (
        "yes" if r.equivalent else f"NO ({r.divergence})"))
    return "\n".join(lines) + "\n"


def phases_text(result: MigrationResult) -> str:
    return "".join(f"  {p.name:<15} {p.start:>9,} .. {p.end:>9,}  {p.detail}\n"
                   for p in result.phases)


__all__ = ["comparison_table", "phases_text", "rounds_table", "summary_text"]
