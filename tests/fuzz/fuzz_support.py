"""Shared checks of the fuzz tests: how a toyvisor user-facing entry point may fail.

Every input a user gives (a source, an image, a TOML file, command-line words) ends in success or
in a clear one-line error with a non-zero exit: never a Python traceback, never a hang, never a
partially written output file.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from pathlib import Path

from click.testing import CliRunner

from toyvisor.isa.errors import ToyvisorError
from toyvisor.tools.cli import main

#: no single fuzzed command may take longer than this (a hang, not a speed target)
HANG_SECONDS = 60

#: no single fuzzed command may grow the address space by more than this (reading /dev/zero
#: for ever fails the test with MemoryError instead of taking the machine down)
MEMORY_HEADROOM = 2 << 30

#: exit statuses a user may see: success, user error, usage error / guest did not halt
EXITS = {0, 1, 2}


class Hang(Exception):
    """A fuzzed entry point ran past `HANG_SECONDS`."""


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail (instead of hanging the suite or exhausting memory) when the body runs longer than
    `seconds` or allocates more than `MEMORY_HEADROOM`."""

    def expired(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    limits = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (in_use + MEMORY_HEADROOM, limits[1]))
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, limits)
        signal.signal(signal.SIGALRM, previous)


def cli(*args, input=None):
    """Invoke the `toyvisor` CLI in-process; assert it failed, if at all, like a tool should."""
    with no_hang():
        result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    shown = f"toyvisor {' '.join(map(str, args))[:300]}\n{result.output[-2000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: "
                             f"{result.exception}\n{shown}") from result.exception
    assert "Traceback" not in result.output, shown
    assert result.exit_code in EXITS, shown
    if result.exit_code == 1:  # our errors, or click's usage errors ("Error: No such option")
        errors = [line for line in result.output.splitlines()
                  if line.startswith(("error", "Error: ")) or ": error:" in line]
        assert errors, f"exit 1 without an error message\n{shown}"
    return result


def expect_error(call, *args, **kwargs):
    """Run an API entry point: success or a `ToyvisorError` with a non-empty message only."""
    with no_hang():
        try:
            return call(*args, **kwargs)
        except ToyvisorError as error:
            assert str(error).strip(), f"{type(error).__name__} without a message"
            return error


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` with its contents (to see what a failed command left)."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}
