"""The `toyvisor` command line: a thin layer over the Python API.

Every user error (bad source, bad image, bad manifest, bad argument) ends with a non-zero exit and
a message on stderr — never a Python traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from toyvisor.asm import assemble_file, disassemble, listing, load_image, save_image
from toyvisor.cpu import ENGINES
from toyvisor.cpu.cache import parse_geometry
from toyvisor.isa import popek_goldberg, reference
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import write_atomic
from toyvisor.isa.spec import PLATFORM_SYMBOLS
from toyvisor.isa.table import ALL_INSTRUCTIONS, EXTENSIONS

from toyvisor.testing.defaults import DEFAULT_EFFICIENCY
from toyvisor.testing.defaults import DEFAULT_EXAMPLES as DEFAULT_CHECK_EXAMPLES
from toyvisor.vmm import compare as compare_table
from toyvisor.vmm import comparison, costs
from toyvisor.vmm import nanobench as nanobench_table
from toyvisor.vmm import ptbench as ptbench_table

from . import bench, pictures, plot
from . import domains as domain_config
from . import runner
from . import scaling as scaling_bench
from . import speed_targets, trapbench
from .guest import SOURCE_SUFFIXES, load_guest
from .clikit import (OptionConflict, ToyvisorGroup, cost_model_option, exit_unless, include_option,
                     no_fail_option, placement_option, user_errors)
from .progress import Progress


@click.group(cls=ToyvisorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="toyvisor")
def main() -> None:
    """toyvisor: a virtual CPU and hypervisor lab."""


@main.command("asm")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Image file to write (default: SOURCE with suffix .tvimg).")
@click.option("--listing", "show_listing", is_flag=True,
              help="Print a listing: address, encoding, source line.")
@include_option
@user_errors
def asm_command(source: Path, output: Path | None, show_listing: bool, includes) -> None:
    """Assemble SOURCE into an image."""
    target = output or source.with_suffix(".tvimg")
    if target.exists() and source.exists() and target.samefile(source):
        raise click.UsageError(
            f"the image would overwrite the source {source}: choose another output with -o")
    assembly = assemble_file(source, include_paths=tuple(includes))
    save_image(assembly.image, target)
    if show_listing:
        click.echo(listing(assembly), nl=False)
    click.echo(f"wrote {target} ({sum(len(s.data) for s in assembly.image.segments)} bytes, "
               f"entry {assembly.image.entry:#010x})", err=True)


@main.command("disasm")
@click.argument("target", type=click.Path(path_type=Path))
@include_option
@user_errors
def disasm_command(target: Path, includes) -> None:
    """Disassemble an image (or an assembly file, after assembling it)."""
    if target.suffix in SOURCE_SUFFIXES:
        image = assemble_file(target, include_paths=tuple(includes)).image
    else:
        image = load_image(target)
    click.echo(disassemble(image), nl=False)


@main.command("run")
@click.argument("guest", type=click.Path(path_type=Path))
@click.option("--max-steps", type=click.IntRange(min=1),
              help="Instruction budget (default: the guest's, else 5,000,000).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the results.")
@click.option("--trace", is_flag=True,
              help="Print every instruction (pc, disassembly, source), every trap, every VMM "
                   "entry with its cause (with --vmm) and the console output where it happened.")
@click.option("--input", "console_input", help="Text the console offers for reading.")
@click.option("--disk", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="File whose contents back the block device.")
@click.option("--memory", type=click.IntRange(min=4096, max=1 << 30),
              help="RAM size in bytes.")
@click.option("--vmm", "vmm_name", metavar="NAME",
              help="Run under a VMM strategy (trap-emulate, trap-emulate:0/3/3, ...) and compare "
                   "with the bare machine.")
@click.option("--ring-model", type=click.Choice(["0/1/3", "0/3/3"]),
              help="Ring model of trap-emulate (default 0/1/3).")
@placement_option
@click.option("--engine", type=click.Choice(ENGINES),
              help="Execution engine of a bare-machine run (default interpreter); every engine "
                   "computes the same result.")
@click.option("--cpus", type=int, help="CPUs of the machine, 1..64 (default: the guest's, else 1).")
@click.option("--interleave", type=int,
              help="Steps each CPU runs per turn of the round-robin (default 1000).")
@click.option("--cache", "cache_geometry", metavar="on|SIZE,WAYS,LINE",
              help="Model per-CPU caches (counts only), e.g. --cache 4096,2,32.")
@click.option("--pcpus", type=int,
              help="With --vmm: physical CPUs of the host, 1..64 (default: as many as --cpus); "
                   "fewer than vCPUs share them.")
@include_option
@no_fail_option
@user_errors
def run_command(guest: Path, max_steps, as_json, trace, console_input, disk, memory,
                vmm_name, ring_model, placement, engine, cpus, interleave, cache_geometry,
                pcpus, includes, no_fail) -> None:
    """Boot GUEST (a guest directory, an assembly file or an image) on the bare machine, or
    under a VMM with --vmm.

    Exit status: 0 the guest halted (under --vmm: and the run was equivalent to the bare
    machine, with no resource violation), 2 it did not (budget, triple fault, not equivalent),
    1 bad input."""
    loaded = load_guest(guest, include_paths=tuple(includes))
    loaded = runner.with_overrides(
        loaded, max_steps=max_steps, console_input=console_input, disk=disk, memory=memory,
        cpus=cpus, interleave=interleave)
    if vmm_name is None and ring_model is not None:
        raise OptionConflict("--ring-model chooses the ring model of trap-emulate: it needs "
                             "--vmm trap-emulate")
    cache = None if cache_geometry is None else parse_geometry(cache_geometry)
    if vmm_name is not None and cache is not None:
        raise click.UsageError("--vmm runs guests without the cache model")
    if vmm_name is None and pcpus is not None:
        raise OptionConflict("--pcpus sets the physical CPUs of a VMM's host: it needs --vmm")
    if vmm_name is not None and engine is not None:
        raise click.UsageError("--engine applies to bare-machine runs; a VMM strategy (--vmm) "
                               "decides how guest code runs")
    if vmm_name is not None:
        tracer = (runner.vmm_tracer(loaded, vmm_name, click.echo, ring_model=ring_model)
                  if trace else None)
        vm_result = runner.run_vmm(loaded, vmm_name, ring_model=ring_model, placement=placement,
                                   trace=tracer, pcpus=pcpus)
        if as_json:
            click.echo(json.dumps(vm_result.to_dict(), indent=2))
        else:
            click.echo(runner.vmm_result_text(vm_result), nl=False)
        exit_unless(vm_result.stop_reason == "halted" and vm_result.equivalent
                    and not vm_result.resource_violations, no_fail)
        return
    tracer = runner.Tracer(loaded.image, click.echo, cpus=loaded.cpus) if trace else None
    result = runner.run(loaded, trace=tracer, engine=engine or "interpreter", cache=cache)
    if as_json:
        click.echo(json.dumps(runner.result_json(loaded, result), indent=2))
    else:
        click.echo(runner.result_text(loaded, result), nl=False)
    exit_unless(result.stop_reason == "halted", no_fail)


@main.command("compare")
@click.argument("guest", type=click.Path(path_type=Path))
@click.option("--vmm", "specs", multiple=True, metavar="NAME",
              help="A strategy to include (repeatable; default: every strategy and variant). "
                   "The native run is always included.")
@cost_model_option
@placement_option
@click.option("--max-steps", type=click.IntRange(min=1), help="Instruction budget of every run.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per run.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the estimated cycles by event per strategy (stacked bars) to "
                   "FILE (.svg, or .png with the plot extra).")
@click.option("--cpus", type=int,
              help="CPUs of the guest, 1..64 (default: the guest's): the bare multiprocessor's "
                   "and each VM's vCPUs.")
@click.option("--pcpus", type=int,
              help="Physical CPUs of each VMM's host, 1..64 (default: as many as --cpus).")
@include_option
@no_fail_option
@user_errors
def compare_command(guest: Path, specs, cost_model, placement, max_steps, as_json, markdown,
                    cpus, pcpus, includes, no_fail, plot_file) -> None:
    """Run GUEST natively and under each VMM strategy and compare them in one table.

    Exit status: 0 every run was equivalent to the bare machine with no resource violation,
    2 one was not, 1 bad input."""
    if as_json and markdown:
        raise OptionConflict("--json and --markdown exclude each other")
    if plot_file is not None:
        plot.check_path(plot_file)  # a bad name fails before the measurement, not after
    loaded = runner.with_overrides(load_guest(guest, include_paths=tuple(includes)), cpus=cpus)
    with Progress("toyvisor compare") as progress:
        results = comparison.compare(loaded, specs or None, cost_model=cost_model,
                                     placement=placement, max_steps=max_steps,
                                     progress=progress, pcpus=pcpus)
    notes = comparison.smp_notes(loaded, results, pcpus)
    if plot_file is not None:
        plot.write(pictures.compare_chart(results, cost_model, loaded.name), plot_file)
    model = cost_model or costs.default_model().name
    if as_json:
        click.echo(json.dumps(compare_table.to_json(results), indent=2))
    elif markdown:
        rows = compare_table.build_rows(results)
        click.echo(compare_table.render_markdown(rows, cost_profile=str(model),
                                                 notes_below=notes), nl=False)
    else:
        click.echo(f"{loaded.name}: {placement} VMM, cost model {model}\n")
        click.echo(compare_table.table(results, cost_profile=str(model), notes_below=notes),
                   nl=False)
    exit_unless(all(r.equivalent and not r.resource_violations for r in results), no_fail)


@main.command("nanobench")
@click.option("--vmm", "specs", multiple=True, metavar="NAME",
              help="A strategy to include (repeatable; default: every strategy and variant). "
                   "The native run is always included.")
@click.option("--bench", "benchmarks", multiple=True, metavar="NAME",
              help="A benchmark to measure (repeatable; default: all of guests/nanobench: "
                   + ", ".join(nanobench_table.BENCHMARKS) + ").")
@cost_model_option
@placement_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--markdown", is_flag=True, help="Print the tables as Markdown.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw cycles per iteration per strategy, log scale, beside the "
                   "paper's, to FILE (.svg, or .png with the plot extra).")
@no_fail_option
@user_errors
def nanobench_command(specs, benchmarks, cost_model, placement, as_json, markdown,
                      no_fail, plot_file) -> None:
    """Measure the Adams & Agesen nanobenchmarks per iteration under each VMM strategy.

    Exit status: 0 every run was equivalent to the bare machine, 2 one was not, 1 bad input."""
    if as_json and markdown:
        raise nanobench_table.NanobenchError("--json and --markdown exclude each other")
    if plot_file is not None:
        plot.check_path(plot_file)  # a bad name fails before the measurement, not after
    with Progress("toyvisor nanobench"):
        table = nanobench_table.measure(specs or None, cost_model=cost_model,
                                        placement=placement, benchmarks=benchmarks or None)
    if plot_file is not None:
        plot.write(pictures.nanobench_chart(table), plot_file)
    if as_json:
        click.echo(json.dumps(nanobench_table.to_json(table), indent=2))
    elif markdown:
        click.echo(nanobench_table.render_markdown(table), nl=False)
    else:
        click.echo(nanobench_table.render_text(table), nl=False)
    exit_unless(all(cell.equivalent for cell in table.cells), no_fail)


@main.command("ptbench")
@click.option("--n", "ns", multiple=True, type=click.IntRange(1, ptbench_table.MAX_N),
              metavar="N", help="Page mappings to build (repeatable; default: "
              + ", ".join(map(str, ptbench_table.DEFAULT_NS)) + ").")
@click.option("--batch", type=click.IntRange(1, ptbench_table.MAX_BATCH),
              default=ptbench_table.DEFAULT_BATCH, show_default=True,
              help="Paravirtual kernel: mmu_update requests per call.")
@click.option("--calls", type=click.IntRange(1, ptbench_table.MAX_CALLS),
              default=ptbench_table.DEFAULT_CALLS, show_default=True,
              help="Paravirtual kernel: mmu_update calls per multicall (VMM entry).")
@click.option("--touch", is_flag=True, help="Also write and read back every mapped page.")
@click.option("--vmm", "specs", multiple=True, metavar="NAME",
              help="A strategy to include (repeatable; default: every strategy and variant, "
                   "paravirtual included when registered). The native run is always included.")
@cost_model_option
@placement_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--markdown", is_flag=True, help="Print the tables as Markdown.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the estimated cycles against N, one line per strategy, to FILE "
                   "(.svg, or .png with the plot extra).")
@no_fail_option
@user_errors
def ptbench_command(ns, batch, calls, touch, specs, cost_model, placement, as_json,
                    markdown, no_fail, plot_file) -> None:
    """Measure the page-table-heavy benchmark (guests/ptbench): VMM entries and cycles to build
    an address space of N mappings, per strategy.

    Exit status: 0 every run was equivalent to the bare machine, 2 one was not, 1 bad input."""
    if as_json and markdown:
        raise ptbench_table.PtbenchError("--json and --markdown exclude each other")
    if plot_file is not None:
        plot.check_path(plot_file)  # a bad name fails before the measurement, not after
    with Progress("toyvisor ptbench"):
        table = ptbench_table.measure(ns or ptbench_table.DEFAULT_NS, specs or None, batch,
                                      cost_model, calls=calls, touch=touch,
                                      placement=placement)
    if plot_file is not None:
        plot.write(pictures.ptbench_chart(table), plot_file)
    if as_json:
        click.echo(ptbench_table.dumps(table), nl=False)
    elif markdown:
        click.echo(ptbench_table.render_markdown(table), nl=False)
    else:
        click.echo(ptbench_table.render_text(table), nl=False)
    exit_unless(all(cell.equivalent for cell in table.cells), no_fail)


@main.command("bench")
@click.option("--workload", "workloads", multiple=True, metavar="NAME",
              help="A workload to measure (repeatable; default: all: "
                   + ", ".join(bench.WORKLOAD_NAMES) + ").")
@click.option("--engine", "engines", multiple=True, metavar="NAME",
              help="A native execution engine (repeatable; default: all: "
                   + ", ".join(ENGINES) + ").")
@click.option("--vmm", "specs", multiple=True, metavar="NAME",
              help="A VMM strategy (repeatable; default: " + ", ".join(bench.DEFAULT_STRATEGIES)
                   + "; paravirtual only for guests with a port).")
@click.option("--no-vmm", is_flag=True, help="Measure the native engines only.")
@click.option("--repeat", type=int, default=bench.DEFAULT_REPEAT, show_default=True,
              help="Runs per configuration; results are medians.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Multiply the iteration counts of the guests/bench workloads and of the "
                   "anchors' loops.")
@click.option("--scaling", is_flag=True,
              help="Instead: host memory and start-up by guest RAM size and by number of VMs.")
@click.option("--trap-heavy", is_flag=True,
              help="Instead: host ns per guest exception, int/iret pair, port access, page "
                   "fault and timer interrupt, and per VMM entry, by engine and strategy.")
@click.option("--targets", "speed_goals", is_flag=True,
              help="Instead: issue 13's speed targets in process CPU time, each met or not "
                   "(the issue measures them at --scale 10).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--markdown", is_flag=True, help="Print the table as Markdown.")
@no_fail_option
@user_errors
def bench_command(workloads, engines, specs, no_vmm, repeat, scale, scaling, trap_heavy,
                  speed_goals, as_json, markdown, no_fail) -> None:
    """Measure guest instructions per second on this host, per workload, engine and VMM
    strategy, as ratios to the plain-Python ceiling and py65 (docs/performance.md).

    Exit status: 0 every run was deterministic and equivalent, 2 one was not, 1 bad input.
    Speed targets are reported, never an exit status."""
    if as_json and markdown:
        raise bench.BenchError("--json and --markdown exclude each other")
    if no_vmm and specs:
        raise bench.BenchError("--no-vmm and --vmm exclude each other")
    if speed_goals:
        if workloads or engines or specs or no_vmm or scaling or trap_heavy:
            raise bench.BenchError("--targets takes no --workload, --engine, --vmm, --no-vmm, "
                                   "--scaling or --trap-heavy")
        with Progress("toyvisor bench --targets"):
            goals = speed_targets.measure(scale=scale, repeat=repeat)
        click.echo(json.dumps(goals.to_dict(), indent=2) if as_json
                   else speed_targets.render_markdown(goals) if markdown
                   else speed_targets.render_text(goals), nl=as_json)
        return
    if trap_heavy:
        trapbench.command(workloads, engines, specs, no_vmm, repeat, scale, scaling, as_json,
                          markdown)
        return
    if scaling:
        if workloads or engines or specs or no_vmm:
            raise bench.BenchError("--scaling takes no --workload, --engine, --vmm or --no-vmm")
        with Progress("toyvisor bench --scaling"):
            report = scaling_bench.measure()
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json
                   else scaling_bench.render_markdown(report), nl=as_json)
        return
    with Progress("toyvisor bench"):
        report = bench.measure(workloads or None, engines or None,
                               () if no_vmm else (specs or None), repeat=repeat, scale=scale)
    click.echo(bench.dumps(report) if as_json else bench.render_markdown(report) if markdown
               else bench.render_text(report), nl=False)
    exit_unless(all(r.deterministic and r.equivalent for r in report.rows), no_fail)


@main.command("check")
@click.argument("guest", type=click.Path(path_type=Path))
@click.option("--vmm", "specs", multiple=True, metavar="NAME",
              help="A VMM strategy to check under (repeatable; default: every strategy that runs "
                   "the kernel's own image).")
@click.option("--examples", type=click.IntRange(1, 100_000), default=DEFAULT_CHECK_EXAMPLES,
              show_default=True, help="Generated programs per property and strategy.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the program generator: the same seed gives the same report.")
@click.option("--efficiency", type=click.FloatRange(0.0, 1.0), default=DEFAULT_EFFICIENCY,
              show_default=True, help="Smallest share of directly executed instructions.")
@click.option("--cpus", type=int, default=1, show_default=True,
              help="Also check the VMM properties for SMP VMs: generated guests of this many "
                   "vCPUs next to a victim VM of two (docs/testing-isolation.md, SMP VMs).")
@click.option("--pcpus", type=int, help="Physical CPUs of the host for --cpus (default: as many "
                                        "as vCPUs).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@include_option
@no_fail_option
@user_errors
def check_command(guest: Path, specs, examples, seed, efficiency, cpus, pcpus, as_json, includes,
                  no_fail) -> None:
    """Run adversarial ring-3 programs on top of GUEST's kernel, natively and under each VMM,
    and report every isolation property as held or failed (docs/testing-isolation.md).
    Exit status: 0 every property held, 2 a property failed, 1 bad input."""
    from toyvisor.testing.check import check_kernel  # imports hypothesis: only when checking

    with Progress("toyvisor check") as progress:
        report = check_kernel(load_guest(guest, include_paths=tuple(includes)), specs or None,
                              examples=examples, seed=seed, efficiency=efficiency,
                              progress=progress, cpus=cpus, pcpus=pcpus)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
    exit_unless(report.held, no_fail)


@main.command("isa")
@click.option("--markdown", is_flag=True, help="Emit the Markdown ISA reference.")
@click.option("--symbols", is_flag=True, help="List the predefined assembly symbols.")
@click.option("--json", "as_json", is_flag=True, help="The table (or, with --check, the verdict) as JSON.")
@click.option("--check", is_flag=True,
              help="Apply Popek & Goldberg's theorems to the table: is the ISA virtualizable?")
@click.option("--extension", type=click.Choice(sorted(EXTENSIONS)),
              help="With --check: judge the ISA with this extension, in its non-root mode.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
@user_errors
def isa_command(markdown: bool, symbols: bool, as_json: bool, check: bool,
                extension: str | None, output: Path | None) -> None:
    """Show the instruction table with each instruction's privilege class."""
    if extension is not None and not check:
        raise click.UsageError("--extension only applies to --check")
    if check:
        verdict = popek_goldberg.analyze(extension=extension)
        text = json.dumps(verdict.to_dict(), indent=2) + "\n" if as_json else verdict.report()
    elif symbols:
        text = "".join(f"{name} = {value:#x}\n" for name, value in PLATFORM_SYMBOLS.items())
    elif markdown:
        text = reference.markdown()
    elif as_json:
        text = json.dumps([
            {"mnemonic": d.mnemonic, "opcode": d.opcode, "syntax": d.syntax,
             "class": d.privilege.value, "group": d.group, "length": d.length,
             "aliases": list(d.aliases), "summary": d.summary, "extension": d.extension,
             "nonroot": d.nonroot, "exit_control": d.exit_control}
            for d in ALL_INSTRUCTIONS], indent=2) + "\n"
    else:
        text = reference.text_table() + "\n"
    if output:
        write_atomic(output, text.encode("utf-8"))
    else:
        click.echo(text, nl=False)


# -- domains: a configuration of dom0 + domUs, managed through dom0 ------------------------------

_NO_DAEMON = ("There is no daemon: every invocation boots CONFIG afresh, runs the command "
              "inside that run (dom0 carries it out with domctl) and runs the system to the end.")


@main.group("domains")
def domains_group() -> None:
    """Boot a domain configuration (TOML: dom0 + domUs) under the paravirtual VMM and manage
    its domains through dom0.

    There is no daemon: every invocation boots CONFIG afresh."""


def _boot_and_report(config_path: Path, commands, as_json: bool, max_steps) -> None:
    config = domain_config.load_config(config_path)
    system = domain_config.boot(config, commands, max_steps=max_steps)
    rows = domain_config.domain_rows(system)
    if as_json:
        click.echo(json.dumps({"config": str(config_path), "commands": list(commands),
                               "console": system.console, "domains": rows}, indent=2))
        return
    console = system.console
    click.echo(console, nl=not console.endswith("\n") and bool(console))
    log = domain_config.hypervisor_log(system)
    if log:
        click.echo("\nhypervisor log (refused hypercalls, as xl dmesg shows them):")
        click.echo(log, nl=False)
    click.echo()
    click.echo(domain_config.render_table(rows), nl=False)


_config_argument = click.argument("config", type=click.Path(path_type=Path))
_json_option = click.option("--json", "as_json", is_flag=True,
                            help="Print one JSON object: console and domain table.")
_steps_option = click.option("--max-steps", type=click.IntRange(min=1),
                             help="Instruction budget of every domain (default: each guest's).")
_at_option = click.option("--at", "at", type=click.IntRange(min=0), metavar="T",
                          help="Run the command when the system time reaches T machine ticks "
                               "(default: at boot).")


@domains_group.command("boot")
@_config_argument
@click.option("--do", "commands", multiple=True, metavar="CMD",
              help="A management command for dom0 (repeatable, run in order): '[@T] list', "
                   "'pause ID', 'unpause ID', 'balloon ID PAGES', 'destroy ID'; '@T' delays it "
                   "until the system time reaches T machine ticks.")
@_json_option
@_steps_option
@user_errors
def domains_boot_command(config: Path, commands, as_json, max_steps) -> None:
    """Boot CONFIG (dom0 first), feed the --do commands to dom0's console input, run to the end;
    print the real console and a table of the domains."""
    _boot_and_report(config, commands, as_json, max_steps)


def _wrapper(name: str, args: tuple[str, ...], summary: str):
    def command(config: Path, at, as_json, max_steps, **values) -> None:
        words = [name, *(str(values[a]) for a in args)]
        prefix = f"@{at} " if at is not None else ""
        _boot_and_report(config, [prefix + " ".join(words)], as_json, max_steps)

    command.__name__ = f"domains_{name}_command"
    command.__doc__ = f"{summary}\n\n{_NO_DAEMON}"
    command = user_errors(command)
    for a in reversed(args):
        command = click.argument(a, type=click.IntRange(min=0))(command)
    command = _config_argument(_at_option(_json_option(_steps_option(command))))
    return domains_group.command(name)(command)


_wrapper("list", (), "Boot CONFIG and have dom0 list the domains (id, state, pages).")
_wrapper("pause", ("domid",), "Boot CONFIG and have dom0 pause domain DOMID.")
_wrapper("unpause", ("domid",), "Boot CONFIG and have dom0 unpause domain DOMID.")
_wrapper("balloon", ("domid", "pages"),
         "Boot CONFIG and have dom0 balloon domain DOMID to PAGES pages.")
_wrapper("destroy", ("domid",), "Boot CONFIG and have dom0 destroy domain DOMID.")


# -- commands defined in modules of their own: one line each --------------------------------------
# (each such module imports click helpers from .clikit, never from this file)
from .cluster_cli import cluster_group  # noqa: E402
from .debug_cli import debug_command  # noqa: E402
from .migrate_cli import migrate_command  # noqa: E402
from .sched_cli import sched_command  # noqa: E402
from .smp_cli import smp_command  # noqa: E402

main.add_command(cluster_group)
main.add_command(debug_command)
main.add_command(migrate_command)
main.add_command(sched_command)
main.add_command(smp_command)


if __name__ == "__main__":  # pragma: no cover
    main()
