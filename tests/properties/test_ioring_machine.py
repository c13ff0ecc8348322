"""The split-driver ring protocol (vmm/paravirt/ioring.RingModel) as a state machine with
event-driven sides: the back-end works only after a notification and goes to sleep when it finds
the ring empty (arming req_event); the front-end consumes responses only after a notification and
sleeps after consuming them all (arming rsp_event).

tests/vmm/test_pv_split_drivers.py checks the index invariants and that no side is notified
*more* than needed; this machine checks the other half, liveness: no lost wake-up — a side is
never asleep while there is published work for it — and every request is answered exactly once,
in any order the back-end chooses."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from props_kernel import examples

from toyvisor.vmm.paravirt.ioring import M32, RING_SLOTS, RingModel, _notify_needed


class Ring(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ring = RingModel()
        self.back_awake = False
        self.front_awake = False
        self.issued: list[int] = []
        self.answered: list[int] = []

    @rule(n=st.sampled_from([1, 1, 2, 3, 40]))
    def front_produces(self, n):
        for _ in range(min(n, self.ring.free_slots())):
            self.issued.append(self.ring.produce())

    @rule()
    def front_publishes(self):
        if self.ring.push_requests():
            self.back_awake = True

    @precondition(lambda self: self.back_awake)
    @rule(n=st.sampled_from([1, 2, 40]))
    def back_takes(self, n):
        for _ in range(n):
            if self.ring.take_request() is None:
                self.back_awake = False  # req_event armed: the next publish notifies
                break

    @precondition(lambda self: self.ring.pending)
    @rule(choice=st.integers(0, 1 << 16), n=st.sampled_from([1, 1, 2, 8]))
    def back_responds(self, choice, n):
        for _ in range(min(n, len(self.ring.pending))):
            self.ring.respond(choice % len(self.ring.pending))

    @rule()
    def back_publishes(self):
        if self.ring.push_responses():
            self.front_awake = True

    @precondition(lambda self: self.front_awake)
    @rule()
    def front_consumes(self):
        got = self.ring.consume_responses()
        self.answered.extend(got)
        self.front_awake = False  # rsp_event armed: the next publish notifies

    @invariant()
    def indices_are_sound(self):
        ring = self.ring
        assert ring.violations() == []
        assert (ring.req_prod_pvt - ring.rsp_cons) & M32 <= RING_SLOTS

    @invariant()
    def no_lost_wakeup(self):
        ring = self.ring
        if not self.back_awake:
            assert ring.req_prod == ring.req_cons, "the back-end sleeps while requests wait"
            # and the very next request published will wake it
            assert _notify_needed((ring.req_prod + 1) & M32, ring.req_prod, ring.req_event)
        if not self.front_awake:
            assert ring.rsp_prod == ring.rsp_cons, "the front-end sleeps while responses wait"
            assert _notify_needed((ring.rsp_prod + 1) & M32, ring.rsp_prod, ring.rsp_event)

    @invariant()
    def answered_once(self):
        assert len(set(self.answered)) == len(self.answered)
        assert set(self.answered) <= set(self.issued)

    def teardown(self):
        """Drain with notifications only: everything issued gets answered."""
        ring = self.ring
        for _ in range(4 * RING_SLOTS):
            self.front_publishes()
            if self.back_awake:
                self.back_takes(RING_SLOTS)
            while ring.pending:
                ring.respond(0)
            self.back_publishes()
            if self.front_awake:
                self.front_consumes()
        assert sorted(self.answered) == sorted(self.issued)
        assert not ring.outstanding


Ring.TestCase.settings = settings(max_examples=examples(30), stateful_step_count=25)
TestRing = Ring.TestCase
