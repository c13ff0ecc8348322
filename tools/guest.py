"""Load a guest — an image, an assembly file or a guest directory — and boot it on a machine.

A *guest directory* holds a ``guest.toml`` manifest::

    name = "minikernel"
    entry_source = "kernel.s"   # assembled with the directory on the include path
    disk = "disk.txt"           # optional: the block device's contents (padded to whole sectors)
    memory = 4194304            # optional: RAM in bytes (default 4 MiB)
    max_steps = 400000          # optional: the default instruction budget
    cpus = 4                    # optional: CPUs of the machine (1..64, default 1)
    interleave = 1000           # optional: steps per CPU turn of the round-robin
    console_input = "..."       # optional: bytes the console offers for reading
    pv_source = "pv/kernel.s"   # optional: the kernel's paravirtualized port (docs/paravirtual-abi.md),
                                # assembled into `Guest.pv_image` for the ``paravirtual`` strategy
    [port_outcome]              # optional: how the port's outcome is compared with this kernel's
    lines = { A = '^A:' }       #   (toyvisor.vmm.outcome: streams, masked patterns)
    [smp_outcome]               # optional: the same rules for an SMP run under a VMM against the
    ignore = ['lost: \\d+']       #   bare multiprocessor: its declared racy (timing-dependent) output
"""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import attrs

from toyvisor.asm import Image, assemble_file, load_image
from toyvisor.asm.assembler import guests_directory
from toyvisor.isa.errors import ToyvisorError
from toyvisor.cpu.machine import DEFAULT_INTERLEAVE
from toyvisor.isa.files import file_kind, parse_toml, read_bounded
from toyvisor.isa.spec import MAX_CPUS, SECTOR_SIZE
from toyvisor.vmm.outcome import OutcomeRules, OutcomeRulesError

DEFAULT_MEMORY = 4 << 20
DEFAULT_MAX_STEPS = 5_000_000
MAX_MEMORY = 1 << 30
#: the largest disk image read: a device file like /dev/zero must not be read for ever
MAX_DISK_SIZE = 1 << 30
#: the largest manifest or configuration file read
MAX_TOML_SIZE = 1 << 20
MANIFEST = "guest.toml"
_MANIFEST_KEYS = {
    "name": str,
    "entry_source": str,
    "disk": str,
    "memory": int,
    "max_steps": int,
    "console_input": str,
    "description": str,
    "pv_source": str,
    "port_outcome": dict,
    "smp_outcome": dict,
    "cpus": int,
    "interleave": int,
}
SOURCE_SUFFIXES = (".s", ".asm")


class GuestError(ToyvisorError):
    """A guest argument or manifest that cannot be loaded."""


@attrs.frozen
class Guest:
    """Everything needed to boot a guest: its image and the machine it expects."""

    name: str
    image: Image
    disk: bytes | None = None
    memory_size: int = DEFAULT_MEMORY
    max_steps: int = DEFAULT_MAX_STEPS
    console_input: bytes = b""
    #: the paravirtualized port of the kernel (manifest key ``pv_source``), or None: what a
    #: paravirtual VMM boots instead of `image`, on the same disk, memory and budget
    pv_image: Image | None = None
    #: how a port's run is judged against this kernel (manifest table ``port_outcome``), or None:
    #: the console line by line
    port_outcome: OutcomeRules | None = None
    #: CPUs of the machine (manifest key ``cpus``) and steps per turn (``interleave``)
    cpus: int = 1
    interleave: int = DEFAULT_INTERLEAVE
    #: how an SMP run under a VMM is judged against the bare multiprocessor's (manifest table
    #: ``smp_outcome``: the output its races make timing-dependent), or None: the console
    #: line by line
    smp_outcome: OutcomeRules | None = None


def load_guest(target: str | Path, include_paths: tuple[Path, ...] = ()) -> Guest:
    """Resolve `target` (guest directory, ``.s`` source or image file) into a bootable guest.

    A target that does not exist as given is looked up among the bundled guests, so
    ``minikernel`` and ``examples/hello.s`` work from any directory.
    """
    path = Path(target)
    if not path.exists() and not path.is_absolute() and (guests_directory() / path).exists():
        path = guests_directory() / path
    if path.is_dir():
        return _load_directory(path, include_paths)
    if not path.exists():
        raise GuestError(f"{path}: no such file or directory")
    if path.suffix in SOURCE_SUFFIXES:
        image = assemble_file(path, include_paths=include_paths).image
    else:
        image = load_image(path)
    return Guest(name=path.stem, image=image)


def _outcome_rules(manifest_path: Path, manifest: dict, key: str) -> OutcomeRules | None:
    if key not in manifest:
        return None
    try:
        return OutcomeRules.from_table(manifest[key], key)
    except OutcomeRulesError as exc:
        raise GuestError(f"{manifest_path}: {exc}") from None


def pad_disk(data: bytes) -> bytes:
    """Disk contents rounded up to whole sectors (at least one)."""
    sectors = max(1, -(-len(data) // SECTOR_SIZE))
    return data.ljust(sectors * SECTOR_SIZE, b"\0")


def read_disk(path: str | Path, what: str = "disk") -> bytes:
    """The contents of a disk image file, padded to whole sectors; a `GuestError` naming the
    file when it is not a regular file, is unreadable or is larger than `MAX_DISK_SIZE`."""
    try:
        return pad_disk(read_bounded(path, MAX_DISK_SIZE))
    except OSError as exc:
        raise GuestError(f"{what} '{path}': cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a device or FIFO may never end
        raise GuestError(f"{what} '{path}': {exc}") from None


def _named_file(manifest_path: Path, key: str, named: Path) -> Path:
    """`named` (the manifest's `key`) if it is a regular file; else a `GuestError` saying what
    it is instead (missing, a directory, a device, a FIFO)."""
    try:
        mode = named.stat().st_mode
    except FileNotFoundError:
        raise GuestError(f"{manifest_path}: {key} '{named}' not found") from None
    except OSError as exc:
        raise GuestError(f"{manifest_path}: {key} '{named}': {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise GuestError(f"{manifest_path}: {key} '{named}': not a regular file "
                         f"({file_kind(mode)})")
    return named


def _load_directory(path: Path, include_paths: tuple[Path, ...]) -> Guest:
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise GuestError(f"{path}: not a guest directory (no {MANIFEST})")
    try:
        raw = read_bounded(manifest_path, MAX_TOML_SIZE)
    except OSError as exc:
        raise GuestError(f"{manifest_path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # a device or FIFO may never end
        raise GuestError(f"{manifest_path}: {exc}") from None
    try:
        manifest = parse_toml(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise GuestError(f"{manifest_path}: invalid TOML: {exc}") from None
    for key, value in manifest.items():
        expected = _MANIFEST_KEYS.get(key)
        if expected is None:
            known = ", ".join(sorted(_MANIFEST_KEYS))
            raise GuestError(f"{manifest_path}: unknown key '{key}' (known: {known})")
        if not isinstance(value, expected) or isinstance(value, bool):
            raise GuestError(f"{manifest_path}: '{key}' must be a {expected.__name__}")
    if "entry_source" not in manifest:
        raise GuestError(f"{manifest_path}: missing 'entry_source'")
    memory = manifest.get("memory", DEFAULT_MEMORY)
    if not 0 < memory <= MAX_MEMORY:
        raise GuestError(f"{manifest_path}: 'memory' must be between 1 and {MAX_MEMORY} bytes")
    max_steps = manifest.get("max_steps", DEFAULT_MAX_STEPS)
    if max_steps <= 0:
        raise GuestError(f"{manifest_path}: 'max_steps' must be positive")
    cpus = manifest.get("cpus", 1)
    if not 1 <= cpus <= MAX_CPUS:
        raise GuestError(f"{manifest_path}: 'cpus' must be between 1 and {MAX_CPUS}")
    interleave = manifest.get("interleave", DEFAULT_INTERLEAVE)
    if interleave <= 0:
        raise GuestError(f"{manifest_path}: 'interleave' must be positive")
    source = _named_file(manifest_path, "entry_source", path / manifest["entry_source"])
    image = assemble_file(source, include_paths=(path, *include_paths)).image
    pv_image = None
    if "pv_source" in manifest:
        pv_source = _named_file(manifest_path, "pv_source", path / manifest["pv_source"])
        pv_image = assemble_file(pv_source, include_paths=(path, *include_paths)).image
    port_outcome, smp_outcome = (_outcome_rules(manifest_path, manifest, key)
                                 for key in ("port_outcome", "smp_outcome"))
    disk = None
    if "disk" in manifest:
        disk_path = _named_file(manifest_path, "disk", path / manifest["disk"])
        disk = read_disk(disk_path, f"{manifest_path}: disk")
    return Guest(
        name=manifest.get("name", path.name),
        image=image,
        disk=disk,
        memory_size=memory,
        max_steps=max_steps,
        console_input=manifest.get("console_input", "").encode("utf-8"),
        pv_image=pv_image,
        port_outcome=port_outcome,
        smp_outcome=smp_outcome,
        cpus=cpus,
        interleave=interleave,
    )
