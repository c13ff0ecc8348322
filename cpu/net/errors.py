"""Errors of the interconnect: a topology that does not fit, an unknown node, a bad parameter."""

from __future__ import annotations

from toyvisor.isa.errors import ToyvisorError


class NetworkError(ToyvisorError):
    """A topology, route, parameter or message the network cannot accept."""
