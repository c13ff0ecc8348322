"""toyvisor.vmm: virtual machine monitors (docs/vmm-design.md).

    >>> from toyvisor.tools.guest import load_guest
    >>> from toyvisor.vmm import run_guest
    >>> result = run_guest(load_guest("minikernel"), "trap-emulate", ring_model="0/3/3")
    >>> result.equivalent, result.vmm_entries, result.by_cause["vmm:privileged"]
"""

from __future__ import annotations

from .hypervisor import Hypervisor
from .result import VMRunResult
from .strategies import STRATEGIES, Strategy, StrategyError, make_strategy, register
from .vm import VM, VMError, VMSnapshot


def run_guest(guest, strategy: str = "native", *, ring_model: str | None = None,
              placement: str = "system", max_steps: int | None = None,
              check_equivalence: bool = True, trace=None,
              pcpus: int | None = None) -> VMRunResult:
    """Run `guest` under `strategy` (``"trap-emulate"``, ``"trap-emulate:0/3/3"``, ...).

    Unless `check_equivalence` is False the guest also runs natively with the same budget, and
    the result carries ``equivalent``, ``divergence`` (first divergent instruction and why) and
    ``slowdown``.  `ring_model` is the variant of ``trap-emulate`` when the spec names none.
    `trace` receives every trace event of the VM's run (guest instructions and traps on the
    real CPU, `toyvisor.vmm.hypervisor.VMMEntryEvent` for each VMM entry); the native run of
    the equivalence check is not traced.

    A guest of several CPUs (``guest.cpus``) runs as a VM of as many vCPUs on `pcpus` physical
    CPUs (default: as many); its equivalence is judged on the guest-visible outcome against the
    bare multiprocessor, less the output its manifest declares racy (``smp_outcome``).
    """
    from .equivalence import check, check_outcome, check_smp_outcome
    from .hypervisor import check_pcpus

    chosen = make_strategy(strategy, ring_model)
    cpus = getattr(guest, "cpus", 1)
    if pcpus is not None:
        check_pcpus(pcpus)
    smp = cpus > 1 or (pcpus or 1) > 1
    if smp and chosen.smp_unsupported:
        raise StrategyError(f"{chosen.name}: not applicable to {cpus} vCPUs on {pcpus or cpus} "
                            f"physical CPUs: {chosen.smp_unsupported}")
    if chosen.runs_port and getattr(guest, "pv_image", None) is None:
        raise StrategyError(f"{chosen.name}: guest '{guest.name}' has no paravirtual port "
                            "(add pv_source to its guest.toml)")
    extra = {"pcpus": pcpus or cpus} if smp else {}
    result = chosen.run(guest, placement=placement, max_steps=max_steps, trace=trace, **extra)
    if check_equivalence and chosen.name != "native" and cpus > 1:
        result = check_smp_outcome(guest, chosen, result, placement=placement,
                                   max_steps=max_steps)
    elif check_equivalence and chosen.runs_port:
        result = check_outcome(guest, result, strategy=chosen, placement=placement,
                               max_steps=max_steps)
    elif check_equivalence and chosen.name != "native":
        result = check(guest, chosen, result, placement=placement, max_steps=max_steps)
    return result


__all__ = ["Hypervisor", "STRATEGIES", "Strategy", "StrategyError", "VM", "VMError",
           "VMRunResult", "VMSnapshot", "make_strategy", "register", "run_guest"]
