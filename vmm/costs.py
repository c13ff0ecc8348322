"""The cycle cost model: turn a run's event counts into an estimated number of cycles.

A run (native or under a VMM strategy) counts *events* — the vocabulary fixed in
docs/vmm-design.md (`instruction`, `trap`, `vm_exit`, ...). A `CostModel` prices each event in
cycles and the estimate is a plain weighted sum::

    cycles = sum(count[key] * cost(key) for key in events)

Per-cause refinements: an events key may name a cause after a colon, e.g. ``vm_exit:pgfault``.
Its price is ``costs["vm_exit:pgfault"]`` when the model has that key, otherwise the price of the
plain event ``costs["vm_exit"]`` (a ``event:cause`` key overrides ``event``). A refined count is
*part of* the plain event's count when both are given (``vm_exit: 10, vm_exit:pgfault: 4`` means
ten exits, four of them page-fault exits); when the plain event is absent its count is the sum of
its refinements.

Bundled profiles live in ``vmm/profiles/*.toml``; every number in them names its source (paper,
table, page) or says how it was derived. See docs/cost-model.md.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import attrs

from toyvisor.isa.errors import ToyvisorError
from toyvisor.isa.files import parse_toml, read_bounded, write_atomic

#: Every event of the contract (docs/vmm-design.md), in the contract's order.
EVENTS: tuple[str, ...] = (
    "instruction",
    "translated_instruction",
    "translation",
    "guest_trap",
    "trap",
    "hypercall",
    "vm_exit",
    "emulated_instruction",
    "callout",
    "shadow_sync",
    "interrupt_injection",
    "tlb_flush",
    "device_access",
    "port_io",
    "host_syscall",
    "world_switch",
)

#: The profile used when none is named: the one machine on which Adams & Agesen measured native
#: execution, the software VMM and the hardware VMM alike (see docs/cost-model.md).
DEFAULT_PROFILE = "pentium4"

_CAUSE = re.compile(r"[a-z0-9][a-z0-9_./-]*\Z")
_TOP_LEVEL_KEYS = ("name", "description", "costs", "sources")


#: the largest profile file read (a profile is a few dozen lines; /dev/zero is not one)
MAX_PROFILE_SIZE = 1 << 20


class CostModelError(ToyvisorError):
    """A cost profile that cannot be loaded, or events that cannot be priced."""


def split_key(key: str) -> tuple[str, str | None]:
    """``"vm_exit:pgfault"`` → ``("vm_exit", "pgfault")``; ``"trap"`` → ``("trap", None)``."""
    event, sep, cause = key.partition(":")
    return event, (cause if sep else None)


def _check_key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise CostModelError(f"{where}: event names must be strings, not {key!r}")
    event, cause = split_key(key)
    if event not in EVENTS:
        raise CostModelError(f"{where}: unknown event '{event}' (events: {', '.join(EVENTS)})")
    if cause is not None and not _CAUSE.match(cause):
        raise CostModelError(
            f"{where}: bad cause in '{key}' (a cause is lower-case letters, digits, '-', '_', '.', '/')"
        )
    return key


def _freeze_costs(costs: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(costs))


def _freeze_sources(sources: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sources))


@attrs.frozen
class CostModel:
    """Cycles per event, with where each number comes from.

    `costs` has one entry for every event in `EVENTS`, plus optional ``event:cause`` refinements.
    `sources` maps cost keys to a citation or derivation (bundled profiles cite every key).
    """

    name: str
    description: str
    costs: Mapping[str, int] = attrs.field(converter=_freeze_costs)
    sources: Mapping[str, str] = attrs.field(converter=_freeze_sources, factory=dict)

    def __attrs_post_init__(self) -> None:
        where = f"cost profile '{self.name}'"
        for key, value in self.costs.items():
            _check_key(key, where)
            if isinstance(value, bool) or not isinstance(value, int):
                raise CostModelError(f"{where}: cost of '{key}' must be an integer, not {value!r}")
            if value < 0:
                raise CostModelError(f"{where}: cost of '{key}' must not be negative ({value})")
        missing = [event for event in EVENTS if event not in self.costs]
        if missing:
            raise CostModelError(f"{where}: missing cost for {', '.join(missing)}")
        for key, text in self.sources.items():
            if key not in self.costs:
                raise CostModelError(f"{where}: source given for '{key}', which has no cost")
            if not isinstance(text, str):
                raise CostModelError(f"{where}: source of '{key}' must be a string")

    # -- pricing -----------------------------------------------------------------------------

    def cost(self, key: str) -> int:
        """Cycles for one occurrence of `key` (``event`` or ``event:cause``, the latter falling
        back to the plain event's price)."""
        _check_key(key, f"cost profile '{self.name}'")
        if key in self.costs:
            return self.costs[key]
        return self.costs[split_key(key)[0]]

    def breakdown(self, events: Mapping[str, int]) -> dict[str, int]:
        """Cycles per events key. A plain event's entry covers only the occurrences not priced
        under one of its ``event:cause`` refinements; the values add up to `cycles(events)`."""
        counts = _check_counts(events, self.name)
        refined: dict[str, int] = {}
        for key, count in counts.items():
            event, cause = split_key(key)
            if cause is not None:
                refined[event] = refined.get(event, 0) + count
        result: dict[str, int] = {}
        for key, count in counts.items():
            event, cause = split_key(key)
            if cause is None and event in refined:
                if count < refined[event]:
                    raise CostModelError(
                        f"events: '{event}' counts {count:,} but its per-cause counts add up to "
                        f"{refined[event]:,} (an 'event:cause' count is part of the 'event' count)"
                    )
                count -= refined[event]
            result[key] = count * self.cost(key)
        return result

    def cycles(self, events: Mapping[str, int]) -> int:
        """Estimated cycles for a run's event counts (unknown event or negative count: error)."""
        return sum(self.breakdown(events).values())

    # -- files -------------------------------------------------------------------------------

    def to_toml(self) -> str:
        """The profile as a TOML document that `load` reads back to an equal model."""
        lines = [f"name = {_toml_string(self.name)}"]
        if self.description:
            lines.append(f"description = {_toml_string(self.description)}")
        lines += ["", "[costs]"]
        lines += [f"{_toml_key(key)} = {value}" for key, value in _ordered(self.costs)]
        if self.sources:
            lines += ["", "[sources]"]
            lines += [f"{_toml_key(key)} = {_toml_string(text)}" for key, text in _ordered(self.sources)]
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the profile to `path` as TOML (atomically)."""
        write_atomic(path, self.to_toml().encode("utf-8"))


def _check_counts(events: Mapping[str, int], model: str) -> dict[str, int]:
    if not isinstance(events, Mapping):
        raise CostModelError(f"events must be a mapping of event name to count, not {events!r}")
    counts: dict[str, int] = {}
    for key, count in events.items():
        _check_key(key, "events")
        if isinstance(count, bool) or not isinstance(count, int):
            raise CostModelError(f"events: count of '{key}' must be an integer, not {count!r}")
        if count < 0:
            raise CostModelError(f"events: count of '{key}' must not be negative ({count})")
        counts[key] = count
    return counts


def _ordered(mapping: Mapping[str, object]) -> list[tuple[str, object]]:
    def order(item: tuple[str, object]) -> tuple[int, str]:
        event, cause = split_key(item[0])
        return (EVENTS.index(event) if event in EVENTS else len(EVENTS), cause or "")

    return sorted(mapping.items(), key=order)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = []
    for ch in text:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# -- loading -----------------------------------------------------------------------------------


def from_mapping(data: Mapping[str, object], origin: str, default_name: str) -> CostModel:
    """Validate a parsed profile (a TOML document as a dict); errors name `origin`."""
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            raise CostModelError(
                f"{origin}: unknown key '{key}' (known: {', '.join(_TOP_LEVEL_KEYS)})"
            )
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise CostModelError(f"{origin}: 'name' must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise CostModelError(f"{origin}: 'description' must be a string")
    if "costs" not in data:
        raise CostModelError(f"{origin}: missing [costs] table")
    costs = data["costs"]
    if not isinstance(costs, Mapping):
        raise CostModelError(f"{origin}: 'costs' must be a table of event = cycles")
    sources = data.get("sources", {})
    if not isinstance(sources, Mapping):
        raise CostModelError(f"{origin}: 'sources' must be a table of event = \"text\"")
    for key, value in costs.items():
        _check_key(key, f"{origin}: [costs]")
        if isinstance(value, bool) or not isinstance(value, int):
            raise CostModelError(
                f"{origin}: [costs] '{key}' must be a whole number of cycles, not {value!r}"
            )
        if value < 0:
            raise CostModelError(f"{origin}: [costs] '{key}' must not be negative ({value})")
    missing = [event for event in EVENTS if event not in costs]
    if missing:
        raise CostModelError(f"{origin}: [costs] is missing {', '.join(missing)}")
    for key, text in sources.items():
        _check_key(key, f"{origin}: [sources]")
        if key not in costs:
            raise CostModelError(f"{origin}: [sources] '{key}' has no entry in [costs]")
        if not isinstance(text, str):
            raise CostModelError(f"{origin}: [sources] '{key}' must be a string")
    return CostModel(name=name, description=description, costs=costs, sources=sources)


def parse(text: str, origin: str = "<string>", default_name: str = "custom") -> CostModel:
    """A profile from TOML text; `origin` names it in error messages."""
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise CostModelError(f"{origin}: invalid TOML: {exc}") from None
    return from_mapping(data, origin, default_name)


def load(path: str | Path) -> CostModel:
    """A user's profile file (TOML; format in docs/cost-model.md)."""
    path = Path(path)
    try:
        raw = read_bounded(path, MAX_PROFILE_SIZE)
    except OSError as exc:
        raise CostModelError(f"{path}: cannot read cost profile: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CostModelError(f"{path}: cannot read cost profile: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CostModelError(f"{path}: cost profile is not UTF-8 text") from None
    return parse(text, origin=str(path), default_name=path.stem)


def _profiles_dir():
    return resources.files("toyvisor.vmm").joinpath("profiles")


def available() -> tuple[str, ...]:
    """Names of the bundled profiles."""
    return tuple(sorted(
        entry.name[: -len(".toml")]
        for entry in _profiles_dir().iterdir()
        if entry.name.endswith(".toml")
    ))


@functools.cache
def named(name: str) -> CostModel:
    """A bundled profile by name (see `available()`)."""
    if name not in available():
        raise CostModelError(
            f"unknown cost profile '{name}' (available: {', '.join(available())})"
        )
    entry = _profiles_dir().joinpath(f"{name}.toml")
    return parse(entry.read_text(encoding="utf-8"), origin=f"profiles/{name}.toml", default_name=name)


def default_model() -> CostModel:
    """The default profile, `DEFAULT_PROFILE`."""
    return named(DEFAULT_PROFILE)


def resolve(spec: str | Path | None) -> CostModel:
    """A profile given as a bundled name or a path to a TOML file (None: the default)."""
    if spec is None:
        return default_model()
    text = str(spec)
    if text in available():
        return named(text)
    if text.endswith(".toml") or "/" in text or Path(text).exists():
        return load(text)
    return named(text)  # raises with the list of available names
