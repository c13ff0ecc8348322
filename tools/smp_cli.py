"""``toyvisor smp``: one guest on several CPU counts, side by side (`toyvisor.tools.smp`)."""

from __future__ import annotations

from pathlib import Path

import click

from toyvisor.cpu import ENGINES, MachineError
from toyvisor.cpu.cache import parse_geometry

from . import runner, smp
from .clikit import include_option, user_errors
from .guest import load_guest


def _cpu_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise MachineError(f"--cpus takes a comma-separated list of CPU counts, not "
                           f"{text!r}") from None


@click.command("smp")
@click.argument("guest", default="smpkernel", type=click.Path(path_type=Path))
@click.option("--cpus", "cpu_list", default="1,2,4,8", show_default=True,
              help="The CPU counts to run, comma-separated (each 1..64).")
@click.option("--interleave", type=int, help="Steps per CPU turn (default: the guest's).")
@click.option("--engine", type=click.Choice(ENGINES), default="interpreter", show_default=True)
@click.option("--cache", "cache_geometry", metavar="on|SIZE,WAYS,LINE",
              help="Model per-CPU caches and add their counts.")
@click.option("--time", "timed", type=click.IntRange(0, 1000), default=0,
              help="Also time this many runs per CPU count in host CPU time (the best counts).")
@click.option("--input", "console_input", help="Text the console offers for reading.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table.")
@include_option
@user_errors
def smp_command(guest: Path, cpu_list: str, interleave, engine, cache_geometry, timed,
                console_input, markdown, includes) -> None:
    """Run GUEST (default smpkernel) on each CPU count and tabulate instructions, ticks, idle
    time, IPIs (and cache counts), with smpkernel's answers; --time adds guest instructions
    per host CPU second."""
    loaded = runner.with_overrides(load_guest(guest, include_paths=tuple(includes)),
                                   console_input=console_input)
    cache = None if cache_geometry is None else parse_geometry(cache_geometry)
    table = smp.scaling_table(loaded, _cpu_list(cpu_list), engine=engine,
                              interleave=interleave, cache=cache, timed=timed)
    click.echo(smp.render(table, markdown=markdown), nl=False)


__all__ = ["smp_command"]
