"""QEMU-style auto-converge: throttle the vCPU when pre-copy rounds do not shrink.

QEMU (``migration/ram.c``, ``migration_trigger_throttle``; defaults in ``migration/options.c``):
at each dirty-bitmap sync, if the bytes dirtied in the period exceed `trigger` (50 %) of the
bytes transferred in it for the second time, the vCPU is throttled — first to `initial` (20 %)
of its time taken away, then `increment` (10 %) more each time, at most `maximum` (99 %).  Here a
throttled vCPU runs ``(1 - throttle)`` of the ticks of each round: the guest sees nothing (its
clock is its own instructions), the rounds shrink because it dirties less per tick.
"""

from __future__ import annotations

import attrs


@attrs.define
class AutoConverge:
    """The throttle state of one migration (`throttle` is a fraction of the vCPU's time)."""

    trigger: float = 0.5
    initial: float = 0.2
    increment: float = 0.1
    maximum: float = 0.99
    throttle: float = 0.0
    high: int = 0

    def after_round(self, dirtied_bytes: int, sent_bytes: int) -> float:
        """Update the throttle at the end of a round; returns the new throttle."""
        if sent_bytes and dirtied_bytes > self.trigger * sent_bytes:
            self.high += 1
            if self.high >= 2:
                self.high = 0
                self.throttle = self.initial if self.throttle == 0 else round(\
                    min(self.maximum, self.throttle + self.increment), 6)
        return self.throttle

    def steps(self, ticks: int) -> int:
        """Guest steps the vCPU gets in `ticks` ticks."""
        return ticks - int(ticks * self.throttle)


__all__ = ["AutoConverge"]
