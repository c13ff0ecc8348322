"""``toyvisor migrate``: move a running VM to another host and report how it went."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import click

from toyvisor.asm.assembler import guests_directory
from toyvisor.vmm.migration import Link, MigrationError, compare, parse_size
from toyvisor.vmm.migration.link import link_between
from toyvisor.vmm.migration.compress import parse_methods
from toyvisor.vmm.migration.report import (
    comparison_table,
    phases_text,
    rounds_table,
    summary_text,
)

from . import plot as charts
from . import runner
from toyvisor.vmm.strategies import make_strategy

from .clikit import OptionConflict, exit_unless, include_option, no_fail_option, user_errors
from .guest import load_guest

DEFAULT_AT = 20_000


def rounds_chart(results) -> charts.Chart:
    """Pages sent per round, one line per migration (log scale when every round sent pages:
    pre-copy's geometric shrink is then a straight line)."""
    series = {}
    for r in results:
        name = r.method if len({x.strategy for x in results}) == 1 else f"{r.strategy} {r.method}"
        if r.method.startswith("post-copy"):
            points = [(1, r.pages_sent)]
        else:
            points = [(round_.number, round_.pages_sent) for round_ in r.rounds]
        series[name] = points
    log = all(y > 0 for points in series.values() for _x, y in points)
    guest = results[0].guest
    return charts.lines(f"{guest}: pages sent per round ({results[0].bandwidth:g} bytes/tick)",
                        "round", "pages sent", series, log=log)


def paravirtual_options(vmm_name: str, domid: int | None, caller: int | None) -> dict:
    """The PV-only keywords of `compare`: the hosts' dom0 (guests/migration/dom0), the domain and
    the daemon's domain; --domid/--caller under another strategy are bad input."""
    if make_strategy(vmm_name).name != "paravirtual":
        if domid is not None or caller is not None:
            raise MigrationError("--domid and --caller name paravirtual domains: give them with "
                                 "--vmm paravirtual")
        return {}
    return {"dom0": load_guest(guests_directory() / "migration" / "dom0"),
            "domid": 1 if domid is None else domid, "caller": 0 if caller is None else caller}


@click.command("migrate")
@click.argument("guest", type=click.Path(path_type=Path))
@click.option("--vmm", "vmm_name", default="trap-emulate", show_default=True, metavar="NAME",
              help="The strategy both hosts run (one that virtualizes memory).")
@click.option("--method", "methods", multiple=True, metavar="METHOD",
              help="pre-copy (Xen's stop rules), pre-copy:qemu, pre-copy:auto-converge, "
                   "post-copy or stop-and-copy; repeat it to compare (default pre-copy).")
@click.option("--at", "at", type=int, default=DEFAULT_AT, show_default=True, metavar="TICK",
              help="Guest steps the VM runs at the source before the migration starts.")
@click.option("--bandwidth", help="Link bandwidth in bytes per tick (K and M suffixes allowed; "
                                   "default 64).")
@click.option("--latency", type=int, help="Link latency in ticks, one way (default 50).")
@click.option("--network", metavar="KIND:NODES:SRC:DST",
              help="Take bandwidth and latency from the multicomputer's interconnect: the "
                   "route from node SRC to node DST of that topology (e.g. torus:16:0:10).")
@click.option("--downtime-limit", type=int, default=1000, show_default=True, metavar="TICKS",
              help="QEMU's rule: switch over when the rest fits in this many ticks.")
@click.option("--compress", "compression", default="none", show_default=True,
              help="Page compression: zero, xbzrle, zlib (comma-separated), all or none.")
@click.option("--dest-memory", type=int, metavar="BYTES",
              help="RAM of the destination host (default: its VMM region plus the guest's).")
@click.option("--fail-at", type=int, metavar="TICK",
              help="Make the link fail at this tick of the migration (a fault to test).")
@click.option("--domid", type=int, metavar="ID",
              help="Paravirtual: the domain dom0's daemon migrates (default 1, the guest).")
@click.option("--caller", type=int, metavar="ID",
              help="Paravirtual: the domain the migration daemon runs in (default 0, dom0; any "
                   "other is refused by the hypervisor).")
@click.option("--input", "console_input", help="Text the guest's console offers for reading.")
@click.option("--max-steps", type=click.IntRange(min=1), help="The guest's budget.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--markdown", is_flag=True, help="Print the tables as Markdown.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Draw the rounds (SVG, or PNG with the 'plot' extra).")
@no_fail_option
@include_option
@user_errors
def migrate_command(guest, vmm_name, methods, at, bandwidth, latency, network, downtime_limit,
                    compression, dest_memory, fail_at, domid, caller, console_input, max_steps,
                    as_json,
                    markdown, plot, no_fail, includes) -> None:
    """Migrate GUEST, running under --vmm, from one host to another while it runs: one row per
    round, then the totals and whether the guest's outcome equals a run that never migrated.

    Exit status: 0 every migration was equivalent, 2 one was not (or had a resource violation),
    1 bad input."""
    if as_json and markdown:
        raise OptionConflict("--json and --markdown exclude each other")
    if network is not None:
        if bandwidth is not None or latency is not None:
            raise MigrationError("--network sets the link's bandwidth and latency: give it "
                                 "without --bandwidth and --latency")
        link = attrs.evolve(link_between(network), fails_at=fail_at)
    else:
        link = Link(parse_size(bandwidth or "64", "the bandwidth"),
                    50 if latency is None else latency, fail_at)
    loaded = runner.with_overrides(load_guest(guest, include_paths=tuple(includes)),
                                   console_input=console_input, max_steps=max_steps)
    if at < 0:
        raise MigrationError(f"--at must not be negative (got {at})")
    results = compare(loaded, vmm_name, list(methods) or ["pre-copy"], link=link, at=at,
                      compression=parse_methods(compression), downtime_limit=downtime_limit,
                      dest_memory=dest_memory, **paravirtual_options(vmm_name, domid, caller))
    if plot is not None:
        charts.write(rounds_chart(results), plot)
    if as_json:
        click.echo(json.dumps({"migrations": [r.to_dict() for r in results]}, indent=2))
    else:
        for r in results:
            title = f"{r.guest} under {r.strategy}, {r.method}"
            if markdown:
                lines = summary_text(r).rstrip("\n").split("\n")
                click.echo(f"**{title}**\n\n{rounds_table(r, True)}\n" + "  \n".join(lines)
                           + "\n")
            else:
                click.echo(f"--- {title}\n{phases_text(r)}{rounds_table(r)}{summary_text(r)}")
        if len(results) > 1:
            click.echo(comparison_table(results, markdown), nl=False)
    exit_unless(all(r.equivalent and not r.resource_violations for r in results), no_fail)
