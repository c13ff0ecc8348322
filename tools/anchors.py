"""The two reference rates every `toyvisor bench` result is divided by, measured in the same run.

- The **plain-Python ceiling**: the compute loop of ``guests/bench/compute`` written in plain
  Python, each guest instruction's arithmetic kept (add, xor, shift, add, count down, test).
  How fast CPython runs it depends on how the loop is spelt, so `CEILING_FORMULATIONS` holds
  several honest spellings (``for``/``range``, ``while``, statement per instruction or fused
  expressions), all timed in the same process, and the ceiling is the *fastest* of them: no CPU
  written in Python can beat the interpreter running that loop directly, so
  ``guest instructions/s ÷ ceiling operations/s`` never flatters an engine.  Every formulation
  computes the guest's checksum (each returns the ``acc`` and ``x`` the guest prints), which is
  what makes it *the same* arithmetic.
- The **py65 peer**: py65 (a 6502 simulator in pure Python, the optional extra ``peer``) stepping
  an equivalent 6502 loop (`PY65_PROGRAM`).  Its rate is 6502 instructions per second; an 8-bit
  CPU needs about twice as many instructions for the same loop, so this compares emulators the
  way they are usually compared (instructions per second), not work done.

Timing: `time.perf_counter` around the loop only; the median of `repeat` runs.
"""

from __future__ import annotations

import importlib.metadata
import statistics
import time
from collections.abc import Callable

import attrs

M32 = 0xFFFFFFFF
#: Guest instructions of one compute-loop iteration, and so ceiling operations per iteration.
OPS_PER_ITERATION = 7
DEFAULT_CEILING_ITERATIONS = 300_000
DEFAULT_PY65_STEPS = 200_000

#: The 6502 loop: the compute loop's arithmetic on 8-bit values (acc in $10, x in $11), 256 × 256
#: iterations, forever.  Per inner iteration: TXA CLC ADC STA EOR STA ASL ASL ASL CLC ADC STA
#: DEX BNE (14 instructions where the toyvisor guest needs 7).
PY65_ORIGIN = 0x0200
PY65_PROGRAM = bytes([
    0xA0, 0x00,        # start: LDY #0
    0xA2, 0x00,        # outer: LDX #0
    0x8A,              # loop:  TXA            a = i
    0x18,              #        CLC
    0x65, 0x10,        #        ADC $10        a = acc + i
    0x85, 0x10,        #        STA $10        acc = a
    0x45, 0x11,        #        EOR $11        a = acc ^ x
    0x85, 0x11,        #        STA $11        x = a
    0x0A,              #        ASL A
    0x0A,              #        ASL A
    0x0A,              #        ASL A          a = x << 3
    0x18,              #        CLC
    0x65, 0x11,        #        ADC $11        a = x + (x << 3)
    0x85, 0x11,        #        STA $11        x = a
    0xCA,              #        DEX
    0xD0, 0xEB,        #        BNE loop
    0x88,              #        DEY
    0xD0, 0xE6,        #        BNE outer
    0x4C, 0x00, 0x02,  #        JMP start
])


@attrs.frozen
class Anchor:
    """A reference rate: `rate` operations (or instructions) per second, the median of `runs`."""

    name: str
    #: what is counted: "operations" for the ceiling, "6502 instructions" for py65
    unit: str
    #: operations per timed run
    count: int
    #: seconds of each timed run, in the order measured
    runs: tuple[float, ...]
    #: None when the anchor could not be measured (see `note`)
    version: str | None = None
    note: str = ""
    #: for the ceiling: the seconds of every formulation's runs (the fastest is `runs`)
    formulations: dict[str, tuple[float, ...]] = attrs.field(factory=dict)

    @property
    def measured(self) -> bool:
        return bool(self.runs)

    @property
    def seconds(self) -> float | None:
        """The median run's seconds (None if not measured)."""
        return statistics.median(self.runs) if self.runs else None

    @property
    def rate(self) -> float | None:
        """Operations per second of the median run (None if not measured)."""
        return self.count / self.seconds if self.runs else None

    def to_dict(self) -> dict:
        rate = self.rate
        return {"name": self.name, "unit": self.unit, "count": self.count,
                "runs": list(self.runs), "median_seconds": self.seconds,
                "mips": None if rate is None else rate / 1e6, "version": self.version,
                "note": self.note,
                "formulations": {name: {"runs": list(runs),
                                        "mips": self.count / statistics.median(runs) / 1e6}
                                 for name, runs in self.formulations.items()}}


def ceiling_loop(n: int) -> tuple[int, int]:
    """The compute loop of guests/bench/compute in plain Python: returns its (acc, x)."""
    acc = x = 0
    i = n
    while i:                    # cmpi + jnz
        acc = (acc + i) & M32   # add
        x ^= acc                # xor
        t = (x << 3) & M32      # shli
        x = (x + t) & M32       # add
        i -= 1                  # addi
    return acc, x


def _for_range(n: int) -> tuple[int, int]:
    acc = x = 0
    for i in range(n, 0, -1):   # addi + cmpi + jnz
        acc = (acc + i) & M32
        x ^= acc
        t = (x << 3) & M32
        x = (x + t) & M32
    return acc, x


def _for_range_fused(n: int) -> tuple[int, int]:
    acc = x = 0
    for i in range(n, 0, -1):
        acc = (acc + i) & M32
        x ^= acc
        x = (x + ((x << 3) & M32)) & M32
    return acc, x


def _while_fused(n: int) -> tuple[int, int]:
    acc = x = 0
    i = n
    while i:
        acc = (acc + i) & M32
        x ^= acc
        x = (x + ((x << 3) & M32)) & M32
        i -= 1
    return acc, x


#: Honest plain-Python spellings of the compute loop, by name: each does every guest
#: instruction's arithmetic (no algebra folds ``x + (x << 3)`` into ``9 * x``) and returns the
#: guest's (acc, x).  `measure_ceiling` keeps the fastest.
CEILING_FORMULATIONS: dict[str, Callable[[int], tuple[int, int]]] = {
    "while": ceiling_loop,
    "for-range": _for_range,
    "for-range-fused": _for_range_fused,
    "while-fused": _while_fused,
}


@attrs.frozen
class CeilingRuns:
    """The seconds of each timed run of every formulation, in the order measured."""

    iterations: int
    runs: dict[str, tuple[float, ...]]

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(r) for name, r in self.runs.items()}

    def fastest(self) -> str:
        """The formulation whose median run is shortest."""
        medians = self.medians()
        return min(medians, key=medians.__getitem__)

    def extend(self, other: CeilingRuns) -> CeilingRuns:
        return CeilingRuns(self.iterations, {name: self.runs.get(name, ()) + other.runs[name]
                                             for name in other.runs})

    def anchor(self) -> Anchor:
        """The ceiling: the fastest formulation's runs, every formulation's rate in `note`."""
        best = self.fastest()
        count = self.iterations * OPS_PER_ITERATION
        rates = ", ".join(f"{name} {count / seconds / 1e6:.2f}"
                          for name, seconds in self.medians().items())
        return Anchor("python-ceiling", "operations", count, self.runs[best],
                      note=f"fastest of {len(self.runs)} formulations: {best} "
                           f"(M operations/s: {rates})",
                      formulations={name: tuple(r) for name, r in self.runs.items()})


def _timed(action: Callable[[], object], repeat: int) -> tuple[float, ...]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return tuple(runs)


def time_ceiling(iterations: int = DEFAULT_CEILING_ITERATIONS, repeat: int = 1) -> CeilingRuns:
    """Every formulation of `CEILING_FORMULATIONS` run `repeat` times, interleaved (one run of
    each per round) so that a busy host slows them alike."""
    runs: dict[str, list[float]] = {name: [] for name in CEILING_FORMULATIONS}
    for _ in range(repeat):
        for name, loop in CEILING_FORMULATIONS.items():
            runs[name].extend(_timed(lambda: loop(iterations), 1))
    return CeilingRuns(iterations, {name: tuple(r) for name, r in runs.items()})


def measure_ceiling(iterations: int = DEFAULT_CEILING_ITERATIONS, repeat: int = 5) -> Anchor:
    """The plain-Python ceiling: every formulation timed `repeat` times, the fastest kept."""
    return time_ceiling(iterations, repeat).anchor()


def py65_version() -> str | None:
    """The installed py65's version, or None if it is not installed."""
    try:
        return importlib.metadata.version("py65")
    except importlib.metadata.PackageNotFoundError:
        return None


PY65_MISSING = "py65 is not installed (pip install 'toyvisor[peer]'): no peer anchor measured"


def measure_py65(steps: int = DEFAULT_PY65_STEPS, repeat: int = 5) -> Anchor:
    """py65 stepping `PY65_PROGRAM` `steps` times, timed `repeat` times; an anchor with no runs
    and a `note` saying why when py65 is not installed."""
    version = py65_version()
    try:
        from py65.devices.mpu6502 import MPU
    except ImportError:
        return Anchor("py65", "6502 instructions", steps, (), note=PY65_MISSING)
    mpu = MPU()
    mpu.memory[PY65_ORIGIN:PY65_ORIGIN + len(PY65_PROGRAM)] = list(PY65_PROGRAM)

    def run() -> None:
        mpu.pc = PY65_ORIGIN
        step = mpu.step
        for _ in range(steps):
            step()

    return Anchor("py65", "6502 instructions", steps, _timed(run, repeat), version=version,
                  note=f"py65 {version}, MPU 6502, {len(PY65_PROGRAM)}-byte loop")


__all__ = ["Anchor", "CEILING_FORMULATIONS", "CeilingRuns", "DEFAULT_CEILING_ITERATIONS", "DEFAULT_PY65_STEPS", "OPS_PER_ITERATION",
           "PY65_MISSING", "PY65_PROGRAM", "ceiling_loop", "measure_ceiling", "measure_py65",
           "py65_version", "time_ceiling"]
