"""`toyvisor cluster`: run a multicomputer, show a topology's figures, measure latency vs load."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from toyvisor.cpu.net.errors import NetworkError
from toyvisor.cpu.net.network import DEADLOCK_AVOIDANCE, SWITCHING, LinkParams
from toyvisor.cpu.net.topology import TOPOLOGIES, build

from .clikit import EXIT_PROPERTY_FAILED, user_errors
from .cluster import load_cluster, result_text, run_cluster
from .netreport import load_markdown, load_table, topology_report, topology_text


@click.group("cluster")
def cluster_group() -> None:
    """Multicomputers: nodes with their own memory joined by an interconnect."""


@cluster_group.command("run")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the results.")
@click.option("--trace-net", is_flag=True, help="Print the network's packet events to stderr.")
@click.option("--topology", type=click.Choice(list(TOPOLOGIES)), help="Override the file's.")
@click.option("--nodes", type=int, help="Override the node count.")
@click.option("--switching", type=click.Choice(SWITCHING), help="Override the switching mode.")
@click.option("--quantum", type=int, help="Override the synchronisation quantum (ticks).")
@user_errors
def run_command(config, as_json, trace_net, topology, nodes, switching, quantum) -> None:
    """Boot every node of the cluster file CONFIG and run them on one clock.

    Exit status 0 when every node finished and every [expect] held, 2 otherwise."""
    cfg = load_cluster(config, topology=topology, nodes=nodes, switching=switching,
                       quantum=quantum)
    trace = (lambda line: click.echo(line, err=True)) if trace_net else None
    result = run_cluster(cfg, trace)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result_text(result))
    if not result.ok:
        sys.exit(EXIT_PROPERTY_FAILED)


def _params(switching, router_delay, bandwidth, buffer_flits, avoidance) -> LinkParams:
    return LinkParams(switching=switching, router_delay=router_delay, bandwidth=bandwidth,
                      buffer_flits=buffer_flits, deadlock_avoidance=avoidance)


_link_options = [
    click.option("--router-delay", default=4, show_default=True, help="t_r, ticks per hop."),
    click.option("--bandwidth", default=4, show_default=True, help="b, bytes per tick (flit)."),
    click.option("--buffer-flits", default=4, show_default=True, help="Buffer per VC, flits."),
    click.option("--deadlock-avoidance", "avoidance", type=click.Choice(DEADLOCK_AVOIDANCE),
                 default="dateline", show_default=True),
]


def _with_link_options(command):
    for option in reversed(_link_options):
        command = option(command)
    return command


@cluster_group.command("topology")
@click.argument("name", type=click.Choice(list(TOPOLOGIES)))
@click.option("--nodes", required=True, type=int, help="Number of nodes.")
@click.option("--edges", "edge_text", help='For "edges": links as "0-1,1-2,…".')
@click.option("--bytes", "size", default=64, show_default=True, help="Message length L.")
@click.option("--json", "as_json", is_flag=True)
@_with_link_options
@user_errors
def topology_command(name, nodes, edge_text, size, as_json, router_delay, bandwidth,
                     buffer_flits, avoidance) -> None:
    """Degree, links, diameter and bisection width of a topology (by search over the graph),
    and the zero-load latency of one message under each switching mode."""
    edges = None
    if edge_text is not None:
        try:
            edges = [tuple(int(v) for v in part.split("-")) for part in edge_text.split(",")]
        except ValueError:
            raise NetworkError(f"--edges: expected links like 0-1,1-2, not {edge_text!r}") from None
    if size < 1:
        raise NetworkError(f"--bytes must be at least 1, not {size}")
    topology = build(name, nodes, edges)
    params = _params("wormhole", router_delay, bandwidth, buffer_flits, avoidance)
    report = topology_report(topology, params, size)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else topology_text(report, params))


def _rates(text: str) -> tuple[float, ...]:
    try:
        if ":" in text:
            lo, hi, step = (float(v) for v in text.split(":"))
            count = int(round((hi - lo) / step)) + 1
            rates = tuple(round(lo + i * step, 4) for i in range(count))
        else:
            rates = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise NetworkError(f"--rates: expected LOW:HIGH:STEP or a list, not {text!r}") from None
    if not rates or any(not 0 < r <= 1 for r in rates) or list(rates) != sorted(rates):
        raise NetworkError("--rates: ascending loads in (0, 1] flits per node per tick")
    return rates


@cluster_group.command("load")
@click.option("--topology", "names", default="mesh,torus,hypercube", show_default=True,
              help="Comma-separated topologies to compare.")
@click.option("--nodes", default=16, show_default=True)
@click.option("--switching", type=click.Choice(SWITCHING), default="wormhole", show_default=True)
@click.option("--rates", default="0.05:0.95:0.05", show_default=True,
              help="Offered loads, flits/node/tick: LOW:HIGH:STEP or a list.")
@click.option("--bytes", "size", default=32, show_default=True, help="Packet length.")
@click.option("--window", default=600, show_default=True, help="Measured ticks per point.")
@click.option("--seed", default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@_with_link_options
@user_errors
def load_command(names, nodes, switching, rates, size, window, seed, as_json, router_delay,
                 bandwidth, buffer_flits, avoidance) -> None:
    """Latency versus offered load under uniform random traffic, up to saturation."""
    topologies = tuple(build(name.strip(), nodes) for name in names.split(","))
    params = _params(switching, router_delay, bandwidth, buffer_flits, avoidance)
    if window < 10:
        raise NetworkError(f"--window must be at least 10 ticks, not {window}")
    table = load_table(topologies, params, _rates(rates), size=size, window=window, seed=seed)
    if as_json:
        click.echo(json.dumps(table.to_dict(), indent=2))
        return
    click.echo(f"mean latency (ticks) of {size}-byte packets, {switching}, {nodes} nodes, "
               f"uniform random traffic; sat. = saturated")
    click.echo(load_markdown(table))
