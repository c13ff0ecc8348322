"""Domain configurations: boot dom0 and its domUs from a TOML file and manage them through dom0
(docs/paravirtualization.md, "Domains").

A configuration::

    disk = "../minikernel/disk.txt"     # optional: the real machine's disk

    [dom0]
    kernel = "../dom0"                  # a guest directory or a .s file (paths relative to the
    memory = "64K"                      # configuration file; bundled guest names work too)

    [[domain]]                          # domUs, domids 1, 2, … in this order
    name = "web"
    kernel = "../minikernel"            # the guest's PV port (pv_source) is booted if it has one
    memory = "4M"                       # bytes: an integer, or a string with K / M
    devices = ["console", "disk"]       # split-driver front-ends wired to dom0's back-ends

Management commands (``list``, ``pause ID``, ``unpause ID``, ``balloon ID PAGES``, ``destroy
ID``, each optionally prefixed ``@T``: run when the system time reaches T machine ticks) are not
carried out here: they are fed to dom0's real console input, and dom0 (guests/dom0/mgmt.s)
executes them with domctl hypercalls, as Xen's toolstack goes through dom0.  There is no
daemon: every `boot` boots the configuration afresh.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import parse_toml, read_bounded
from toyvisor.isa.spec import PAGE_SIZE

from .guest import MAX_MEMORY, MAX_TOML_SIZE, Guest, GuestError, load_guest, read_disk

DEVICES = ("console", "disk")
MAX_DOMUS = 8
MAX_COMMANDS = 16
_TOP_KEYS = {"dom0", "domain", "disk"}
_DOM0_KEYS = {"kernel", "memory", "max_steps"}
_DOMAIN_KEYS = {"name", "kernel", "memory", "devices", "max_steps"}
_COMMAND = re.compile(
    r"^(?:@(?P<time>\d+)\s+)?(?:(?P<list>list)|(?P<one>pause|unpause|destroy)\s+(?P<id>\d+)"
    r"|(?P<balloon>balloon)\s+(?P<bid>\d+)\s+(?P<pages>\d+))$")


class ConfigError(ToyvisorError):
    """A domain configuration that cannot be loaded, or a bad management command."""


@attrs.frozen
class DomainConfig:
    name: str
    guest: Guest
    devices: tuple[str, ...]


@attrs.frozen
class SystemConfig:
    path: Path
    dom0: Guest
    domains: tuple[DomainConfig, ...]
    disk: bytes | None = None


def _memory(where: str, value) -> int:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*([KkMm]?)\s*", value)
        if not match:
            raise ConfigError(f"{where}: 'memory' must be bytes (an integer, or \"64K\", \"4M\")")
        value = int(match[1]) << {"": 0, "k": 10, "m": 20}[match[2].lower()]
    elif not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where}: 'memory' must be bytes (an integer, or \"64K\", \"4M\")")
    if not PAGE_SIZE <= value <= MAX_MEMORY:
        raise ConfigError(f"{where}: 'memory' must be between {PAGE_SIZE} and {MAX_MEMORY} bytes")
    return value


def _check_keys(where: str, table, known: set[str]) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})")


def _guest(path: Path, where: str, table: dict, pv: bool) -> Guest:
    kernel = table.get("kernel")
    if kernel is None:
        raise ConfigError(f"{where}: missing 'kernel'")
    if not isinstance(kernel, str):
        raise ConfigError(f"{where}: 'kernel' must be a string")
    target = path.parent / kernel
    if not target.exists():
        target = Path(kernel)  # a bundled guest name (load_guest looks in guests/)
    try:
        guest = load_guest(target)
    except GuestError as exc:
        raise ConfigError(f"{where}: kernel '{kernel}': {exc}") from None
    if pv and guest.pv_image is not None:
        guest = attrs.evolve(guest, image=guest.pv_image)
    changes = {}
    if "memory" in table:
        changes["memory_size"] = _memory(where, table["memory"])
    if "max_steps" in table:
        steps = table["max_steps"]
        if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
            raise ConfigError(f"{where}: 'max_steps' must be a positive integer")
        changes["max_steps"] = steps
    return attrs.evolve(guest, **changes)


def load_config(path: str | Path) -> SystemConfig:
    """Read and validate a domain configuration (one-line `ConfigError` naming file and key)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    try:
        raw = read_bounded(path, MAX_TOML_SIZE)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a device or FIFO may never end
        raise ConfigError(f"{path}: {exc}") from None
    try:
        data = parse_toml(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    _check_keys(str(path), data, _TOP_KEYS)
    if "dom0" not in data:
        raise ConfigError(f"{path}: missing [dom0]")
    _check_keys(f"{path}: [dom0]", data["dom0"], _DOM0_KEYS)
    dom0 = _guest(path, f"{path}: [dom0]", data["dom0"], pv=False)
    entries = data.get("domain", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'domain' must be [[domain]] tables")
    if len(entries) > MAX_DOMUS:
        raise ConfigError(f"{path}: at most {MAX_DOMUS} [[domain]] entries")
    domains = []
    for i, entry in enumerate(entries):
        where = f"{path}: [[domain]] #{i + 1}"
        _check_keys(where, entry, _DOMAIN_KEYS)
        name = entry.get("name", f"domu{i + 1}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: 'name' must be a non-empty string")
        where = f"{path}: [[domain]] '{name}'"
        devices = entry.get("devices", ["console"])
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise ConfigError(f"{where}: 'devices' must be a list of strings")
        for device in devices:
            if device not in DEVICES:
                raise ConfigError(f"{where}: unknown device '{device}' (known: "
                                  f"{', '.join(DEVICES)})")
        if "console" not in devices:
            raise ConfigError(f"{where}: 'devices' must include \"console\" (dom0's back-end "
                              "serves every domU's console)")
        guest = attrs.evolve(_guest(path, where, entry, pv=True), name=name)
        domains.append(DomainConfig(name, guest, tuple(dict.fromkeys(devices))))
    disk = None
    if "disk" in data:
        if not isinstance(data["disk"], str):
            raise ConfigError(f"{path}: 'disk' must be a string")
        disk_path = path.parent / data["disk"]
        if not disk_path.is_file():
            raise ConfigError(f"{path}: disk '{data['disk']}' not found")
        try:
            disk = read_disk(disk_path, f"{path}: disk")
        except GuestError as exc:
            raise ConfigError(str(exc)) from None
    return SystemConfig(path, dom0, tuple(domains), disk)


def check_command(command: str) -> str:
    """Validate one management command; returns it normalised (single spaces)."""
    text = " ".join(command.split())
    match = _COMMAND.match(text)
    if not match:
        raise ConfigError(f"bad management command '{command}' (expected [@T] list | pause ID | "
                          "unpause ID | balloon ID PAGES | destroy ID)")
    if any(int(n) >= 1 << 31 for n in match.groups() if n and n.isdigit()):
        raise ConfigError(f"bad management command '{command}': numbers must be below 2^31")
    return text


def boot(config: SystemConfig, commands=(), max_steps: int | None = None):
    """Boot `config` (dom0 first), feed `commands` to dom0's real console input, run to the end.
    Returns the `System` (toyvisor.vmm.paravirt.setup)."""
    from toyvisor.vmm.paravirt.setup import boot_system

    commands = [check_command(c) for c in commands]
    if len(commands) > MAX_COMMANDS:
        raise ConfigError(f"at most {MAX_COMMANDS} management commands")
    system = boot_system(config.dom0, [d.guest for d in config.domains], disk=config.disk,
                         block=[("disk" in d.devices) for d in config.domains])
    system.names = {0: "dom0", **{i + 1: d.name for i, d in enumerate(config.domains)}}
    system.all_domains = [system.dom0, *system.domus]
    if commands:
        system.hypervisor.machine.platform.console.feed(
            "".join(c + "\n" for c in commands).encode())
    system.run(max_steps=max_steps)
    return system


def domain_rows(system) -> list[dict]:
    """One row per domain booted: id, name, state, pages, VMM entries, hypercalls."""
    alive = system.strategy.domains
    rows = []
    for domain in system.all_domains:
        vm = domain.vm
        present = alive.get(domain.domid) is domain
        rows.append({
            "id": domain.domid,
            "name": system.names[domain.domid],
            "state": domain.state if present else "destroyed",
            "pages": len(domain.frames()) if present else 0,
            "vmm_entries": vm.entries,
            "hypercalls": sum(n for cause, n in vm.by_cause.items()
                              if cause.startswith("hypercall:")),
            "refused": domain.refusals.total,
            "refusals": [r.to_dict() for r in domain.refusals.entries],
        })
    return rows


def hypervisor_log(system) -> str:
    """Every domain's refused hypercalls, by time (what ``xl dmesg`` would show), or ''."""
    refusals = sorted((r for d in system.all_domains for r in d.refusals.entries),
                      key=lambda r: (r.clock, r.domid))
    dropped = sum(d.refusals.dropped for d in system.all_domains)
    lines = [f"(XEN) ({dropped} older refusals dropped)"] if dropped else []
    return "".join(line + "\n" for line in lines + [r.line() for r in refusals])


def render_table(rows: list[dict]) -> str:
    head = ("id", "name", "state", "pages", "VMM entries", "hypercalls", "refused")
    keys = ("id", "name", "state", "pages", "vmm_entries", "hypercalls", "refused")
    table = [head, *[tuple(str(r[k]) for k in keys) for r in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = []
    for row in table:
        cells = [c.ljust(w) if i in (1, 2) else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


__all__ = ["ConfigError", "DomainConfig", "SystemConfig", "boot", "check_command",
           "domain_rows", "hypervisor_log", "load_config", "render_table"]
