"""Regenerate what docs/ shows that the code produces: the pictures and the debugger transcripts.

    python -m toyvisor.tools.docgen [DOCS]           # rewrite them in place (default: ./docs)
    python -m toyvisor.tools.docgen [DOCS] --check   # exit 1 and name what is stale

`generate(docs)` returns the content every generated file must have; the docs test compares the
checked-in files with it, so no picture or transcript can drift from what the code does.

Transcripts: a block of docs/debugger.md between ``<!-- debug: ARGS -->`` and ``<!-- end -->``
holds a fenced transcript; its ``(toyvisor) COMMAND`` lines are the script, and the block is
rewritten with what ``toyvisor debug ARGS --commands`` prints for it.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from toyvisor.isa.files import write_atomic
from toyvisor.vmm import comparison
from toyvisor.vmm import nanobench as nanobench_table
from toyvisor.vmm import ptbench as ptbench_table

from . import pictures, plot
from .debug import Session
from .debug.monitor import PROMPT, Monitor, banner, run_script
from .guest import load_guest
from .runner import with_overrides

#: Small configurations, so that the docs test stays fast; each picture's doc says which.
NANOBENCH_STRATEGIES = ("native", "binary-translation", "hardware-assisted:1",
                        "hardware-assisted:2")
PTBENCH_NS = (16, 64, 256)


def _compare() -> plot.Chart:
    guest = load_guest("minikernel")
    return pictures.compare_chart(comparison.compare(guest), None, guest.name)


def _nanobench() -> plot.Chart:
    table = nanobench_table.measure(NANOBENCH_STRATEGIES,
                                    benchmarks=nanobench_table.PAPER_BENCHMARKS)
    return pictures.nanobench_chart(table)


def _ptbench() -> plot.Chart:
    table = ptbench_table.measure(PTBENCH_NS, None, ptbench_table.DEFAULT_BATCH, None)
    return pictures.ptbench_chart(table)


PICTURES: dict[str, Callable[[], plot.Chart]] = {
    "pictures/compare-minikernel.svg": _compare,
    "pictures/nanobench.svg": _nanobench,
    "pictures/ptbench.svg": _ptbench,
}
TRANSCRIPT_DOCS = ("debugger.md",)
_BLOCK = re.compile(r"(<!-- debug: (?P<args>[^\n]*?) -->\n```text\n)(?P<body>.*?)(```\n<!-- end -->)",
                    re.S)


def transcript(args: str, commands: list[str]) -> str:
    """What ``toyvisor debug ARGS --commands FILE`` prints for `commands`."""
    words = shlex.split(args)
    guest, options = words[0], words[1:]
    values = {"--vmm": None, "--input": None, "--max-steps": None}
    while options:
        name = options.pop(0)
        if name not in values or not options:
            raise ValueError(f"docgen: unsupported debug option {name!r} in '{args}'")
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
    return "\n".join(out) + "\n"


def _transcripts(text: str) -> str:
    def replace(match: re.Match) -> str:
        commands = [line[len(PROMPT):] for line in match.group("body").splitlines()
                    if line.startswith(PROMPT)]
        return match.group(1) + transcript(match.group("args"), commands) + match.group(4)

    return _BLOCK.sub(replace, text)


def generate(docs: Path) -> dict[Path, bytes]:
    """Every generated file under `docs` with the content it must have."""
    out = {docs / name: plot.svg(make()).encode() for name, make in PICTURES.items()}
    for name in TRANSCRIPT_DOCS:
        path = docs / name
        out[path] = _transcripts(path.read_text(encoding="utf-8")).encode()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in argv
    rest = [a for a in argv if a != "--check"]
    docs = Path(rest[0]) if rest else Path("docs")
    stale = []
    for path, data in generate(docs).items():
        current = path.read_bytes() if path.exists() else None
        if current == data:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
    for path in stale:
        print(f"{'stale' if check else 'wrote'}: {path}")
    return 1 if check and stale else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["PICTURES", "generate", "main", "transcript"]
