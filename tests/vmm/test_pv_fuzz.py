"""Robustness of the paravirtual VMM: hypothesis-generated hypercall sequences with arbitrary
arguments never crash the VMM, never let a domain reach a frame it does not own, and always
answer invalid input with a documented error code; a state machine over domains, grants, events
and the balloon keeps every frame-table invariant and the page-conservation law."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from pv_support import call, scratch_va, system
from toyvisor.testing.strategies import hypercall_arguments, hypercall_numbers
from toyvisor.vmm.paravirt.abi import ERRORS, HypercallError
from toyvisor.vmm.paravirt.hypercalls import NO_RESULT, dispatch


def _check(strategy, hv, result):
    assert result is NO_RESULT or isinstance(result, int)
    if isinstance(result, int) and result < 0:
        assert result in ERRORS
    assert strategy.frames.check(list(strategy.domains.values())) == []
    for d in strategy.domains.values():
        assert d.vm.structural_violations() == []
        assert hv.resource_violations(d.vm) == []


@given(st.data())
def test_random_hypercall_sequences_are_safe(data):
    strategy, hv, doms = system(n_domains=2, pool_pages=8)
    frames = strategy.frames.all_frames
    arg = hypercall_arguments(frames)
    for _ in range(data.draw(st.integers(1, 25))):
        live = sorted(strategy.domains)
        if not live:
            break
        d = strategy.domains[data.draw(st.sampled_from(live))]
        buf = scratch_va(d)
        for i, word in enumerate(data.draw(st.lists(arg, max_size=8))):
            try:
                d.write_word(buf + 4 * i, word)
            except HypercallError:
                break
        number = data.draw(hypercall_numbers())
        args = tuple(data.draw(st.one_of(arg, st.just(buf))) for _ in range(5))
        result = dispatch(d, number, args)
        _check(strategy, hv, result)


def test_run_after_random_state_changes_stays_in_bounds():
    """Domains that ran hypercalls keep running without touching foreign memory."""
    strategy, hv, (d0, d1) = system()
    call(d1, "grant_table_op", 0, 0, 10, 0)
    call(d0, "update_va_mapping", 13 * 4096, 0, 1)
    assert call(d0, "grant_table_op", 1, 1, 1, 13 * 4096) == 0
    hv.run(max_steps=3000)
    assert hv.resource_violations(d0.vm) == [] and hv.resource_violations(d1.vm) == []


class DomainsMachine(RuleBasedStateMachine):
    """Domains with grant, event and balloon operations: invariants after every step."""

    @initialize()
    def setup(self):
        self.strategy, self.hv, doms = system(n_domains=2, pool_pages=12)
        self.total = len(self.strategy.frames.all_frames)
        self.handles: list[tuple[int, int]] = []

    def _dom(self, i):
        live = sorted(self.strategy.domains)
        return self.strategy.domains[live[i % len(live)]] if live else None

    @rule(i=st.integers(0, 3), j=st.integers(0, 3), pfn=st.integers(0, 15),
          ro=st.integers(0, 1))
    def grant(self, i, j, pfn, ro):
        a, b = self._dom(i), self._dom(j)
        if a and b:
            call(a, "grant_table_op", 0, b.domid, pfn, ro)

    @rule(i=st.integers(0, 3), j=st.integers(0, 3), gref=st.integers(1, 5),
          pfn=st.integers(9, 14))
    def map_grant(self, i, j, gref, pfn):
        a, b = self._dom(i), self._dom(j)
        if a and b:
            call(a, "update_va_mapping", pfn * 4096, 0, 1)
            h = call(a, "grant_table_op", 1, b.domid, gref, pfn * 4096)
            if h >= 0:
                self.handles.append((a.domid, h))

    @rule(k=st.integers(0, 10))
    def unmap(self, k):
        if self.handles:
            domid, h = self.handles.pop(k % len(self.handles))
            d = self.strategy.domains.get(domid)
            if d:
                assert call(d, "grant_table_op", 2, h) == 0

    @rule(i=st.integers(0, 3), gref=st.integers(1, 5))
    def end_access(self, i, gref):
        a = self._dom(i)
        if a:
            call(a, "grant_table_op", 3, gref)

    @rule(i=st.integers(0, 3), j=st.integers(0, 3), port=st.integers(1, 6),
          op=st.integers(0, 5))
    def events(self, i, j, port, op):
        a, b = self._dom(i), self._dom(j)
        if a and b:
            args = {0: (b.domid,), 1: (b.domid, port), 2: (port % 3,)}.get(op, (port,))
            call(a, "event_channel_op", op, *args)

    @rule(i=st.integers(0, 3), pfns=st.lists(st.integers(0, 15), max_size=4),
          grow=st.booleans())
    def balloon(self, i, pfns, grow):
        d = self._dom(i)
        if not d:
            return
        buf = scratch_va(d)
        try:
            for k, pfn in enumerate(pfns):
                d.write_word(buf + 4 * k, pfn)
        except HypercallError:
            return
        call(d, "memory_op", int(grow), buf, len(pfns))

    @rule(j=st.integers(0, 3), pages=st.integers(0, 16))
    def dom0_balloon(self, j, pages):
        d0, b = self.strategy.domains.get(0), self._dom(j)
        if d0 and b:
            call(d0, "domctl", 5, b.domid, pages)

    @rule(j=st.integers(1, 3))
    def destroy(self, j):
        d0 = self.strategy.domains.get(0)
        if d0 and j in self.strategy.domains:
            if call(d0, "domctl", 2, j) == 0:
                self.handles = [(m, h) for m, h in self.handles if m != j]

    @rule()
    def create(self):
        d0 = self.strategy.domains.get(0)
        if d0:
            call(d0, "domctl", 4, 0)

    @invariant()
    def conserved_and_consistent(self):
        if not hasattr(self, "strategy"):
            return
        s = self.strategy
        owned = sum(len(d.frames()) for d in s.domains.values())
        assert owned + len(s.frames.pool) == self.total
        assert s.frames.check(list(s.domains.values())) == []


TestDomainsMachine = DomainsMachine.TestCase
