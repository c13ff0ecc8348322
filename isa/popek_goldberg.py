"""Popek & Goldberg's virtualizability theorems, checked mechanically against the instruction table.

Popek & Goldberg (1974) call an instruction *sensitive* if it reads or changes the machine's
privileged state (control-sensitive) or behaves differently depending on it (behaviour-sensitive),
and *privileged* if it traps when executed outside supervisor mode.

- Theorem 1: a trap-and-emulate VMM can be built iff every sensitive instruction is privileged.
- Theorem 3: a *hybrid* VMM (which interprets the guest's supervisor code and runs only its user
  code directly) can be built iff every *user-sensitive* instruction is privileged — one that is
  sensitive when executed in user mode.

The table's privilege classes are the input: innocuous instructions are not sensitive; privileged
ones trap; sensitive-unprivileged ones are sensitive and do not trap.  Every instruction of ours in
that last class is user-sensitive too: each reveals or (fails to) change privileged state from
ring 3 exactly as from ring 1, which is why Robin & Irvine's Pentium analysis applies to it.
"""

from __future__ import annotations

import attrs

from .spec import Privilege
from .table import INSTRUCTIONS, Instruction


@attrs.frozen
class Offender:
    """A sensitive instruction that does not trap, with the reason it matters."""

    mnemonic: str
    group: str | None
    summary: str


@attrs.frozen
class Verdict:
    """The outcome of the analysis for one instruction set."""

    sensitive: tuple[str, ...]
    privileged: tuple[str, ...]
    sensitive_unprivileged: tuple[Offender, ...]
    user_sensitive_unprivileged: tuple[Offender, ...]

    @property
    def virtualizable(self) -> bool:
        """Theorem 1: sensitive ⊆ privileged."""
        return not self.sensitive_unprivileged

    @property
    def hybrid_virtualizable(self) -> bool:
        """Theorem 3: user-sensitive ⊆ privileged."""
        return not self.user_sensitive_unprivileged

    def to_dict(self) -> dict:
        return {
            "virtualizable": self.virtualizable,
            "hybrid_virtualizable": self.hybrid_virtualizable,
            "sensitive": list(self.sensitive),
            "privileged": list(self.privileged),
            "sensitive_unprivileged": [o.mnemonic for o in self.sensitive_unprivileged],
            "user_sensitive_unprivileged": [o.mnemonic for o in self.user_sensitive_unprivileged],
            "offenders": [attrs.asdict(o) for o in self.sensitive_unprivileged],
        }

    def report(self) -> str:
        """A human-readable account of the verdict, naming each offending instruction."""
        lines = [
            f"sensitive instructions:  {', '.join(self.sensitive)}",
            f"privileged instructions: {', '.join(self.privileged)}",
            "",
            "Theorem 1 (trap-and-emulate VMM: sensitive ⊆ privileged): "
            + ("holds — virtualizable" if self.virtualizable else "fails — NOT virtualizable"),
            "Theorem 3 (hybrid VMM: user-sensitive ⊆ privileged): "
            + ("holds" if self.hybrid_virtualizable else "fails"),
        ]
        if self.sensitive_unprivileged:
            lines += ["", "sensitive but unprivileged (they do not trap outside ring 0):"]
            width = max(len(o.mnemonic) for o in self.sensitive_unprivileged)
            for o in self.sensitive_unprivileged:
                group = f"[{o.group}] " if o.group else ""
                lines.append(f"  {o.mnemonic.ljust(width)}  {group}{o.summary}")
        return "\n".join(lines) + "\n"


def analyze(instructions: tuple[Instruction, ...] = INSTRUCTIONS) -> Verdict:
    """Classify `instructions` and apply Theorems 1 and 3."""
    sensitive = [d for d in instructions if d.sensitive]
    offenders = tuple(
        Offender(d.mnemonic, d.group, d.summary)
        for d in sensitive
        if d.privilege is Privilege.SENSITIVE
    )
    return Verdict(
        sensitive=tuple(d.mnemonic for d in sensitive),
        privileged=tuple(d.mnemonic for d in instructions if d.privileged),
        sensitive_unprivileged=offenders,
        # All of our sensitive-unprivileged instructions are user-sensitive (see module doc).
        user_sensitive_unprivileged=offenders,
    )
