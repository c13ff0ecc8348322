"""I/O rings of the split drivers (docs/paravirtual-abi.md, "I/O rings (split drivers)").

Two things live here:

* `RingModel` — the ring protocol in Python (front-end and back-end sides, Xen's
  ``RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`` / ``RING_FINAL_CHECK_FOR_*`` batching rules), used by the
  property tests and as the reference the assembly front-ends (guests/lib/pv_front.s) and back-end
  (guests/dom0/kernel.s) follow;
* `read_ring` / `ring_violations` — a reader of a ring page in machine memory and the invariant
  checks the tests run at every VMM entry.

A ring page: ``req_prod`` 0x00, ``req_event`` 0x04, ``rsp_prod`` 0x08, ``rsp_event`` 0x0C, then 32
slots of 64 bytes at 0x40.  Indices are free-running 32-bit counters (slot = index mod 32).
A request ``{id, op, sector/len, gref, offset, data…}`` is overwritten in place by its response
``{id, status, len, data…}``.
"""

from __future__ import annotations

import struct

import attrs

RING_SLOTS = 32
SLOT_SIZE = 64
SLOTS_OFFSET = 0x40
REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT = 0x00, 0x04, 0x08, 0x0C
#: the sides' private consumer counters, published in the ring page for inspection
#: (toyvisor's addition: front-end rsp_cons, back-end req_cons)
RSP_CONS, REQ_CONS = 0x10, 0x14
M32 = 0xFFFFFFFF

# request ops
OP_CONSOLE_WRITE = 1
OP_BLOCK_READ = 2
#: console write requests carry their bytes in the slot, after the 5-word header
CONSOLE_DATA_OFFSET = 0x14
CONSOLE_DATA_MAX = SLOT_SIZE - CONSOLE_DATA_OFFSET


def _notify_needed(new: int, old: int, event: int) -> bool:
    """Xen's rule: notify iff ``event`` lies in (old, new] (modulo 2^32)."""
    return (new - event) & M32 < (new - old) & M32


@attrs.define
class RingModel:
    """The shared indices plus each side's private consumer counters and slot contents."""

    req_prod: int = 0
    req_event: int = 1
    rsp_prod: int = 0
    rsp_event: int = 1
    slots: list = attrs.Factory(lambda: [None] * RING_SLOTS)
    # private state
    req_prod_pvt: int = 0   # front-end: requests written, not yet published
    rsp_cons: int = 0       # front-end: responses consumed
    req_cons: int = 0       # back-end: requests consumed
    rsp_prod_pvt: int = 0   # back-end: responses written, not yet published
    #: ids the back-end has taken and not answered yet (it may answer in any order)
    pending: list = attrs.Factory(list)
    #: ids the front-end has issued and not seen answered
    outstanding: set = attrs.Factory(set)
    notifications_to_back: int = 0
    notifications_to_front: int = 0
    next_id: int = 0

    # -- front-end ---------------------------------------------------------------------------------
    def free_slots(self) -> int:
        return RING_SLOTS - ((self.req_prod_pvt - self.rsp_cons) & M32)

    def produce(self) -> int:
        """Write one request (the caller checked `free_slots`); returns its id."""
        if self.free_slots() <= 0:
            raise RuntimeError("ring full")
        rid, self.next_id = self.next_id, (self.next_id + 1) & M32
        slot = self.req_prod_pvt % RING_SLOTS
        if self.slots[slot] is not None and self.slots[slot][0] == "req":
            raise RuntimeError("slot reused before its response was consumed")
        self.slots[slot] = ("req", rid)
        self.outstanding.add(rid)
        self.req_prod_pvt = (self.req_prod_pvt + 1) & M32
        return rid

    def push_requests(self) -> bool:
        """Publish the written requests; True if the back-end must be notified."""
        old, new = self.req_prod, self.req_prod_pvt
        self.req_prod = new
        notify = _notify_needed(new, old, self.req_event)
        self.notifications_to_back += notify
        return notify

    def consume_responses(self) -> list[int]:
        got = []
        while self.rsp_cons != self.rsp_prod:
            slot = self.slots[self.rsp_cons % RING_SLOTS]
            assert slot is not None and slot[0] == "rsp", slot
            got.append(slot[1])
            self.outstanding.discard(slot[1])
            self.slots[self.rsp_cons % RING_SLOTS] = None
            self.rsp_cons = (self.rsp_cons + 1) & M32
        self.rsp_event = (self.rsp_cons + 1) & M32  # final check: "wake me at the next one"
        return got

    # -- back-end ----------------------------------------------------------------------------------
    def take_request(self) -> int | None:
        if self.req_cons == self.req_prod:
            self.req_event = (self.req_cons + 1) & M32
            return None
        slot = self.slots[self.req_cons % RING_SLOTS]
        assert slot is not None and slot[0] == "req", slot
        self.req_cons = (self.req_cons + 1) & M32
        self.pending.append(slot[1])
        return slot[1]

    def respond(self, index: int = 0) -> None:
        """Answer the `index`-th pending request (out of order allowed) in the next response slot.

        The response slot is the next one in order (rsp_prod_pvt): its request was already
        taken (req_cons > rsp_prod_pvt), so overwriting it loses nothing the back-end needs."""
        rid = self.pending.pop(index)
        slot = self.rsp_prod_pvt % RING_SLOTS
        assert (self.req_cons - self.rsp_prod_pvt) & M32 > 0
        self.slots[slot] = ("rsp", rid)
        self.rsp_prod_pvt = (self.rsp_prod_pvt + 1) & M32

    def push_responses(self) -> bool:
        old, new = self.rsp_prod, self.rsp_prod_pvt
        self.rsp_prod = new
        notify = _notify_needed(new, old, self.rsp_event)
        self.notifications_to_front += notify
        return notify

    def violations(self) -> list[str]:
        return index_violations(self.req_prod, self.rsp_prod, self.req_cons, self.rsp_cons)


def index_violations(req_prod: int, rsp_prod: int, req_cons: int | None = None,
                     rsp_cons: int | None = None) -> list[str]:
    """The ring invariants on (free-running) indices."""
    found = []
    outstanding = (req_prod - rsp_prod) & M32
    if outstanding > RING_SLOTS:
        found.append(f"rsp_prod {rsp_prod} > req_prod {req_prod} or more than {RING_SLOTS} "
                     f"outstanding ({outstanding})")
    if req_cons is not None:
        if (req_prod - req_cons) & M32 > RING_SLOTS:
            found.append(f"req_cons {req_cons} crossed req_prod {req_prod}")
        if (req_cons - rsp_prod) & M32 > RING_SLOTS:
            found.append(f"rsp_prod {rsp_prod} crossed req_cons {req_cons}")
    if rsp_cons is not None:
        if (rsp_prod - rsp_cons) & M32 > RING_SLOTS:
            found.append(f"rsp_cons {rsp_cons} crossed rsp_prod {rsp_prod}")
        if (req_prod - rsp_cons) & M32 > RING_SLOTS:
            found.append(f"slot reused: req_prod {req_prod} is more than {RING_SLOTS} ahead of "
                         f"the responses consumed ({rsp_cons})")
    return found


@attrs.frozen
class RingView:
    """A ring page as read from machine memory."""

    req_prod: int
    req_event: int
    rsp_prod: int
    rsp_event: int
    rsp_cons: int
    req_cons: int
    slots: tuple

    @property
    def outstanding(self) -> int:
        return (self.req_prod - self.rsp_prod) & M32


def read_ring(memory, address: int) -> RingView:
    """Read the ring page at machine address `address` (a `PhysicalMemory`)."""
    data = bytes(memory.data[address:address + 4096])
    fields = struct.unpack_from("<6I", data, 0)
    slots = tuple(struct.unpack_from("<5I", data, SLOTS_OFFSET + SLOT_SIZE * i)
                  for i in range(RING_SLOTS))
    return RingView(*fields, slots)


class RingWatcher:
    """Checks a ring page at every call (e.g. at every VMM entry): the index invariants (with
    the consumer counters the guests publish at 0x10/0x14: no slot reused before its response
    was consumed, rsp_prod <= req_cons <= req_prod, at most 32 outstanding) and no index ever
    going backwards."""

    def __init__(self, memory, address: int, name: str = "ring") -> None:
        self.memory, self.address, self.name = memory, address, name
        self.last: RingView | None = None
        self.checks = 0
        self.found: list[str] = []
        self.max_outstanding = 0

    def check(self) -> None:
        view = read_ring(self.memory, self.address)
        self.checks += 1
        problems = index_violations(view.req_prod, view.rsp_prod, view.req_cons, view.rsp_cons)
        if self.last is not None:
            for field in ("req_prod", "rsp_prod", "req_cons", "rsp_cons"):
                step = (getattr(view, field) - getattr(self.last, field)) & M32
                if step > RING_SLOTS:
                    problems.append(f"{field} went backwards or jumped ({step})")
        self.max_outstanding = max(self.max_outstanding, view.outstanding)
        self.found.extend(f"{self.name}: {p}" for p in problems)
        self.last = view


__all__ = [
    "CONSOLE_DATA_MAX",
    "CONSOLE_DATA_OFFSET",
    "OP_BLOCK_READ",
    "OP_CONSOLE_WRITE",
    "RING_SLOTS",
    "RingModel",
    "RingView",
    "RingWatcher",
    "index_violations",
    "read_ring",
]
