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

With an ISA extension (``analyze(extension="vt")``) the question is asked of the extension's
non-root mode, where the guest runs with its own privilege level.  The input is then each
sensitive instruction's declared non-root behaviour (`Instruction.nonroot` in the table):
"exit" — it transfers control to the VMM (a VM exit, whenever the VMM's controls select it),
which plays the part of trapping; "guest-state" — the hardware executes it on the guest's own
copy of the privileged state, so it no longer touches the state the VMM controls (it is not
sensitive with respect to the real machine).  An instruction that declares neither stays sensitive
and does not trap: an offender, exactly as in the base analysis.
"""

from __future__ import annotations

import attrs

from .spec import Privilege
from .table import EXIT, GUEST_STATE, INSTRUCTIONS, Instruction, instruction_set


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
    #: The ISA extension analysed (its non-root mode), or None for the base ISA.
    extension: str | None = None
    #: With an extension: sensitive instructions that exit in non-root mode (they "trap").
    exiting: tuple[str, ...] = ()
    #: With an extension: sensitive instructions executed on the guest's own state in hardware.
    guest_state: tuple[str, ...] = ()

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
            "extension": self.extension,
            "virtualizable": self.virtualizable,
            "hybrid_virtualizable": self.hybrid_virtualizable,
            "sensitive": list(self.sensitive),
            "privileged": list(self.privileged),
            "sensitive_unprivileged": [o.mnemonic for o in self.sensitive_unprivileged],
            "user_sensitive_unprivileged": [o.mnemonic for o in self.user_sensitive_unprivileged],
            "offenders": [attrs.asdict(o) for o in self.sensitive_unprivileged],
            **({"nonroot_exit": list(self.exiting), "nonroot_guest_state": list(self.guest_state)}
               if self.extension else {}),
        }

    def report(self) -> str:
        """A human-readable account of the verdict, naming each offending instruction."""
        lines = []
        if self.extension:
            lines += [
                f"ISA extension {self.extension!r}: the guest runs in non-root mode",
                "",
            ]
        lines += [
            f"sensitive instructions:  {', '.join(self.sensitive)}",
            f"privileged instructions: {', '.join(self.privileged)}",
        ]
        if self.extension:
            lines += [
                f"exit in non-root mode (trap to the VMM): {', '.join(self.exiting)}",
                f"act on the guest's own state in hardware: {', '.join(self.guest_state)}",
            ]
        lines += [
            "",
            "Theorem 1 (trap-and-emulate VMM: sensitive ⊆ privileged): "
            + ("holds — virtualizable" if self.virtualizable else "fails — NOT virtualizable"),
            "Theorem 3 (hybrid VMM: user-sensitive ⊆ privileged): "
            + ("holds" if self.hybrid_virtualizable else "fails"),
        ]
        if self.sensitive_unprivileged:
            where = ("neither exit nor act on guest state in non-root mode" if self.extension
                     else "they do not trap outside ring 0")
            lines += ["", f"sensitive but unprivileged ({where}):"]
            width = max(len(o.mnemonic) for o in self.sensitive_unprivileged)
            for o in self.sensitive_unprivileged:
                group = f"[{o.group}] " if o.group else ""
                lines.append(f"  {o.mnemonic.ljust(width)}  {group}{o.summary}")
        return "\n".join(lines) + "\n"


def analyze(instructions: tuple[Instruction, ...] | None = None, *,
            extension: str | None = None) -> Verdict:
    """Classify `instructions` and apply Theorems 1 and 3.

    Without `extension` the input is the base ISA (`INSTRUCTIONS`; extension instructions in
    `instructions` are ignored) at bare metal.  With ``extension="vt"`` it is the base ISA plus
    the extension (by default), judged in non-root mode from each instruction's declared
    ``nonroot`` behaviour (see the module docstring).  Raises ValueError for an unknown extension.
    """
    if extension is not None:
        chosen = instruction_set(extension) if instructions is None else tuple(
            d for d in instructions if d.extension in (None, extension))
        return _analyze_nonroot(chosen, extension)
    if instructions is None:
        instructions = INSTRUCTIONS
    instructions = tuple(d for d in instructions if d.extension is None)
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


def _analyze_nonroot(instructions: tuple[Instruction, ...], extension: str) -> Verdict:
    sensitive = [d for d in instructions if d.sensitive]
    exiting = tuple(d.mnemonic for d in sensitive if d.nonroot == EXIT)
    guest_state = tuple(d.mnemonic for d in sensitive if d.nonroot == GUEST_STATE)
    offenders = tuple(
        Offender(d.mnemonic, d.group, d.summary)
        for d in sensitive
        if d.nonroot not in (EXIT, GUEST_STATE)
    )
    # In non-root mode an instruction that does not exit acts on the guest's state at every
    # guest privilege level alike, so the user-sensitive offenders are the same set (Theorem 3).
    return Verdict(
        sensitive=tuple(d.mnemonic for d in sensitive),
        privileged=tuple(d.mnemonic for d in instructions if d.privileged),
        sensitive_unprivileged=offenders,
        user_sensitive_unprivileged=offenders,
        extension=extension,
        exiting=exiting,
        guest_state=guest_state,
    )
