"""When pre-copy stops iterating: Xen's classic rules and QEMU's, one class each.

A rule looks at the round just finished and answers None (go on) or the reason to stop (which
appears in the log, the JSON and the tables).

- **Xen** (``xc_domain_save.c``, the classic pre-copy loop; Clark et al., NSDI 2005): stop after
  `max_rounds` (30) rounds, or when fewer than `min_dirty` (50) pages were dirtied in the round,
  or when more than `max_factor` (3) times the VM's memory has been sent.
- **QEMU** (``migration/migration.c``, ``migration/options.c``): switch over as soon as what is
  left to send fits in the downtime limit at the bandwidth measured over the last round
  (pending ≤ bandwidth × downtime limit).  QEMU itself never gives up; to keep a run that does
  not converge finite, `max_rounds` (30) caps it here, and hitting the cap is reported as such.
"""

from __future__ import annotations

import attrs

from .link import MigrationError

RULES = ("xen", "qemu")


@attrs.frozen
class RoundEnd:
    """What a stop rule sees at the end of a round."""

    round: int                  # 1-based number of the round just finished
    dirtied_pages: int          # pages dirtied while it ran (what the next round would send)
    pending_bytes: int          # those pages' size on the wire, estimated (raw)
    total_sent_pages: int       # pages sent so far, in all rounds
    memory_pages: int           # the VM's memory
    bandwidth: float            # bytes per tick measured over the round


@attrs.frozen
class XenRule:
    """Xen's classic three rules."""

    max_rounds: int = 30
    min_dirty: int = 50
    max_factor: int = 3
    name = "xen"

    def decide(self, end: RoundEnd) -> str | None:
        if end.dirtied_pages < self.min_dirty:
            return f"fewer than {self.min_dirty} pages dirtied"
        if end.total_sent_pages > self.max_factor * end.memory_pages:
            return f"more than {self.max_factor}x memory sent"
        if end.round >= self.max_rounds:
            return f"{self.max_rounds} rounds"
        return None


@attrs.frozen
class QemuRule:
    """QEMU's switch-over rule: the rest fits in the downtime limit (ticks)."""

    downtime_limit: int = 1000
    max_rounds: int = 30
    name = "qemu"

    def decide(self, end: RoundEnd) -> str | None:
        if end.pending_bytes <= end.bandwidth * self.downtime_limit:
            return "fits the downtime limit"
        if end.round >= self.max_rounds:
            return f"{self.max_rounds} rounds (cap; QEMU would go on)"
        return None


def make_rule(name: str, *, downtime_limit: int = 1000):
    if name == "xen":
        return XenRule()
    if name == "qemu":
        if downtime_limit <= 0:
            raise MigrationError(f"the downtime limit must be positive (got {downtime_limit})")
        return QemuRule(downtime_limit=downtime_limit)
    raise MigrationError(f"unknown stop rule '{name}' (known: {', '.join(RULES)})")


__all__ = ["QemuRule", "RULES", "RoundEnd", "XenRule", "make_rule"]
