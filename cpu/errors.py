"""Errors of the machine package (distinct from architectural faults, see toyvisor.isa.faults)."""

from __future__ import annotations

from toyvisor.isa.errors import ToyvisorError


class MachineError(ToyvisorError):
    """The machine cannot do what was asked: a bad memory size, an image that does not fit in RAM,
    a disk image of the wrong shape, and so on."""
