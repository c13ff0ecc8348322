"""Constants of the paravirtual ABI (docs/paravirtual-abi.md): the numbers both sides share."""

from __future__ import annotations

#: the VMM hole: the top 64 MiB of every address space, mapped PL 0 in every page directory
PV_VMM_START = 0xFC000000
#: first page-directory index of the hole (0xFC000000 >> 22)
HOLE_PDE = PV_VMM_START >> 22
#: the real interrupt table of the running domain lives at the start of the hole
PV_IDT_VA = PV_VMM_START
#: hypercall entry: ``int 0x82`` from ring 1
HYPERCALL_VECTOR = 0x82
GUEST_KERNEL_RING = 1

# error codes (Xen's errno values, negated)
EPERM, ENOENT, ESRCH, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EINVAL, ENOSPC, ENOSYS = (
    -1, -2, -3, -11, -12, -13, -14, -16, -17, -22, -28, -38)
ERRORS = {EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EAGAIN: "EAGAIN",
          ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY",
          EEXIST: "EEXIST", EINVAL: "EINVAL", ENOSPC: "ENOSPC", ENOSYS: "ENOSYS"}

# start_info page (byte offsets)
START_INFO_MAGIC = 0x50565354  # "PVST"
SI_MAGIC, SI_DOMID, SI_FLAGS, SI_NR_PAGES, SI_SHARED_INFO, SI_PT_BASE, SI_P2M, SI_FIRST_FREE = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C)
SI_CONSOLE_PORT, SI_CONSOLE_GREF, SI_BLOCK_PORT, SI_BLOCK_GREF, SI_VMM_START = (
    0x20, 0x24, 0x28, 0x2C, 0x30)
SIF_PRIVILEGED = 1

# shared_info page (byte offsets)
SH_UPCALL_PENDING, SH_UPCALL_MASK, SH_EVTCHN_PENDING, SH_EVTCHN_MASK = 0x00, 0x04, 0x08, 0x10
SH_CR2, SH_SYSTEM_TIME, SH_VIRTUAL_TIME = 0x18, 0x1C, 0x20

#: p2m entry of a pseudo-physical page with no machine frame behind it (ballooned out)
INVALID_MFN = 0xFFFFFFFF

NR_PORTS = 64          # ports 1..63 (port 0 is never allocated: "none" in start_info)
NR_GRANTS = 64         # grant references 1..63 (0 is "none")
NR_VIRQS = 3
VIRQ_TIMER, VIRQ_CONSOLE, VIRQ_DOM_EXC = 0, 1, 2
MAX_BATCH = 512        # the largest count a batched hypercall accepts
MAX_CONSOLE_WRITE = 4096
DOMID_SELF = 0x7FF0

# trap-table entry flags
TT_DPL_MASK = 3
TT_FAST = 1 << 2

# sched_op shutdown reasons (Xen's numbers)
SHUTDOWN_REASONS = {0: "poweroff", 1: "reboot", 2: "suspend", 3: "crash"}


class HypercallError(Exception):
    """A guest-visible refusal: the hypercall returns `code` (one of the error codes above) and
    changes nothing more."""

    def __init__(self, code: int, why: str = "") -> None:
        super().__init__(f"{ERRORS.get(code, code)}: {why}" if why else ERRORS.get(code, code))
        self.code = code
        self.why = why

# -- SMP domains (docs/paravirtual-abi.md, "Several vCPUs") ------------------------------------------
#: start_info: the number of vCPUs the domain was built with (vCPU 0 runs at start of day)
SI_NR_VCPUS = 0x3C
#: domU start_info: the domU's port of the toolstack's control channel (0: none; docs/paravirtual-abi.md,
#: "Migration"); dom0's back-end table follows (vmm/paravirt/setup.py)
SI_CONTROL_PORT = 0x40
#: the most vCPUs a domain may have (a vCPU mask is one 32-bit register; Xen's legacy
#: shared_info holds 32 vcpu_info slots on x86-32)
MAX_VCPUS = 16
#: vCPU 0's vcpu_info is at the start of shared_info (upcall_pending 0x00, upcall_mask 0x04, its
#: cr2 at SH_CR2 and virtual time at SH_VIRTUAL_TIME, the single-vCPU layout); vCPU n ≥ 1 has
#: {upcall_pending, upcall_mask, cr2, virtual time} at SH_VCPU_INFO + VCPU_INFO_SIZE * n
SH_VCPU_INFO, VCPU_INFO_SIZE = 0x40, 16
VI_UPCALL_PENDING, VI_UPCALL_MASK, VI_CR2, VI_VIRTUAL_TIME = 0x0, 0x4, 0x8, 0xC
#: the initial context of VCPUOP_initialise (Xen's vcpu_guest_context, cut to what a toyvisor
#: vCPU has): words {pc, sp, kernel_sp, page-directory mfn, r1, flags}
CTX_PC, CTX_SP, CTX_KERNEL_SP, CTX_PD_MFN, CTX_R1, CTX_FLAGS = 0x0, 0x4, 0x8, 0xC, 0x10, 0x14
CTX_WORDS = 6
