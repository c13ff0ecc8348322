"""The hypercall table: one declarative row per hypercall (and per sub-command), like Xen's
``hypercall-defs.c``.  Everything else is derived from it:

- `dispatch` validates every argument by its declared *kind*, checks who may call, and calls the
  row's handler (`toyvisor.vmm.paravirt.ops`) — there is no hand-written switch;
- `reference_markdown` emits the reference table of docs/paravirtualization.md (a test fails
  when the document is stale: regenerate with ``python -m toyvisor.vmm.paravirt.hypercalls``);
- the tests (and the fuzzer) enumerate `HYPERCALLS` and the argument kinds.

Calling convention (docs/paravirtual-abi.md): ``int 0x82`` from ring 1, ``r1`` = number,
``r2``–``r6`` = arguments (for a hypercall with sub-commands ``r2`` = the command and the
command's arguments follow), result in ``r1``: ≥ 0 success, < 0 an error code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from toyvisor.isa.spec import M32

from . import logdirty, ops, vcpus
from .abi import (
    DOMID_SELF,
    EFAULT,
    EINVAL,
    ENOENT,
    ENOSYS,
    EPERM,
    ERRORS,
    ESRCH,
    MAX_BATCH,
    MAX_VCPUS,
    NR_GRANTS,
    NR_PORTS,
    NR_VIRQS,
    PV_VMM_START,
    HypercallError,
)

if TYPE_CHECKING:
    from .domain import Domain

ANY, DOM0 = "any domain", "dom0 only"


def _va(domain, value):
    if value >= PV_VMM_START:
        raise HypercallError(EFAULT, f"{value:#010x} is in the VMM hole")
    return value


def _range(limit: int, low: int = 0, what: str = "value"):
    def check(domain, value):
        if not low <= value < limit:
            raise HypercallError(EINVAL, f"{what} {value} not in [{low}, {limit})")
        return value
    return check


def _pfn(domain, value):
    if value >= len(domain.p2m):
        raise HypercallError(EINVAL, f"pfn {value} beyond the domain's {len(domain.p2m)} pages")
    return value


def _mfn(domain, value):
    if value << 12 not in domain.system.frames.all_frames:
        raise HypercallError(EINVAL, f"{value:#x} is not a machine frame number of a domain")
    return value << 12


def _domid(domain, value):
    if value == DOMID_SELF:
        return domain
    target = domain.system.domains.get(value)
    if target is None:
        raise HypercallError(ESRCH, f"no domain {value}")
    return target


def _vcpu(domain, value):
    if value >= len(domain.vcpus):
        raise HypercallError(ENOENT, f"no vCPU {value} (the domain has {len(domain.vcpus)})")
    return domain.vcpus[value]


def _vcpumask(domain, value):
    if value >> len(domain.vcpus):
        raise HypercallError(EINVAL, f"vCPU mask {value:#x} names vCPUs beyond the domain's "
                             f"{len(domain.vcpus)}")
    return value


@attrs.frozen
class Kind:
    """An argument kind: how a raw 32-bit register value is checked and converted."""

    name: str
    meaning: str
    convert: Callable = attrs.field(repr=False)


KINDS = {k.name: k for k in (
    Kind("int", "any 32-bit value", lambda d, v: v),
    Kind("va", "a guest virtual address below PV_VMM_START (else EFAULT)", _va),
    Kind("count", f"a batch length 0…{MAX_BATCH} (else EINVAL)", _range(MAX_BATCH + 1, 0, "count")),
    Kind("pfn", "a pseudo-physical page number < nr_pages (else EINVAL)", _pfn),
    Kind("mfn", "a machine frame number (machine address >> 12) of the VMM's managed memory "
         "(else EINVAL)", _mfn),
    Kind("domid", f"an existing domain id, or DOMID_SELF = {DOMID_SELF:#x} (else ESRCH)", _domid),
    Kind("port", f"an event-channel port 1…{NR_PORTS - 1} (else EINVAL)",
         _range(NR_PORTS, 1, "port")),
    Kind("gref", f"a grant reference 1…{NR_GRANTS - 1} (else EINVAL)",
         _range(NR_GRANTS, 1, "grant reference")),
    Kind("virq", f"a VIRQ number 0…{NR_VIRQS - 1} (else EINVAL)", _range(NR_VIRQS, 0, "virq")),
    Kind("bool", "0 or 1 (else EINVAL)", _range(2, 0, "flag")),
    Kind("ioport", "an I/O port 0…0xFFFF (else EINVAL)", _range(0x10000, 0, "port")),
    Kind("vcpu", f"a vCPU number < the domain's vCPUs (at most {MAX_VCPUS}; else ENOENT)", _vcpu),
    Kind("vcpumask", "a bit mask of the domain's vCPUs, bit n = vCPU n (a bit beyond them: "
         "EINVAL)", _vcpumask),
)}


@attrs.frozen
class Arg:
    name: str
    kind: str

    def __attrs_post_init__(self):
        assert self.kind in KINDS, self.kind


def _args(spec: str) -> tuple[Arg, ...]:
    """``"reqs:va count:count"`` → the `Arg` tuple."""
    return tuple(Arg(*item.split(":")) for item in spec.split())


@attrs.frozen
class Command:
    """One sub-command of a multiplexed hypercall (``r2`` = `number`)."""

    number: int
    name: str
    args: tuple[Arg, ...]
    handler: Callable = attrs.field(repr=False)
    description: str


@attrs.frozen
class Hypercall:
    number: int
    name: str
    who: str
    description: str
    args: tuple[Arg, ...] = ()
    handler: Callable | None = attrs.field(default=None, repr=False)
    commands: tuple[Command, ...] = ()

    def command(self, number: int) -> Command | None:
        return next((c for c in self.commands if c.number == number), None)


def _cmd(number, name, spec, handler, description):
    return Command(number, name, _args(spec), handler, description)


HYPERCALLS: tuple[Hypercall, ...] = (
    Hypercall(0, "set_trap_table", ANY,
              "install the virtual trap table: entries {vector, flags, handler}, ended by handler 0"
              " (at most 256); flags bits 0–1 DPL, bit 2 fast (vectors ≥ 32 but 0x82 only); "
              "replaces the whole table",
              _args("table:va"), ops.set_trap_table),
    Hypercall(1, "mmu_update", ANY,
              "apply `count` requests {ptr, val}: ptr = machine address of an entry of a pinned "
              "page table / directory; each validated, applied in order, then the TLB is flushed;"
              " → count, or the first error (earlier requests stay applied)",
              _args("reqs:va count:count"), ops.mmu_update),
    Hypercall(2, "console_io", ANY, "the emergency / dom0 console", commands=(
        _cmd(0, "write", "count:count buf:va", ops.console_write,
             "write `count` bytes at `buf` to the domain's console → count"),
        _cmd(1, "read", "count:count buf:va", ops.console_read,
             "move up to `count` bytes of the domain's console input to `buf` → bytes moved "
             "(0: none waiting); raises VIRQ_CONSOLE again while input remains (as IRQ 1 is "
             "level-triggered natively), and when VIRQ_CONSOLE is bound with input waiting"),)),
    Hypercall(3, "multicall", ANY,
              "run `count` entries {op, arg1..arg5, result} in one VMM entry, storing each "
              "result (multicall and iret are refused inside: EINVAL) → 0",
              _args("calls:va count:count"), ops.multicall),
    Hypercall(4, "update_va_mapping", ANY,
              "validated write of the page-table entry of `va` in the current directory; flags "
              "1 = invlpg, 2 = flush the whole TLB (the page itself is always invalidated)",
              _args("va:va pte:int flags:int"), ops.update_va_mapping),
    Hypercall(5, "set_timer_op", ANY,
              "one-shot timer at `deadline` in domain virtual time (0 cancels; a past deadline "
              "fires at once): raises VIRQ_TIMER", _args("deadline:int"), ops.set_timer_op),
    Hypercall(6, "sched_op", ANY, "scheduling", commands=(
        _cmd(0, "yield", "", ops.sched_yield, "end the time slice → 0"),
        _cmd(1, "block", "", ops.sched_block,
             "clear upcall_mask and wait for an event (at once if one is deliverable; with an "
             "armed timer and nothing pending, idle to its deadline) → 0"),
        _cmd(2, "shutdown", "reason:int", ops.sched_shutdown,
             "stop the domain: 0 poweroff, 1 reboot, 2 suspend, 3 crash; dom0 gets "
             "VIRQ_DOM_EXC"))),
    Hypercall(7, "event_channel_op", ANY, "event channels", commands=(
        _cmd(0, "alloc_unbound", "dom:domid", ops.evtchn_alloc_unbound,
             "a new port that `dom` may bind to → port"),
        _cmd(1, "bind_interdomain", "dom:domid port:port", ops.evtchn_bind_interdomain,
             "connect to `dom`'s unbound port reserved for the caller → local port"),
        _cmd(2, "bind_virq", "virq:virq", ops.evtchn_bind_virq, "→ port (EEXIST if bound)"),
        _cmd(3, "send", "port:port", ops.evtchn_send, "raise the remote end → 0"),
        _cmd(4, "close", "port:port", ops.evtchn_close,
             "the remote end of a connection becomes unbound → 0"),
        _cmd(5, "unmask", "port:port", ops.evtchn_unmask,
             "clear the mask bit (an upcall follows if pending) → 0"),
        _cmd(6, "bind_ipi", "vcpu:vcpu", vcpus.bind_ipi,
             "a new IPI port of the domain notifying `vcpu`: `send` on it raises it there → port"),
        _cmd(7, "bind_vcpu", "port:port vcpu:vcpu", vcpus.bind_vcpu,
             "make a bound port notify `vcpu` (a per-vCPU VIRQ's port: EINVAL) → 0"))),
    Hypercall(8, "grant_table_op", ANY, "grant tables", commands=(
        _cmd(0, "grant_access", "dom:domid pfn:pfn readonly:bool", ops.grant_access,
             "let `dom` map page `pfn` → gref"),
        _cmd(1, "map", "dom:domid gref:gref va:va", ops.grant_map,
             "map `dom`'s grant at page-aligned `va` (PL 1; its page table must exist, its "
             "entry be empty) → handle"),
        _cmd(2, "unmap", "handle:int", ops.grant_unmap, "→ 0"),
        _cmd(3, "end_access", "gref:gref", ops.grant_end_access,
             "revoke a grant (EBUSY while mapped) → 0"))),
    Hypercall(9, "memory_op", ANY, "the balloon", commands=(
        _cmd(0, "decrease_reservation", "list:va count:count", ops.decrease_reservation,
             "give the listed pfns' frames back to the VMM (their mappings in the domain's own "
             "tables are removed; p2m entries become 0xFFFFFFFF) → count, or the first error"),
        _cmd(1, "increase_reservation", "list:va count:count", ops.increase_reservation,
             "back `count` unbacked pfns (lowest first) with free frames, write them to the "
             "list and the p2m → count (ENOMEM: no free frame, ENOSPC: no unbacked pfn)"))),
    Hypercall(10, "domctl", DOM0, "domain control (the toolstack)", commands=(
        _cmd(0, "pause", "dom:domid", ops.domctl_pause, "→ 0"),
        _cmd(1, "unpause", "dom:domid", ops.domctl_unpause, "→ 0"),
        _cmd(2, "destroy", "dom:domid", ops.domctl_destroy,
             "EBUSY while others map its grants → 0"),
        _cmd(3, "list", "buf:va max:count", ops.domctl_list,
             "records {domid, state (0 running, 1 blocked, 2 paused, 3 shutdown), nr_pages, "
             "flags} → count"),
        _cmd(4, "create", "config:int", ops.domctl_create,
             "build a domain from the VMM's configuration list → domid"),
        _cmd(5, "balloon", "dom:domid target:int", ops.domctl_balloon,
             "set the domain's backed pages to `target` (shrinking reclaims only free-looking "
             "pages between first_free_pfn and the stack page) → pages now backed"))),
    Hypercall(11, "set_callbacks", ANY, "where events are delivered (0: none)",
              _args("event_callback:va"), ops.set_callbacks),
    Hypercall(12, "stack_switch", ANY, "the ring-1 stack for traps and events from ring 3",
              _args("sp:va"), ops.stack_switch),
    Hypercall(13, "iret", ANY,
              "return from a trap/event frame: sp → {saved r1, error, pc, cs, flags, old sp}; "
              "restores r1, pc, ring (1 or 3), condition flags and sp; upcall_mask = 0 if the "
              "frame's IF is set; no result (EINVAL if the frame is bad)",
              (), ops.iret),
    Hypercall(14, "mmuext_op", ANY, "extended MMU operations", commands=(
        _cmd(0, "pin_table", "mfn:mfn", ops.pin_table, "validate and pin a page table → 0"),
        _cmd(1, "pin_directory", "mfn:mfn", ops.pin_directory,
             "validate and pin a page directory (the VMM writes its hole entries) → 0"),
        _cmd(2, "unpin", "mfn:mfn", ops.unpin, "→ 0"),
        _cmd(3, "new_baseptr", "mfn:mfn", ops.new_baseptr,
             "switch address space to this directory (validated, typed) → 0"),
        _cmd(4, "tlb_flush", "", ops.tlb_flush, "→ 0"),
        _cmd(5, "invlpg", "va:va", ops.invlpg, "→ 0"),
        _cmd(6, "tlb_flush_multi", "mask:vcpumask", vcpus.tlb_flush_multi,
             "flush the TLBs of the vCPUs in `mask` (the VMM does it: no IPI) → 0"),
        _cmd(7, "invlpg_multi", "va:va mask:vcpumask", vcpus.invlpg_multi,
             "invalidate `va` in the TLBs of the vCPUs in `mask` → 0"))),
    Hypercall(15, "physdev_op", DOM0, "real device I/O for back-end drivers", commands=(
        _cmd(0, "in", "port:ioport", ops.physdev_in,
             "read a real device port → value (as unsigned; the VMM's timer and PIC ports: "
             "EPERM)"),
        _cmd(1, "out", "port:ioport value:int", ops.physdev_out,
             "write a real device port (a DMA address must lie in dom0's own frames) → 0"))),
    Hypercall(16, "vcpu_op", ANY, "the domain's vCPUs (SMP: docs/paravirtual-abi.md)", commands=(
        _cmd(0, "initialise", "vcpu:vcpu ctx:va", vcpus.initialise,
             "give a vCPU that never ran its context {pc, sp, kernel_sp, page-directory mfn, r1, "
             "flags = 0}, validated (EEXIST if initialised; EINVAL: a bad field; the directory "
             "is validated as new_baseptr) → 0"),
        _cmd(1, "up", "vcpu:vcpu", vcpus.up,
             "start an initialised vCPU (EINVAL if not; 0 if already up) → 0"),
        _cmd(2, "down", "vcpu:vcpu", vcpus.down,
             "stop scheduling a vCPU, keeping its context (vCPU 0: EINVAL) → 0"),
        _cmd(3, "is_up", "vcpu:vcpu", vcpus.query_up, "→ 1 if up, 0 if not"),
        _cmd(4, "set_singleshot_timer", "vcpu:vcpu deadline:int", vcpus.set_singleshot_timer,
             "the calling vCPU's one-shot timer at `deadline` in its virtual time (another "
             "vCPU, or 0: EINVAL): raises its VIRQ_TIMER → 0"),
        _cmd(5, "stop_singleshot_timer", "vcpu:vcpu", vcpus.stop_singleshot_timer,
             "cancel the calling vCPU's timer (another vCPU: EINVAL) → 0"))),
    Hypercall(17, "shadow_op", DOM0, "log-dirty mode, for the migration daemon (Xen's "
              "XEN_DOMCTL_shadow_op)", commands=(
        _cmd(0, "enable_logdirty", "dom:domid", logdirty.shadow_enable_logdirty,
             "start recording the pages `dom` writes (its own stores: a write fault each, the "
             "first per page per round; the VMM's stores for it, page-table updates included) "
             "→ 0 (EBUSY if already on)"),
        _cmd(1, "clean", "dom:domid buf:va words:count", logdirty.shadow_clean,
             "write the bitmap of pages dirtied since the last clean (bit pfn of word pfn/32) to "
             "`buf` (`words` ≥ nr_pages/32), reset the log and write-protect every page again "
             "→ pages dirty"),
        _cmd(2, "off", "dom:domid", logdirty.shadow_off, "leave log-dirty mode → 0"))),
)

BY_NUMBER = {h.number: h for h in HYPERCALLS}
BY_NAME = {h.name: h for h in HYPERCALLS}
#: what the dispatcher returns for `iret` on success (r1 is then the frame's saved r1)
NO_RESULT = ops.NO_RESULT


def name_of(number: int) -> str:
    call = BY_NUMBER.get(number)
    return call.name if call else "unknown"


def dispatch(domain: Domain, number: int, args: tuple[int, ...], *, nested: bool = False) -> int:
    """Run hypercall `number` with raw register values `args` (r2…r6) for `domain`.

    Returns the result (≥ 0), an error code (< 0), or `NO_RESULT` (a successful ``iret``).  Only
    `HypercallError` is turned into an error code, and recorded with its reason in the domain's
    `refusals` log: any other exception is a VMM bug."""
    call = command = None
    try:
        call = BY_NUMBER.get(number)
        if call is None:
            raise HypercallError(ENOSYS, f"no hypercall {number}")
        if call.who == DOM0 and not domain.privileged:
            raise HypercallError(EPERM, f"{call.name} is for dom0 only")
        if nested and call.name in ("multicall", "iret"):
            raise HypercallError(EINVAL, f"{call.name} inside a multicall")
        values = [a & M32 for a in args]
        if call.commands:
            command = call.command(values[0])
            if command is None:
                raise HypercallError(EINVAL, f"{call.name} has no command {values[0]}")
            spec, handler, values = command.args, command.handler, values[1:]
        else:
            spec, handler = call.args, call.handler
        converted = [KINDS[a.kind].convert(domain, v) for a, v in zip(spec, values)]
        result = handler(domain, *converted)
    except HypercallError as error:
        name = "unknown" if call is None else call.name
        if command is not None:
            name = f"{name} {command.name}"
        domain.refuse(name, error.code, error.why or "refused")
        return error.code
    return result


def reference_markdown() -> str:
    """The generated reference table (docs/paravirtualization.md, between the markers)."""
    lines = ["| # | hypercall | cmd | arguments | who | description |",
             "| --- | --- | --- | --- | --- | --- |"]

    def sig(args):
        return ", ".join(f"`{a.name}`: {a.kind}" for a in args) or "—"

    for h in HYPERCALLS:
        lines.append(f"| {h.number} | `{h.name}` | {'' if h.commands else '—'} | "
                     f"{sig(h.args) if not h.commands else ''} | {h.who} | {h.description} |")
        for c in h.commands:
            lines.append(f"| | | {c.number} `{c.name}` | {sig(c.args)} | | {c.description} |")
    lines += ["", "Argument kinds (checked by the dispatcher before the handler runs):", "",
              "| kind | accepted values |", "| --- | --- |"]
    lines += [f"| {k.name} | {k.meaning} |" for k in KINDS.values()]
    lines += ["", "Error codes: " + ", ".join(f"`{n}` {c}" for c, n in sorted(
        ERRORS.items(), reverse=True)) + "."]
    return "\n".join(lines) + "\n"


BEGIN = "<!-- BEGIN GENERATED: hypercall table (python -m toyvisor.vmm.paravirt.hypercalls) -->"
END = "<!-- END GENERATED -->"


def update_document(path) -> bool:
    """Rewrite the generated block of `path`; True if it changed."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n{reference_markdown()}{END}{tail}"
    if new != text:
        path.write_text(new)
        return True
    return False


if __name__ == "__main__":  # pragma: no cover
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "paravirtualization.md"
    print("updated" if update_document(doc) else "up to date", doc)


__all__ = ["ANY", "BY_NAME", "BY_NUMBER", "DOM0", "HYPERCALLS", "KINDS", "NO_RESULT", "Arg",
           "Command", "Hypercall", "dispatch", "name_of", "reference_markdown"]
