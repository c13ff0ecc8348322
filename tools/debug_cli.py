"""`toyvisor debug GUEST`: the interactive monitor (readline on a terminal) or a script of it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from toyvisor.isa.files import read_bounded

from .clikit import EXIT_USER_ERROR, include_option, user_errors
from .debug import Session
from .debug.monitor import Monitor, Quit
from .debug.session import DEFAULT_CHECKPOINT_EVERY
from .debug.world import DebugError
from .guest import load_guest
from .runner import with_overrides

PROMPT = "(toyvisor) "
MAX_SCRIPT = 1 << 20


@click.command("debug")
@click.argument("guest", type=click.Path(path_type=Path))
@click.option("--vmm", "vmm_name", metavar="NAME",
              help="Run under a VMM strategy (trap-emulate, trap-emulate:0/3/3, "
                   "binary-translation, hardware-assisted:2, ...); default: the bare machine.")
@click.option("--cpus", type=click.IntRange(1, 64), default=1, show_default=True,
              help="CPUs of the machine (as many as the machine offers).")
@click.option("--commands", "script", type=click.Path(dir_okay=False, path_type=Path),
              help="Run the monitor commands in this file (one a line, # comments), print "
                   "them with their output, and exit: 1 if any command failed.")
@click.option("--input", "console_input", help="Text the console offers for reading.")
@click.option("--max-steps", type=click.IntRange(min=1),
              help="Budget of the run (default: the guest's).")
@click.option("--checkpoint-every", type=click.IntRange(min=100),
              default=DEFAULT_CHECKPOINT_EVERY, show_default=True,
              help="Steps between checkpoints: the most any reverse command re-executes.")
@include_option
@user_errors
def debug_command(guest: Path, vmm_name, cpus, script, console_input, max_steps,
                  checkpoint_every, includes) -> None:
    """Debug GUEST: breakpoints, watchpoints, stepping forwards and backwards, on the bare
    machine or under a VMM (type `help` at the prompt; docs/debugger.md)."""
    lines = None
    if script is not None:
        try:
            text = read_bounded(script, MAX_SCRIPT)
        except ValueError as exc:
            raise DebugError(f"{script}: {exc}") from None
        lines = text.decode("utf-8", "replace").splitlines()
    loaded = with_overrides(load_guest(guest, include_paths=tuple(includes)),
                            max_steps=max_steps, console_input=console_input)
    session = Session(loaded, vmm=vmm_name, cpus=cpus, checkpoint_every=checkpoint_every)
    monitor = Monitor(session)
    try:
        click.echo(f"{loaded.name} on {vmm_name or 'the bare machine'}; "
                   f"type help for the commands")
        click.echo(monitor.stop_text(session.last_stop))
        if lines is None and not sys.stdin.isatty():
            lines = sys.stdin.read().splitlines()
        if lines is not None:
            failed = _script(monitor, lines)
            if failed:
                click.echo(f"{failed} command{'s' if failed != 1 else ''} failed", err=True)
                sys.exit(EXIT_USER_ERROR)
        else:
            _interactive(monitor)
    finally:
        session.close()


def _script(monitor: Monitor, lines) -> int:
    failed = 0
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        click.echo(PROMPT + text)
        try:
            output = monitor.execute(text)
        except Quit:
            break
        if output.startswith("error: "):
            failed += 1
        if output:
            click.echo(output)
    return failed


def _interactive(monitor: Monitor) -> None:
    try:
        import readline
    except ImportError:  # pragma: no cover - a Python without readline still gets the monitor
        readline = None
    if readline is not None:
        def complete(text, state):
            options = monitor.completions(text, readline.get_line_buffer())
            return options[state] if state < len(options) else None

        readline.set_completer(complete)
        readline.set_completer_delims(" \t")
        readline.parse_and_bind("tab: complete")
    last = ""
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            click.echo()
            return
        except KeyboardInterrupt:
            click.echo()
            continue
        if not line.strip():
            line = last  # an empty line repeats the last command, as in gdb
        last = line
        try:
            output = monitor.execute(line)
        except Quit:
            return
        if output:
            click.echo(output)


__all__ = ["debug_command"]
