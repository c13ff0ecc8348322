"""Exceptions raised by instruction semantics while a guest runs.

These are *architectural* events, not errors of toyvisor: the CPU catches them and delivers them
through the guest's interrupt table (or to a VMM).
"""

from __future__ import annotations

from .spec import VECTOR_NAMES


class GuestFault(Exception):
    """A synchronous exception raised by the instruction being executed.

    `vector` selects the gate, `error` is the pushed error code and `address` is the faulting
    linear address of a page fault (it goes to cr2 on delivery).
    """

    def __init__(self, vector: int, error: int = 0, address: int | None = None):
        super().__init__(vector, error, address)
        self.vector = vector
        self.error = error
        self.address = address

    def __str__(self) -> str:
        name = VECTOR_NAMES.get(self.vector, f"vector {self.vector}")
        text = f"{name} (error code {self.error:#x})"
        if self.address is not None:
            text += f" at address {self.address:#010x}"
        return text
