"""``pre-copy``: copy every page while the VM runs, then the pages dirtied meanwhile, round after
round, until a stop rule holds; then suspend, send the last dirty pages and the state, resume
(Clark et al., NSDI 2005; the flashcard's steps 3 and 4).

Variants: ``xen`` (the default: Xen's classic rules — 30 rounds, fewer than 50 pages dirtied,
more than 3× memory sent), ``qemu`` (QEMU's: what is left fits in the downtime limit at the
measured bandwidth) and ``auto-converge`` (QEMU's rule with its vCPU throttle,
`toyvisor.vmm.migration.throttle`).  The dirty log is the strategy's own
(`toyvisor.vmm.migration.dirty`).

With a dirty rate ``d`` below the bandwidth ``b`` (both in bytes per tick) and a large enough
writable working set, round ``i`` sends about ``M·(d/b)^i`` pages of the ``M``: each round lasts
as long as its pages take to send, and the guest dirties ``d/b`` as many pages meanwhile.
"""

from __future__ import annotations

from toyvisor.isa.spec import PAGE_SIZE

from ..compress import HEADER_BYTES
from ..result import Round
from ..stop_rules import RoundEnd, make_rule
from ..throttle import AutoConverge
from . import Method, register


@register
class PreCopy(Method):
    name = "pre-copy"
    variants = ("xen", "qemu", "auto-converge")
    logs_dirty = True

    def migrate(self, session) -> None:
        rule = make_rule("xen" if self.variant == "xen" else "qemu",
                         downtime_limit=self.options.get("downtime_limit", 1000))
        if self.variant == "auto-converge":
            session.throttle = AutoConverge()
        log = session.log_dirty
        start = session.clock
        log.start()
        pages = list(range(session.npages))
        total = 0
        number = 0
        while True:
            number += 1
            throttle = session.throttle.throttle if session.throttle else 0.0
            wire, ticks = session.send_pages(pages, running=True)
            total += len(pages)
            dirtied = sorted(log.collect())
            session.rounds.append(Round(number, len(pages), len(dirtied), wire, ticks, throttle))
            session.note(f"round {number}: {len(pages)} pages sent, {len(dirtied)} dirtied, "
                         f"{wire} bytes, {ticks} ticks")
            pending = len(dirtied) * (PAGE_SIZE + HEADER_BYTES)
            reason = rule.decide(RoundEnd(number, len(dirtied), pending, total, session.npages,
                                          wire / ticks if ticks else session.link.bandwidth))
            if session.throttle is not None:
                session.throttle.after_round(pending, wire)
            pages = dirtied
            if reason is not None:
                break
        session.stop_reason = reason
        session.phase("pre-copy", start, f"{number} rounds; stopped: {reason}")
        start = session.clock
        session.suspend()
        last = session.last_pages(set(pages) | log.collect())
        log.stop()
        wire, ticks = session.send_pages(last, running=False)
        session.send_state()
        session.rounds.append(Round(number + 1, len(last), 0, wire, ticks, live=False))
        session.check_pages()
        session.install_state()
        session.phase("suspend-copy", start, f"{len(last)} pages and the vCPU state, VM suspended")
        start = session.clock
        session.commit(start)
        session.resume(start)
