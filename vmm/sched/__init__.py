"""Scheduling the multiprocessor: the hypervisor on P physical CPUs running the vCPUs of SMP VMs
under one of the seed's policies (docs/scheduling.md).

    >>> from toyvisor.vmm.sched import load_workload, simulate
    >>> runs = simulate(load_workload("guests/sched/tanenbaum.toml"), ["gang"], pcpus=6)
    >>> runs[0].matrix[0]
    ('A0', 'A1', 'A2', 'A3', 'A4', 'A5')
"""

from .errors import SchedError, Unschedulable
from .policy import Policy, QueueLock, SchedParams, load_policy, policy_names
from .result import PolicyRun
from .simulate import simulate
from .workload import Workload, load_workload

__all__ = ["Policy", "PolicyRun", "QueueLock", "SchedError", "SchedParams", "Workload",
           "load_policy", "load_workload", "policy_names", "simulate", "Unschedulable"]
