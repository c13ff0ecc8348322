"""A scheduling workload: VMs of several vCPUs running real guest programs, read from a TOML file.

    pcpus = 6                # physical CPUs (--pcpus overrides)
    quantum = 2000           # ticks (--quantum overrides)
    slot = 2000              # ticks of a gang slot and of a printed matrix row (--slot)
    cache = "on"             # the per-CPU cache model: "on", "off" or "SIZE,WAYS,LINE"
    max_ticks = 200000       # a run that has not finished by then is an error

    [[vm]]
    name = "A"               # the cells of the matrix are NAME + vCPU number: A0, A1, ...
    vcpus = 6
    program = "compute.s"    # a guests/sched program, relative to this file
    work = 20                # written to the program's PARAMS block (its meaning: the program)
    arrival = 0              # tick at which the VM arrives
    priority = 0             # 0 (highest) .. 3: the level of its vCPUs in multilevel queues
    memory = 65536           # bytes of guest memory (a multiple of 4096, 64 KiB .. 16 MiB)
    params = true            # false: leave memory alone (a program that is not guests/sched's,
                             # like guests/smpkernel/kernel.s; `work` is then ignored)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs

from toyvisor.asm import AssemblyError, assemble_file
from toyvisor.cpu.cache import CacheGeometry, parse_geometry
from toyvisor.cpu.errors import MachineError
from toyvisor.isa.files import read_bounded

from .errors import SchedError

MAX_WORKLOAD_SIZE = 1 << 20
MAX_VCPUS = 32
MAX_VMS = 64
DEFAULTS = {"quantum": 2000, "slot": 2000, "max_ticks": 1_000_000, "cache": "on"}
_TOP = {"pcpus": int, "quantum": int, "slot": int, "cache": str, "max_ticks": int,
        "description": str, "vm": list}
_VM = {"name": str, "vcpus": int, "program": str, "work": int, "arrival": int, "priority": int,
       "memory": int, "params": bool}
#: guest memory of a VM unless its `memory` key says otherwise
DEFAULT_VM_MEMORY = 64 * 1024
MAX_VM_MEMORY = 16 << 20
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,7}")


@attrs.frozen
class VMSpec:
    """One VM of a workload."""

    name: str
    vcpus: int
    program: Path
    work: int
    arrival: int
    priority: int
    #: the assembled program (an image with .entry and .segments)
    image: object = attrs.field(eq=False, repr=False)
    #: "file:line" of its [[vm]] table, for messages
    where: str = ""
    memory: int = DEFAULT_VM_MEMORY
    #: write the PARAMS block (guests/sched/sched.s) before the VM starts
    params: bool = True


@attrs.frozen
class Workload:
    path: Path
    description: str
    pcpus: int | None
    quantum: int
    slot: int
    cache: CacheGeometry | None
    max_ticks: int
    vms: tuple[VMSpec, ...]

    @property
    def name(self) -> str:
        return self.path.stem


def load_workload(path: str | Path) -> Workload:
    """Read, check and assemble a workload file; every problem is one located `SchedError`."""
    path = Path(path)
    try:
        text = read_bounded(path, MAX_WORKLOAD_SIZE).decode("utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise SchedError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SchedError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib's recursive parser on a document nested too deeply
        raise SchedError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:
        raise SchedError(f"{path}: {exc}") from None
    headers = [text.count("\n", 0, m.start()) + 1
               for m in re.finditer(r"^\s*\[\[\s*vm\s*\]\]", text, re.M)]

    def line_of(key: str, vm: int | None = None) -> str:
        start = 0
        if vm is not None and vm < len(headers):
            start = sum(len(line) + 1 for line in text.split("\n")[:headers[vm]])
        m = re.compile(rf"^\s*{re.escape(key)}\s*=", re.M).search(text, start)
        if m is None or (vm is None and headers and text.count("\n", 0, m.start()) + 1 >
                         headers[0]):
            line = headers[vm] if vm is not None and vm < len(headers) else None
        else:
            line = text.count("\n", 0, m.start()) + 1
        return f"{path}:{line}" if line else str(path)

    def check(table: dict, kinds: dict, vm: int | None = None) -> None:
        for key, value in table.items():
            kind = kinds.get(key)
            if kind is None:
                raise SchedError(f"{line_of(key, vm)}: unknown key '{key}' (known: "
                                 f"{', '.join(sorted(kinds))})")
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise SchedError(f"{line_of(key, vm)}: '{key}' must be a "
                                 f"{'table list' if kind is list else kind.__name__}, not "
                                 f"{type(value).__name__}")

    check(data, _TOP)
    for key in ("pcpus", "quantum", "slot", "max_ticks"):
        if key in data and data[key] < 1:
            raise SchedError(f"{line_of(key)}: '{key}' must be at least 1, not {data[key]}")
    settings = {**DEFAULTS, **data}
    try:
        cache = None if settings["cache"] == "off" else parse_geometry(settings["cache"])
    except MachineError as exc:
        raise SchedError(f"{line_of('cache')}: {exc}") from None
    entries = data.get("vm", [])
    if not entries:
        raise SchedError(f"{path}: a workload needs at least one [[vm]]")
    if len(entries) > MAX_VMS:
        raise SchedError(f"{line_of('vm', MAX_VMS)}: at most {MAX_VMS} VMs")
    vms, names = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}:{headers[i]}" if i < len(headers) else str(path)
        if not isinstance(entry, dict):
            raise SchedError(f"{where}: each [[vm]] must be a table")
        check(entry, _VM, i)
        needed = ("name", "vcpus", "program") + (("work",) if entry.get("params", True) else ())
        for key in needed:
            if key not in entry:
                raise SchedError(f"{where}: [[vm]] needs '{key}'")
        name = entry["name"]
        if not _NAME.fullmatch(name):
            raise SchedError(f"{line_of('name', i)}: VM name {name!r} must be a letter and up to "
                             f"7 letters, digits or _")
        if name in names:
            raise SchedError(f"{line_of('name', i)}: two VMs are named {name!r}")
        names.add(name)
        limits = {"vcpus": (1, MAX_VCPUS), "work": (0, 1 << 20), "arrival": (0, 1 << 40),
                  "priority": (0, 3)}
        for key, (low, high) in limits.items():
            if key in entry and not low <= entry[key] <= high:
                raise SchedError(f"{line_of(key, i)}: '{key}' must be from {low} to {high}, not "
                                 f"{entry[key]}")
        memory = entry.get("memory", DEFAULT_VM_MEMORY)
        if memory % 4096 or not DEFAULT_VM_MEMORY <= memory <= MAX_VM_MEMORY:
            raise SchedError(f"{line_of('memory', i)}: 'memory' must be a multiple of 4096 from "
                             f"{DEFAULT_VM_MEMORY} to {MAX_VM_MEMORY}, not {memory}")
        program = (path.parent / entry["program"])
        try:
            image = assemble_file(program).image
        except AssemblyError as exc:
            first = str(exc).splitlines()[0]
            raise SchedError(f"{line_of('program', i)}: program {entry['program']}: {first}") \
                from None
        vms.append(VMSpec(name=name, vcpus=entry["vcpus"], program=program,
                          work=entry.get("work", 0), arrival=entry.get("arrival", 0),
                          priority=entry.get("priority", 0), memory=memory,
                          params=entry.get("params", True), image=image, where=where))
    return Workload(path=path, description=data.get("description", ""),
                    pcpus=data.get("pcpus"), quantum=settings["quantum"], slot=settings["slot"],
                    cache=cache, max_ticks=settings["max_ticks"], vms=tuple(vms))


__all__ = ["DEFAULTS", "DEFAULT_VM_MEMORY", "VMSpec", "Workload", "load_workload"]
