"""What every `toyvisor` command shares: exit codes, the user-error wrapper, common options.

Commands that live in modules of their own import these from here (never from `cli`), so the
command modules and `cli`, which registers them, form no import circle.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from toyvisor.isa.errors import ToyvisorError

#: The exit-code convention of every command (docs/exit-codes.md): 0 everything held, 1 bad
#: input (one ``error:`` line), 2 a property failed (not equivalent, isolation broken, ...).
EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_PROPERTY_FAILED = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed writer


class OptionConflict(ToyvisorError):
    """Options of one command line that exclude each other (bad input: exit status 1)."""


def user_errors(command):
    """Turn toyvisor and OS errors into a message on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except ToyvisorError as exc:
            click.echo(f"error: {exc}" if "\n" not in str(exc) else str(exc), err=True)
            sys.exit(EXIT_USER_ERROR)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapper


no_fail_option = click.option(
    "--no-fail", is_flag=True,
    help="Exit 0 even when a property failed (the report still says so); bad input still "
         "exits 1.")


#: The options every measuring command shares, one definition each.
cost_model_option = click.option(
    "--cost-model", metavar="NAME|FILE",
    help="A bundled cost profile (pentium4, core2) or a TOML file (default: pentium4).")
placement_option = click.option(
    "--placement", type=click.Choice(["system", "hosted"]), default="system",
    show_default=True, help="VMM placement: type 1 (system) or type 2 (hosted).")


def exit_unless(held: bool, no_fail: bool) -> None:
    """End the command with `EXIT_PROPERTY_FAILED` when a property did not hold (unless the
    user asked for the report alone with ``--no-fail``)."""
    if not held and not no_fail:
        sys.exit(EXIT_PROPERTY_FAILED)


include_option = click.option(
    "-I", "--include", "includes", multiple=True, type=click.Path(file_okay=False, path_type=Path),
    help="Add a directory to the include path (guests/lib is always on it).",
)


class ToyvisorGroup(click.Group):
    """The `toyvisor` command group: click's usage errors (an unknown option, a bad choice, two
    options that exclude each other) exit 1 like every other bad input, since toyvisor keeps 2 for
    "a property failed" (docs/exit-codes.md)."""

    def main(self, *args, **kwargs):
        kwargs.pop("standalone_mode", None)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USER_ERROR)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_USER_ERROR)

