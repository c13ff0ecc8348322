"""The scheduling lab's one error type."""

from toyvisor.isa.errors import ToyvisorError


class SchedError(ToyvisorError):
    """Bad scheduling input (a workload file, a policy name or file, an option) or a workload
    that cannot be run as asked (a gang that can never fit, a run that never finishes)."""


class Unschedulable(SchedError):
    """A policy can never run a workload (a VM larger than the machine under space sharing)."""


__all__ = ["SchedError", "Unschedulable"]
