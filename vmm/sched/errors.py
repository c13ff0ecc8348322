"""The scheduling lab's one error type."""

from toyvisor.isa.errors import ToyvisorError


class SchedError(ToyvisorError):
    """Bad scheduling input (a workload file, a policy name or file, an option) or a workload
    that cannot be run as asked (a gang that can never fit, a run that never finishes)."""


__all__ = ["SchedError"]
