"""``stop-and-copy``: the baseline — suspend the VM, send every page and its state, resume.

The downtime is the whole copy: memory ÷ bandwidth.  The least traffic of the methods that
copy before resuming (each page once), and no dirty log at all.
"""

from __future__ import annotations

from ..result import Round
from . import Method, register


@register
class StopAndCopy(Method):
    name = "stop-and-copy"

    def migrate(self, session) -> None:
        start = session.clock
        session.suspend()
        wire, ticks = session.send_pages(range(session.npages), running=False)
        session.send_state()
        session.rounds.append(Round(1, session.npages, 0, wire, ticks, live=False))
        session.check_pages()
        session.install_state()
        session.stop_reason = "stop-and-copy"
        session.phase("suspend-copy", start,
                      f"{session.npages} pages and the vCPU state, VM suspended")
        start = session.clock
        session.commit(start)
        session.resume(start)
