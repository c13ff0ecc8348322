"""Progress of a long command on a terminal: one line on stderr, redrawn in place, and nothing
at all when stderr is not a terminal (piped, redirected, under a test runner).

The work reports where it is through a plain callback, ``progress(label, done, total)``
(`check_kernel`, `toyvisor.vmm.comparison.compare` take one), which only records the state;
a background thread redraws the line a few times a second, so the work pays no I/O per step.
A command whose work reports nothing still shows that it is alive and for how long::

    with Progress("toyvisor check") as progress:
        report = check_kernel(guest, progress=progress)
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

#: Seconds between redraws.
INTERVAL = 0.25


class Progress:
    """A progress line for `command` on `stream` (default stderr), drawn only when the stream
    is a terminal (`enabled` overrides that).  Call it as ``progress(label, done, total)``."""

    def __init__(self, command: str, stream: TextIO | None = None, *,
                 enabled: bool | None = None, interval: float = INTERVAL) -> None:
        self.command = command
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.interval = interval
        self.label = ""
        self.done = 0
        self.total = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0

    def __call__(self, label: str, done: int = 0, total: int = 0) -> None:
        self.label, self.done, self.total = label, done, total

    def line(self) -> str:
        """The line as it is drawn now."""
        elapsed = time.monotonic() - self._started
        parts = [f"{self.command}:"]
        if self.label:
            parts.append(self.label)
        if self.total:
            parts.append(f"{self.done}/{self.total}")
        parts.append(f"({elapsed:.0f} s)")
        return " ".join(parts)

    def _draw(self) -> None:
        # one terminal line, or the carriage return would redraw only its last part
        text = self.line()[:max(20, shutil.get_terminal_size().columns - 1)]
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._draw()

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="toyvisor-progress",
                                             daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if self._width:  # leave the terminal as it was: erase the line
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()


__all__ = ["INTERVAL", "Progress"]
