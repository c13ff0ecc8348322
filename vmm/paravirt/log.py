"""The hypervisor's log of a domain's refused hypercalls (what Xen's ``xl dmesg`` shows).

A refused hypercall returns a negative error code to the guest and changes nothing; the reason
the VMM had (``frame 0x… is not the domain's``) would be lost with it.  `dispatch` records every
refusal here instead, so the run output, ``--json`` and the ``domains`` table can say why.
"""

from __future__ import annotations

import attrs

from .abi import ERRORS

#: entries a domain keeps (like Xen's console ring, the log is bounded: the oldest go first)
LOG_CAPACITY = 256


def errno_name(code: int) -> str:
    """``-22`` → ``"-22 EINVAL"``: an error code as a number and its errno name."""
    name = ERRORS.get(code)
    return f"{code} {name}" if name else str(code)


@attrs.frozen
class Refusal:
    """One refused hypercall: when (machine ticks), who, which call, the error and why."""

    clock: int
    domid: int
    #: the hypercall's name, with its sub-command (``domctl pause``)
    hypercall: str
    code: int
    reason: str

    def line(self) -> str:
        """One ``xl dmesg``-style line: ``(XEN) [t=123] d1 mmu_update: -1 EPERM: frame …``."""
        return (f"(XEN) [t={self.clock}] d{self.domid} {self.hypercall}: "
                f"{errno_name(self.code)}: {self.reason}")

    def to_dict(self) -> dict:
        return {"clock": self.clock, "domid": self.domid, "hypercall": self.hypercall,
                "code": self.code, "error": ERRORS.get(self.code), "reason": self.reason}


class RefusalLog:
    """A domain's refusals, oldest first, the last `LOG_CAPACITY` kept (`dropped` counts the
    rest); `total` is every refusal ever recorded."""

    def __init__(self) -> None:
        self.entries: list[Refusal] = []
        self.dropped = 0

    @property
    def total(self) -> int:
        return len(self.entries) + self.dropped

    def record(self, refusal: Refusal) -> None:
        self.entries.append(refusal)
        if len(self.entries) > LOG_CAPACITY:
            del self.entries[0]
            self.dropped += 1

    def lines(self) -> list[str]:
        head = [f"(XEN) ({self.dropped} older refusals dropped)"] if self.dropped else []
        return head + [r.line() for r in self.entries]


__all__ = ["LOG_CAPACITY", "Refusal", "RefusalLog", "errno_name"]
