"""`PhysicalCPU`: one real CPU of the hypervisor's machine and the VMM's bookkeeping of it.

The hypervisor (`toyvisor.vmm.hypervisor`) runs the host's P physical CPUs in a deterministic
round-robin of turns (as `toyvisor.cpu.Machine` interleaves its CPUs), so two vCPUs of one VM on
two physical CPUs really race.  Each physical CPU has a run queue: the vCPUs `place` put on it,
which it time-slices with the hypervisor's quantum.  What it remembers between its turns is here:
the vCPU loaded on it and the marks from which the next VMM entry computes the guest's progress.
"""

from __future__ import annotations


class PhysicalCPU:
    """One real CPU: its `toyvisor.cpu.cpu.CPU`, the vCPU loaded on it, its VMM bookkeeping."""

    def __init__(self, cpu, index: int) -> None:
        self.cpu = cpu
        self.index = index
        #: (VM, vCPU) loaded on this CPU, or None (the CPU idles or runs no guest)
        self.loaded = None
        #: the hypervisor's per-CPU marks, saved while another physical CPU has its turn
        self.slice_end = 0
        self.last_retired = 0
        self.last_clock = 0
        self.retiring = 0
        self.in_vmm = True
        #: the loaded vCPU's pending virtual interrupts when it was last kicked
        self.kicked = 0
        #: the (VM, vCPU) it ran last, and what was left of its quantum when its VM's budget
        #: ended the run (the next run resumes it first, with that much)
        self.last = None
        self.slice_left = 0

    def __repr__(self) -> str:
        loaded = "idle" if self.loaded is None else f"{self.loaded[0].name}/{self.loaded[1].index}"
        return f"<pCPU {self.index} {loaded}>"


def place(vms, pcpus: int) -> None:
    """Static placement of vCPUs on physical CPUs: the vCPUs of all VMs, in creation order, dealt
    round-robin (vCPU k of the host goes to CPU k mod P), so with V <= P each vCPU of a single VM
    has a physical CPU of its own and with V > P the CPUs are shared evenly."""
    k = 0
    for vm in vms:
        for vcpu in vm.vcpus:
            vcpu.pcpu = k % pcpus
            k += 1


__all__ = ["PhysicalCPU", "place"]
