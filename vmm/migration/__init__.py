"""Live migration: moving a running VM between two hypervisors joined by a link.

`migrate` runs one migration (`Session`) and returns a `MigrationResult`; `compare` runs several
methods on the same workload.  Mechanism per strategy in `dirty`, methods in `methods/` (one file
each), stop rules in `stop_rules`, auto-converge in `throttle`, compression in `compress`, the
link in `link`.  docs/migration.md is the user's guide.
"""

from __future__ import annotations

from .link import Link, LinkFailure, MigrationError, parse_size
from .methods import METHODS, make_method
from .result import PHASES, MigrationResult, Phase, Round
from .pv_session import PVSession
from .session import Session
from ..strategies import make_strategy

#: strategies whose VMs run in a hypervisor over memory it virtualizes (and so can log dirty)
MIGRATABLE = ("trap-emulate", "binary-translation", "hardware-assisted", "paravirtual")


def check_strategy(spec: str) -> str:
    """`spec` if VMs under it can migrate, else a `MigrationError` that says why."""
    name = make_strategy(spec).name
    if name not in MIGRATABLE:
        raise MigrationError(f"{spec} keeps no dirty log of guest memory: migration needs a "
                             f"strategy that virtualizes memory ({', '.join(MIGRATABLE)})")
    return spec


def _session(guest, strategy: str, method: str, *, link: Link | None = None, at: int = 0,
             compression: frozenset[str] = frozenset(), downtime_limit: int = 1000,
             dest_memory: int | None = None, reference: tuple | None = None,
             **paravirtual) -> Session:
    if downtime_limit <= 0:
        raise MigrationError(f"the downtime limit must be positive (got {downtime_limit})")
    check_strategy(strategy)
    method = make_method(method, downtime_limit=downtime_limit)
    common = dict(link=link, at=at, compression=compression, dest_memory=dest_memory,
                  reference=reference)
    if make_strategy(strategy).name == "paravirtual":
        return PVSession(guest, strategy, method, **paravirtual, **common)
    if paravirtual:
        raise MigrationError(f"{', '.join(sorted(paravirtual))}: for a paravirtual domain only")
    return Session(guest, strategy, method, **common)


def migrate(guest, strategy: str, method: str, **options) -> MigrationResult:
    """Migrate `guest` (booted under `strategy`, run for `at` steps) by `method`; options:
    `link`, `at`, `compression`, `downtime_limit`, `dest_memory`, `reference` (the unmigrated
    run's `unmigrated` result, to share between migrations); for a paravirtual domain also
    `dom0` (the hosts' dom0 guest, required), `domid` (default 1) and `caller` (the domain the
    daemon runs in, default 0: dom0)."""
    return _session(guest, strategy, method, **options).run()


def compare(guest, strategy: str, methods, **options) -> list[MigrationResult]:
    """Migrate the same workload by each of `methods`: every session is set up (and its input
    checked) before anything runs, and they share one unmigrated run."""
    sessions = [_session(guest, strategy, spec, **options) for spec in methods]
    reference = options.get("reference") or sessions[0].reference()
    for session in sessions:
        session.reference_run = reference
    return [session.run() for session in sessions]


__all__ = ["Link", "LinkFailure", "METHODS", "MigrationError", "MigrationResult", "PHASES",
           "PVSession", "Phase", "Round", "Session", "compare", "make_method", "migrate", "parse_size"]
