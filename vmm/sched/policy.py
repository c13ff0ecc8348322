"""The one interface every scheduling policy implements, and how a policy is found by name or path.

A policy decides, at each scheduling point, which vCPU (or nothing) runs on each physical CPU.
The hypervisor (`toyvisor.vmm.sched.host`) tells it what happens to the vCPUs and asks it to fill
free CPUs; it never runs guest code itself.  A policy is one file: the bundled ones are
``vmm/sched/policies/<name>.py``, each defining ``POLICY``; a user's file given by path works the
same way (``toyvisor sched WORKLOAD --policy ./mine.py``).

Scheduling points, for every policy:

- a CPU becomes free (its vCPU blocked in ``hlt``, halted, or was preempted): `pick` for it;
- a vCPU becomes ready (started by a start IPI, woken by an interrupt, preempted): `ready`, then
  `pick` for the free CPUs;
- a running vCPU's quantum ends: `extend` (True: it keeps the CPU for another quantum), else it
  is preempted;
- a synchronous policy (gang) instead has every CPU rescheduled at once at each slot boundary:
  the running vCPUs are all preempted, `new_slot`, then `pick` for every CPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections import deque
from pathlib import Path
from typing import ClassVar

import attrs

from .errors import SchedError


@attrs.frozen
class SchedParams:
    """What every policy is built with."""

    pcpus: int
    #: ticks a vCPU runs before a non-synchronous policy reconsiders it
    quantum: int
    #: ticks of one slot of a synchronous policy (and the rows of every printed matrix)
    slot: int
    #: cycles one run-queue operation holds its lock (the price of contention)
    lock_cost: int = 40
    #: pause-loop exiting's gap and window in cycles, for the policies that use it (KVM's
    #: defaults: ple_gap 128, ple_window 4096)
    ple_gap: int = 128
    ple_window: int = 4096


class QueueLock:
    """The lock of one run queue: each operation holds it `cost` cycles, and operations that
    several CPUs make at the same scheduling instant wait for each other in CPU order (the
    seed's first problem of timesharing: "le dispute per l'accesso alla struttura dati").  One
    CPU's several operations at one instant are one critical section (no contention with
    itself); `who` None is the hypervisor's wake-up path (an interrupt), a taker of its own."""

    def __init__(self, cost: int) -> None:
        self.cost = cost
        self.acquisitions = 0
        #: operations that found the lock held by another CPU
        self.contended = 0
        #: cycles spent waiting for it
        self.wait_cycles = 0
        self._instant = -1
        self._holders: list = []

    def take(self, now: int, who=None) -> None:
        if now != self._instant:
            self._instant, self._holders = now, []
        self.acquisitions += 1
        if who in self._holders:
            return
        if self._holders:
            self.contended += 1
            self.wait_cycles += len(self._holders) * self.cost
        self._holders.append(who)


class MultilevelQueue:
    """The seed's "vettore di liste di thread" at different priorities: level 0 runs first; FIFO
    inside a level."""

    LEVELS = 4

    def __init__(self) -> None:
        self.levels = [deque() for _ in range(self.LEVELS)]

    def push(self, vcpu, level: int) -> None:
        self.levels[max(0, min(self.LEVELS - 1, level))].append(vcpu)

    def pop(self, prefer=None, window: int = 0):
        """The first vCPU of the highest non-empty level; with `prefer`, the first of that
        level's first `window` vCPUs for which ``prefer(vcpu)`` holds, if one does (the window
        bounds how far a preference may pass others, so no vCPU starves)."""
        if prefer is not None:
            for level in self.levels:
                if level:
                    for position, vcpu in enumerate(level):
                        if position >= window:
                            break
                        if prefer(vcpu):
                            level.remove(vcpu)
                            return vcpu
                    break
        for level in self.levels:
            if level:
                return level.popleft()
        return None

    def steal(self):
        """The last vCPU of the lowest non-empty level (what an idle CPU takes from another)."""
        for level in reversed(self.levels):
            if level:
                return level.pop()
        return None

    def remove(self, vcpu) -> None:
        for level in self.levels:
            if vcpu in level:
                level.remove(vcpu)

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels)


class Policy:
    """Base of every policy: the hooks the hypervisor calls, each a no-op here.

    The vCPUs a policy sees have ``vm`` (its group: ``name``, ``vcpus``, ``members``,
    ``priority``), ``index``, ``name`` ("A0"), ``state`` ("new", "ready", "running", "blocked",
    "done"), ``last_pcpu`` (None before it first ran) and ``holds_lock()`` (the guest's flag).
    """

    #: the name `--policy` selects it by
    name: ClassVar[str] = ""
    #: one line for listings and docs
    summary: ClassVar[str] = ""
    #: every CPU is rescheduled at once at each slot boundary (gang scheduling)
    synchronous: ClassVar[bool] = False
    #: pause-loop exiting, (gap, window) in cycles, or None: a vCPU whose `pause`s come at most
    #: `gap` cycles apart for longer than `window` cycles exits and yields its CPU (a policy
    #: that uses it sets it from `SchedParams.ple_gap` and `ple_window`)
    pause_loop_exiting: tuple[int, int] | None = None

    def __init__(self, params: SchedParams) -> None:
        self.params = params

    def check(self, vms) -> None:
        """Raise `SchedError` if this policy can never run the workload's VMs."""

    def arrive(self, vm, now: int) -> None:
        """A VM (a group of related vCPUs) arrives; its vCPUs are "new" until started."""

    def ready(self, vcpu, now: int, preempted: bool = False, cpu: int | None = None) -> None:
        """`vcpu` became runnable (preempted: its quantum or slot ended, or it yielded, on
        physical CPU `cpu`; None: started or woken by an interrupt)."""

    def blocked(self, vcpu, now: int) -> None:
        """`vcpu` blocked (halted with interrupts enabled, waiting for one)."""

    def finished(self, vcpu, now: int) -> None:
        """`vcpu` halted for good."""

    def extend(self, vcpu, now: int) -> bool:
        """`vcpu`'s quantum ended: True lets it keep its CPU for another quantum."""
        return False

    def new_slot(self, now: int) -> None:
        """A synchronous policy's slot begins (every CPU is free)."""

    def pick(self, cpus: list[int], now: int) -> dict[int, object]:
        """Choose a ready vCPU for each CPU in `cpus` (free CPUs, in CPU order); a CPU left out
        stays idle until the next scheduling point."""
        raise NotImplementedError

    def locks(self) -> list[QueueLock]:
        """The run-queue locks, for the contention figures."""
        return []


# ----------------------------------------------------------------------------------------------
# finding policies

_PACKAGE = "toyvisor.vmm.sched.policies"
#: the module name prefix of policies loaded from a user's file
USER_POLICY_PREFIX = "toyvisor_user_policy_"


def policy_names() -> list[str]:
    """The bundled policies' names, in the order of the comparison tables."""
    package = importlib.import_module(_PACKAGE)
    found = []
    for module in pkgutil.iter_modules(package.__path__):
        policy = _policy_of(importlib.import_module(f"{_PACKAGE}.{module.name}"), module.name)
        found.append(policy)
    return [p.name for p in sorted(found, key=lambda p: getattr(p, "order", 99))]


def load_policy(spec: str) -> type[Policy]:
    """The policy class named `spec` (a bundled name like "gang") or defined by the Python file
    at path `spec` (it defines ``POLICY``, a `Policy` subclass)."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise SchedError(f"{spec}: no such policy file")
        module_spec = importlib.util.spec_from_file_location(f"{USER_POLICY_PREFIX}{path.stem}",
                                                             path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # so its classes know their file
        try:
            module_spec.loader.exec_module(module)
        except SchedError:
            raise
        except Exception as exc:  # a user's file: any error in it is bad input
            line = ""
            tb = exc.__traceback__
            while tb is not None:
                if tb.tb_frame.f_code.co_filename == str(path):
                    line = f":{tb.tb_lineno}"
                tb = tb.tb_next
            raise SchedError(f"{spec}{line}: {type(exc).__name__}: {exc}") from None
        return _policy_of(module, spec)
    names = policy_names()
    if spec not in names:
        raise SchedError(f"unknown policy {spec!r} (known: {', '.join(names)}; or a path to a "
                         f"policy file)")
    module = importlib.import_module(f"{_PACKAGE}.{spec.replace('-', '_')}")
    return _policy_of(module, spec)


def _policy_of(module, where: str) -> type[Policy]:
    policy = getattr(module, "POLICY", None)
    if not (isinstance(policy, type) and issubclass(policy, Policy)) or not policy.name:
        raise SchedError(f"{where}: a policy file must define POLICY, a Policy subclass with a "
                         f"name")
    return policy


__all__ = ["MultilevelQueue", "Policy", "QueueLock", "SchedParams", "USER_POLICY_PREFIX",
           "load_policy",
           "policy_names"]
