"""How a guest's cost on the host grows with its memory size and with the number of VMs:
``toyvisor bench --scaling`` (docs/performance.md, Scaling).

Each point is measured in a fresh Python process (``python -c``, the same interpreter), so one
point's memory and caches cannot leak into the next: host RSS is read before the machine exists (after
the imports and the assembly) and after it has booted and run.

Start-up is the median of `STARTUP_SAMPLES` builds.

- *Memory size*: the compute guest with 1, 16, 64 and 256 MiB of RAM: start-up (build the
  machine and load the image) on the bare machine and under each VMM that hosts unmodified
  guests (`HOSTING_STRATEGIES`), the RSS growth after boot, after the run, and after every page
  of the guest's RAM has been written (the worst case: a guest that uses all of its memory),
  which as a fraction of the guest's RAM must stay below 2.
- *VMs*: 1, 2, 4 and 8 minikernels under one `toyvisor.vmm.Hypervisor`: start-up of all of
  them, RSS growth, the time for all to run to their end, and the aggregate guest instructions
  per second.
"""

from __future__ import annotations

import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import attrs

from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.spec import PAGE_SIZE

DEFAULT_MEMORY_MIB = (1, 16, 64, 256)
DEFAULT_VM_COUNTS = (1, 2, 4, 8)
DEFAULT_STRATEGY = "trap-emulate"
#: the strategies whose start-up is measured at every memory size (default variants)
HOSTING_STRATEGIES = ("trap-emulate", "binary-translation", "hardware-assisted")
#: the compute guest's iteration count at every memory size (a short, fixed run)
MEMORY_PROBE_COUNT = 2_000
MAX_MEMORY_MIB = 1024
#: start-ups timed per point (the median is reported: one build takes about a millisecond, where
#: a busy host's hiccups show)
STARTUP_SAMPLES = 5
MAX_VMS = 64
MIB = 1 << 20


class ScalingError(ToyvisorError):
    """A scaling request that cannot be measured."""


@attrs.frozen
class MemoryPoint:
    memory_mib: int
    #: seconds to build the bare machine and load the image
    startup_seconds: float
    #: (strategy, seconds to build a hypervisor with one VM of this size and boot it)
    vmm_startup_seconds: tuple[tuple[str, float], ...]
    #: host RSS growth, bare machine, after boot and after the run
    rss_after_boot: int
    rss_after_run: int
    #: host RSS growth once every page of guest RAM has been written
    rss_all_touched: int
    guest_instructions: int

    @property
    def rss_per_guest_byte(self) -> float:
        """Worst-case host memory per byte of guest RAM (every page written)."""
        return self.rss_all_touched / (self.memory_mib * MIB)


@attrs.frozen
class VMPoint:
    vms: int
    startup_seconds: float
    run_seconds: float
    rss_after_boot: int
    rss_after_run: int
    guest_instructions: int
    all_halted: bool

    @property
    def mips(self) -> float:
        return self.guest_instructions / self.run_seconds / 1e6


@attrs.frozen
class ScalingReport:
    memory: tuple[MemoryPoint, ...]
    vms: tuple[VMPoint, ...]
    #: the strategy hosting the VMs of the VM-count measurement
    strategy: str
    environment: dict

    def to_dict(self) -> dict:
        return {
            "environment": self.environment,
            "strategy": self.strategy,
            "memory": [{**attrs.asdict(p), "rss_per_guest_byte": p.rss_per_guest_byte}
                       for p in self.memory],
            "vms": [{**attrs.asdict(p), "mips": p.mips} for p in self.vms],
        }


def _rss() -> int:
    """Resident set size of this process in bytes (Linux /proc; elsewhere the peak)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _median_time(build, samples: int = STARTUP_SAMPLES):
    """(median seconds of `samples` calls of `build`, the last call's result)."""
    times = []
    for _ in range(samples):
        result = None  # drop the previous build, and collect it, before timing the next
        gc.collect()
        started = time.perf_counter()
        result = build()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _memory_probe(memory_mib: int) -> MemoryPoint:
    from toyvisor.cpu import Machine
    from toyvisor.vmm import Hypervisor, make_strategy

    from .guest import load_guest

    guest = attrs.evolve(load_guest("bench/compute"), memory_size=memory_mib * MIB,
                         console_input=str(MEMORY_PROBE_COUNT).encode())
    # warm up: the first machine and hypervisor pay for lazy imports and first-use caches
    Machine(memory_size=1 * MIB).load(guest.image)
    for strategy in HOSTING_STRATEGIES:
        Hypervisor(make_strategy(strategy), memory_size=2 * MIB).create_vm(
            attrs.evolve(guest, memory_size=MIB)).boot()
    gc.collect()
    base = _rss()

    def boot() -> Machine:
        built = Machine(memory_size=guest.memory_size, console_input=guest.console_input)
        built.load(guest.image)
        return built

    startup, machine = _median_time(boot)
    after_boot = _rss() - base
    result = machine.run(guest.max_steps)
    after_run = _rss() - base
    ram = machine.memory.data
    for address in range(0, len(ram), PAGE_SIZE):
        ram[address] = 1
    all_touched = _rss() - base
    del machine, ram
    gc.collect()
    vmm_startup = []
    for strategy in HOSTING_STRATEGIES:
        def boot_vm(strategy=strategy):
            hypervisor = Hypervisor(make_strategy(strategy), memory_size=MIB + guest.memory_size)
            hypervisor.create_vm(guest).boot()
            return hypervisor

        seconds, hypervisor = _median_time(boot_vm)
        vmm_startup.append((hypervisor.strategy.spec, seconds))
        del hypervisor
    return MemoryPoint(memory_mib, startup, tuple(vmm_startup), after_boot, after_run,
                       all_touched, result.guest_instructions)


def _vm_probe(count: int, strategy: str) -> VMPoint:
    from toyvisor.vmm import Hypervisor, make_strategy

    from .guest import load_guest

    guest = load_guest("minikernel")
    Hypervisor(make_strategy(strategy), memory_size=MIB + guest.memory_size)  # warm up
    gc.collect()
    base = _rss()

    def boot() -> tuple:
        built = Hypervisor(make_strategy(strategy), memory_size=MIB + count * guest.memory_size)
        guests = [built.create_vm(guest) for _ in range(count)]
        for vm in guests:
            vm.boot()
        return built, guests

    startup, (hypervisor, vms) = _median_time(boot)
    after_boot = _rss() - base
    started = time.perf_counter()
    hypervisor.run()
    run = time.perf_counter() - started
    after_run = _rss() - base
    return VMPoint(count, startup, run, after_boot, after_run,
                   sum(vm.guest_instructions for vm in vms),
                   all(vm.stop_reason == "halted" for vm in vms))


_PROBES = {"memory": (_memory_probe, MemoryPoint), "vms": (_vm_probe, VMPoint)}
_CHILD = ("import json, sys, attrs\n"
          "from toyvisor.tools import scaling\n"
          "probe, _ = scaling._PROBES[sys.argv[1]]\n"
          "print(json.dumps(attrs.asdict(probe(*json.loads(sys.argv[2])))))\n")


def _in_fresh_process(kind: str, *args):
    """Run probe `kind` with `args` in a new interpreter (a subprocess, not multiprocessing:
    callers need no ``if __name__ == "__main__"`` guard) and rebuild its point."""
    done = subprocess.run([sys.executable, "-c", _CHILD, kind, json.dumps(args)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ScalingError(f"the {kind} probe {args} failed: {reason}")
    fields = json.loads(done.stdout.splitlines()[-1])
    point_type = _PROBES[kind][1]
    if point_type is MemoryPoint:
        fields["vmm_startup_seconds"] = tuple(map(tuple, fields["vmm_startup_seconds"]))
    return point_type(**fields)


def measure(memory_mib: Sequence[int] = DEFAULT_MEMORY_MIB,
            vm_counts: Sequence[int] = DEFAULT_VM_COUNTS,
            strategy: str = DEFAULT_STRATEGY) -> ScalingReport:
    """Measure every memory size and every VM count, each in a fresh process."""
    from toyvisor.vmm import StrategyError, make_strategy

    from .bench import environment

    for mib in memory_mib:
        if not 1 <= mib <= MAX_MEMORY_MIB:
            raise ScalingError(f"memory sizes must be from 1 to {MAX_MEMORY_MIB} MiB, not {mib}")
    for count in vm_counts:
        if not 1 <= count <= MAX_VMS:
            raise ScalingError(f"VM counts must be from 1 to {MAX_VMS}, not {count}")
    try:
        spec = make_strategy(strategy)
    except StrategyError as exc:
        raise ScalingError(str(exc)) from None
    if spec.name == "native" or spec.runs_port:
        raise ScalingError(f"{spec.name}: scaling needs a strategy that hosts unmodified "
                           "guests in one hypervisor")
    memory = tuple(_in_fresh_process("memory", mib) for mib in memory_mib)
    vms = tuple(_in_fresh_process("vms", count, spec.spec) for count in vm_counts)
    return ScalingReport(memory, vms, spec.spec, environment())


def _mib(size: int) -> str:
    return f"{size / MIB:.1f}"


def render_markdown(report: ScalingReport) -> str:
    """The two scaling tables as Markdown."""
    specs = [spec for spec, _ in report.memory[0].vmm_startup_seconds] if report.memory else []
    lines = ["| guest RAM (MiB) | start-up, bare machine (ms) | "
             + "".join(f"start-up, {spec} (ms) | " for spec in specs)
             + "host RSS after boot (MiB) | after the run (MiB) | every page written (MiB) "
             "| worst case / guest RAM |",
             "| ---: | ---: | " + "---: | " * len(specs) + "---: | ---: | ---: | ---: |"]
    lines.extend(f"| {p.memory_mib} | {p.startup_seconds * 1000:.2f} | "
                 + "".join(f"{seconds * 1000:.2f} | " for _, seconds in p.vmm_startup_seconds)
                 + f"{_mib(p.rss_after_boot)} | {_mib(p.rss_after_run)} | "
                 f"{_mib(p.rss_all_touched)} | {p.rss_per_guest_byte:.3f} |"
                 for p in report.memory)
    lines += ["", f"| VMs ({report.strategy}, minikernel) | start-up (ms) "
              "| run, all to the end (s) | host RSS after boot (MiB) | host RSS after run (MiB) "
              "| aggregate MIPS | all halted |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    lines.extend(f"| {p.vms} | {p.startup_seconds * 1000:.1f} | {p.run_seconds:.2f} | "
                 f"{_mib(p.rss_after_boot)} | {_mib(p.rss_after_run)} | {p.mips:.3f} | "
                 f"{'yes' if p.all_halted else 'NO'} |" for p in report.vms)
    return "\n".join(lines) + "\n"


__all__ = ["DEFAULT_MEMORY_MIB", "DEFAULT_STRATEGY", "DEFAULT_VM_COUNTS", "HOSTING_STRATEGIES",
           "MemoryPoint",
           "ScalingError", "ScalingReport", "VMPoint", "measure", "render_markdown"]
