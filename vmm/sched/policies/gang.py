"""Gang scheduling: Ousterhout's matrix.  Time is divided into slots; at each slot boundary every
CPU is rescheduled at once to the next row of the matrix, so all members of a gang run at the same
time; a member that blocks (or has finished) leaves its CPU idle until the slot ends.

Packing rule (first fit): a VM arriving with n ≤ P vCPUs goes into the first row with n free
cells, in its lowest-numbered free columns; if no row has room, a new row is appended.  A VM
larger than P cannot be one gang: its members are laid out in order into the free cells of the
last row and then of new rows — on the seed's figure E0 takes the cell D leaves free and E1–E6 the
next row, so E's members never all run at once (their barriers then wait across slots).  Rows run
in order, cyclically; a row whose members have all finished is dropped.  With A6 B3 C3 D5 E7 on 6
CPUs this is exactly the seed's figure: A0–A5 | B0–B2 C0–C2 | D0–D4 E0 | E1–E6.
"""

from __future__ import annotations

from ..policy import Policy, QueueLock


class Gang(Policy):
    name = "gang"
    summary = "Ousterhout's matrix: slots, all CPUs switch together, gangs packed first fit"
    order = 7
    synchronous = True

    def __init__(self, params) -> None:
        super().__init__(params)
        self.rows: list[list[object | None]] = []
        self.current: list[object | None] | None = None
        #: one CPU rebuilds the row at each slot boundary: one lock operation per slot
        self.lock = QueueLock(params.lock_cost)

    def arrive(self, vm, now: int) -> None:
        width = self.params.pcpus
        members = list(vm.members)
        if len(members) <= width:
            for row in self.rows:
                free = [c for c, cell in enumerate(row) if cell is None]
                if len(free) >= len(members):
                    for member, column in zip(members, free):
                        row[column] = member
                    return
            row = [None] * width
            row[:len(members)] = members
            self.rows.append(row)
            return
        if not self.rows:
            self.rows.append([None] * width)
        while members:
            row = self.rows[-1]
            free = [c for c, cell in enumerate(row) if cell is None]
            if not free:
                self.rows.append([None] * width)
                continue
            for column in free:
                if not members:
                    break
                row[column] = members.pop(0)

    def new_slot(self, now: int) -> None:
        self.lock.take(now)
        live = [row for row in self.rows
                if any(cell is not None and cell.state != "done" for cell in row)]
        if not live:
            self.rows, self.current = [], None
            return
        if self.current is None or self.current not in self.rows:
            following = live[0]
        else:
            at = self.rows.index(self.current)
            following = next((row for row in self.rows[at + 1:] + self.rows[:at + 1]
                              if row in live), live[0])
        self.rows = live
        self.current = following

    def pick(self, cpus: list[int], now: int) -> dict[int, object]:
        row = self.current
        if row is None:
            return {}
        return {cpu: row[cpu] for cpu in cpus if row[cpu] is not None
                and row[cpu].state == "ready"}

    def locks(self):
        return [self.lock]


POLICY = Gang
