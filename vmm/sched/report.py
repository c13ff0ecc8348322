"""The tables `toyvisor sched` prints: the slot x CPU matrix (the seed's figure) and the
comparison of policies, as text or Markdown."""

from __future__ import annotations

from .result import PolicyRun

#: (column header, how to show it) of the comparison table, in order
COLUMNS = (
    ("utilization", lambda r: f"{r.utilization:.1%}"),
    ("idle CPU ticks", lambda r: f"{r.idle_ticks:,}"),
    ("makespan", lambda r: f"{r.makespan:,}"),
    ("context sw", lambda r: f"{r.context_switches:,}"),
    ("world sw", lambda r: f"{r.world_switches:,}"),
    ("spin instr", lambda r: f"{r.spin_instructions:,}"),
    ("LH preemptions", lambda r: f"{r.lock_holder_preemptions:,}"),
    ("queue contended", lambda r: f"{r.queue_lock_contended:,}"),
    ("queue wait cycles", lambda r: f"{r.queue_lock_wait_cycles:,}"),
    ("cache misses", lambda r: "-" if r.cache_misses is None else f"{r.cache_misses:,}"),
    ("migrations", lambda r: f"{r.migrations:,}"),
    ("est. cycles", lambda r: f"{r.estimated_cycles:,}"),
)


def grid(header: list[str], rows: list[list[str]], markdown: bool, numeric: bool = True) -> str:
    """A table: first column left-aligned, the others right-aligned when `numeric`."""
    if markdown:
        align = "---:" if numeric else "---"
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else align for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 or not numeric else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header)] + [line(row) for row in rows]) + "\n"


def matrix_table(run: PolicyRun, markdown: bool = False, rows: int | None = None) -> str:
    """One row per slot, one column per physical CPU, each cell the vCPU that ran longest in it
    (empty: the CPU idled the whole slot)."""
    shown = run.matrix if rows is None else run.matrix[:rows]
    header = ["slot"] + [f"CPU {i}" for i in range(run.pcpus)]
    body = [[str(n)] + [cell or ("" if markdown else ".") for cell in row]
            for n, row in enumerate(shown)]
    text = grid(header, body, markdown, numeric=False)
    if len(shown) < len(run.matrix):
        text += f"... {len(run.matrix) - len(shown)} more slots\n"
    return text


def comparison_table(runs: list[PolicyRun], markdown: bool = False) -> str:
    header = ["policy"] + [name for name, _ in COLUMNS]
    return grid(header, [[r.policy] + [show(r) for _, show in COLUMNS] for r in runs], markdown)


__all__ = ["COLUMNS", "comparison_table", "grid", "matrix_table"]
