"""``toyvisor sched``: run a workload of SMP VMs under scheduling policies and compare them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from toyvisor.cpu.cache import parse_geometry
from toyvisor.cpu.machine import ENGINES
from toyvisor.vmm.sched import (SchedError, Unschedulable, load_workload, policy_names,
                                 simulate)
from toyvisor.vmm.sched.report import comparison_table, matrix_table

from . import plot
from .clikit import OptionConflict, user_errors


def _gantt_path(path: Path, policy: str, several: bool) -> Path:
    if not several:
        return path
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(policy).stem)
    return path.with_name(f"{path.stem}-{safe}{path.suffix}")


def gantt_chart(run, workload_name: str):
    """The schedule of one run as a Gantt chart: a lane per physical CPU, a span per stretch of
    one vCPU."""
    lanes = [f"CPU {i}" for i in range(run.pcpus)]
    return plot.gantt(f"{workload_name}: {run.policy} on {run.pcpus} CPUs", lanes, run.spans)


@click.command("sched")
@click.argument("workload", type=click.Path(path_type=Path))
@click.option("--policy", "policies", multiple=True, metavar="NAME",
              help="A policy (or a path to a policy file); repeat to compare. Default: every "
                   "bundled policy.")
@click.option("--pcpus", type=int, metavar="P", help="Physical CPUs (default: the workload's).")
@click.option("--quantum", type=int, metavar="TICKS", help="Quantum (default: the workload's).")
@click.option("--slot", type=int, metavar="TICKS",
              help="Gang slot and matrix row length (default: the workload's).")
@click.option("--cache", "cache_text", metavar="on|off|SIZE,WAYS,LINE",
              help="The physical CPUs' cache model (default: the workload's).")
@click.option("--lock-cost", type=click.IntRange(min=0), default=40, show_default=True,
              metavar="CYCLES", help="Cycles one run-queue operation holds its lock.")
@click.option("--ple-gap", type=click.IntRange(min=0), default=128, show_default=True,
              metavar="CYCLES", help="Pause-loop exiting: most cycles between two pauses of a loop.")
@click.option("--ple-window", type=click.IntRange(min=0), default=4096, show_default=True,
              metavar="CYCLES", help="Pause-loop exiting: cycles of pause loop before an exit.")
@click.option("--miss-cycles", type=click.IntRange(min=0), default=20, show_default=True,
              metavar="CYCLES", help="Price of a cache miss in the estimated cycles (the "
                                     "Pentium 4 672's second-level cache latency).")
@click.option("--rows", type=click.IntRange(min=0), metavar="N",
              help="Print at most N rows of each matrix (default: all; 0: no matrix).")
@click.option("--engine", type=click.Choice(ENGINES), default="interpreter", show_default=True,
              help="The engine running guest code (both give the same numbers).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--markdown", is_flag=True, help="Print the tables as Markdown.")
@click.option("--gantt", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Draw the schedule (SVG, or PNG with the 'plot' extra); with several policies "
                   "one file each, FILE's name + '-POLICY'.")
@user_errors
def sched_command(workload, policies, pcpus, quantum, slot, cache_text, lock_cost, ple_gap,
                  ple_window, miss_cycles, rows, engine, as_json, markdown, gantt) -> None:
    """Run WORKLOAD (a guests/sched TOML file: VMs of several vCPUs running real guest code) on
    P physical CPUs under each policy: the slot x CPU matrix of what ran, then one row per policy
    (utilization, idle time, makespan, switches, spinning, lock-holder preemptions, run-queue
    lock contention, cache misses, migrations)."""
    if as_json and markdown:
        raise OptionConflict("--json and --markdown exclude each other")
    loaded = load_workload(workload)
    options = {}
    if cache_text is not None:
        options["cache"] = None if cache_text.strip() == "off" else parse_geometry(cache_text)
    if pcpus is not None and pcpus < 1:
        raise SchedError(f"--pcpus must be at least 1, not {pcpus}")
    names = list(policies) or policy_names()
    runs, refused = [], {}
    for name in names:
        try:
            runs.extend(simulate(loaded, [name], pcpus=pcpus, quantum=quantum, slot=slot,
                                 lock_cost=lock_cost, ple_gap=ple_gap, ple_window=ple_window,
                                 miss_cycles=miss_cycles,
                                 engine=engine, **options))
        except Unschedulable as exc:
            if policies:  # asked for by name: bad input
                raise
            refused[name] = str(exc)
    if gantt is not None:
        for run in runs:
            plot.write(gantt_chart(run, loaded.name), _gantt_path(gantt, run.policy,
                                                                  len(runs) > 1))
    if as_json:
        click.echo(json.dumps({"workload": str(workload), "pcpus": runs[0].pcpus if runs else
                               pcpus, "runs": [r.to_dict() for r in runs],
                               "refused": refused}, indent=2))
        return
    for run in runs if rows != 0 else ():
        title = f"{run.policy}: {loaded.name} on {run.pcpus} CPUs, slots of {run.slot} ticks"
        click.echo(f"## {title}\n" if markdown else title)
        click.echo(matrix_table(run, markdown, rows))
    if runs:
        click.echo(comparison_table(runs, markdown), nl=False)
    if refused and markdown and runs:
        click.echo("")  # end the table
    for name, reason in refused.items():
        click.echo(f"{name}: cannot run this workload: {reason}")
    outputs = {run.consoles for run in runs}
    lines = [f"console of {vm} ({'every policy' if len(outputs) == 1 else run.policy}): {line}"
             for run in (runs if len(outputs) > 1 else runs[:1])
             for vm, text in run.consoles for line in text.splitlines()]
    if lines:
        text = "\n".join(lines)
        click.echo(f"\n```\n{text}\n```" if markdown else text)
