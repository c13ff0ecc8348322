"""The guest-visible outcome of a run, and how a *port*'s outcome is judged against the native
kernel's (docs/paravirtualization.md, "Is the port equivalent?").

A paravirtualized kernel is different code: it executes other instructions, so its state never
matches the native kernel's instruction by instruction, and it runs on its own schedule, so where
the timer preempts a task differs too.  What must match is what the guest's *users* see:

* the console, per **stream**: each line goes to the stream of the first `lines` rule it matches
  (the rest is the ``kernel`` stream), and a line made only of words matching `words` rules is
  split into its words, each to its stream; a stream is compared in order, but streams are not
  ordered against each other — that order is the schedule's;
* lines matching an `unordered` rule form the ``unordered`` stream, compared as a set of lines
  (sorted): output whose order is a race between CPUs (an SMP kernel's "CPU n online");
* text matching an `ignore` rule is removed before comparing: counts that depend on the
  schedule (timer interrupts, context switches) and the port's own notes about itself;
* the disk's contents at the end;
* how the run ended (halted, crashed, out of budget).

A guest declares its rules in its manifest (``[port_outcome]`` in guest.toml); with none, the
console is compared line by line.  The rules travel with the verdict (`OutcomeRules.describe`),
so a reader always knows what "equivalent" meant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

import attrs

from toyvisor.isa.errors import ToyvisorError

#: The stream of lines no `lines` rule claims.
KERNEL_STREAM = "kernel"
#: The stream of the lines `unordered` rules claim (compared sorted).
UNORDERED_STREAM = "unordered"


class OutcomeRulesError(ToyvisorError):
    """A ``[port_outcome]`` table that cannot be used."""


def _compile(where: str, pattern: object) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise OutcomeRulesError(f"{where}: expected a regular expression string, "
                                f"got {type(pattern).__name__}")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise OutcomeRulesError(f"{where}: bad regular expression {pattern!r}: {error}") from None
    except (RecursionError, OverflowError):  # the parser recurses once per nested group
        raise OutcomeRulesError(f"{where}: regular expression too complex "
                                f"({pattern[:40]!r}…, {len(pattern)} characters)") from None


def _named_rules(where: str, table: object) -> tuple[tuple[str, re.Pattern[str]], ...]:
    if not isinstance(table, Mapping):
        raise OutcomeRulesError(f"{where}: expected a table of stream = regex")
    return tuple((str(name), _compile(f"{where}.{name}", pattern))
                 for name, pattern in table.items())


@attrs.frozen
class OutcomeRules:
    """How a port's console is compared with the native kernel's (see the module docstring)."""

    lines: tuple[tuple[str, re.Pattern[str]], ...] = ()
    words: tuple[tuple[str, re.Pattern[str]], ...] = ()
    ignore: tuple[re.Pattern[str], ...] = ()
    unordered: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_table(cls, table: object, where: str = "port_outcome") -> OutcomeRules:
        """Rules from a manifest table ``{lines = {..}, words = {..}, ignore = [..]}``; raises
        `OutcomeRulesError` naming `where` for anything malformed."""
        if not isinstance(table, Mapping):
            raise OutcomeRulesError(f"{where}: expected a table")
        unknown = sorted(set(table) - {"lines", "words", "ignore", "unordered"})
        if unknown:
            raise OutcomeRulesError(f"{where}: unknown key '{unknown[0]}' "
                                    "(known: lines, words, ignore, unordered)")
        lists = {}
        for key in ("ignore", "unordered"):
            patterns = table.get(key, [])
            if not isinstance(patterns, Sequence) or isinstance(patterns, str):
                raise OutcomeRulesError(f"{where}.{key}: expected a list of regular expressions")
            lists[key] = tuple(_compile(f"{where}.{key}[{i}]", p) for i, p in enumerate(patterns))
        return cls(lines=_named_rules(f"{where}.lines", table.get("lines", {})),
                   words=_named_rules(f"{where}.words", table.get("words", {})), **lists)

    def streams(self, console: str) -> dict[str, list[str]]:
        """The console split into streams, `ignore` text removed (every stream named by a rule
        is present)."""
        out: dict[str, list[str]] = {name: [] for name, _ in self.lines + self.words}
        out.setdefault(KERNEL_STREAM, [])
        for line in console.splitlines():
            words = line.split()
            owners = [self._word_owner(word) for word in words]
            if words and None not in owners:
                for owner, word in zip(owners, words):
                    out[owner].append(word)
                continue
            owner = next((name for name, rule in self.lines if rule.search(line)), KERNEL_STREAM)
            if any(rule.search(line) for rule in self.unordered):
                owner = UNORDERED_STREAM
            for rule in self.ignore:
                line = rule.sub("", line)
            out.setdefault(owner, []).append(line)
        if UNORDERED_STREAM in out:
            out[UNORDERED_STREAM].sort()
        return out

    def _word_owner(self, word: str) -> str | None:
        return next((name for name, rule in self.words if rule.fullmatch(word)), None)

    def describe(self) -> str:
        """One line naming what the comparison looked at."""
        if not (self.lines or self.words or self.ignore or self.unordered):
            return "console line by line, disk contents, how the run ended"
        names = list(dict.fromkeys([n for n, _ in self.lines + self.words] + [KERNEL_STREAM]))
        if self.unordered:
            names.append(f"{UNORDERED_STREAM}: compared as a set")
        text = f"console per stream ({', '.join(names)})"
        if self.ignore:
            text += f" less {len(self.ignore)} ignored pattern{'s' * (len(self.ignore) != 1)}"
        return text + ", disk contents, how the run ended"


@attrs.frozen
class Outcome:
    """What a run left that its users can see."""

    console: str
    disk: bytes
    stop_reason: str

    @property
    def disk_digest(self) -> str:
        return hashlib.sha256(self.disk).hexdigest()[:16]


def compare(native: Outcome, port: Outcome, rules: OutcomeRules | None,
            name: str = "port") -> str | None:
    """The first guest-visible difference between `native` and `port`, or None."""
    rules = rules or OutcomeRules()
    if rules.lines or rules.words or rules.ignore or rules.unordered:
        divergence = _compare_streams(rules.streams(native.console),
                                      rules.streams(port.console), name)
    else:
        divergence = _compare_lines(native.console.splitlines(), port.console.splitlines(),
                                    "console line", name)
    if divergence is None and native.disk != port.disk:
        divergence = (f"disk contents differ: native sha256 {native.disk_digest}…, {name} "
                      f"{port.disk_digest}…")
    if divergence is None and native.stop_reason != port.stop_reason:
        divergence = f"native stopped with '{native.stop_reason}', {name} with '{port.stop_reason}'"
    return divergence


def _compare_streams(want: dict[str, list[str]], got: dict[str, list[str]],
                     name: str) -> str | None:
    for stream in dict.fromkeys([*want, *got]):
        divergence = _compare_lines(want.get(stream, []), got.get(stream, []),
                                    f"stream '{stream}' item", name)
        if divergence is not None:
            return divergence
    return None


def _compare_lines(want: list[str], got: list[str], what: str, name: str) -> str | None:
    for number, (a, b) in enumerate(zip(want, got), 1):
        if a != b:
            return f"{what} {number} differs: native {a!r}, {name} {b!r}"
    if len(want) != len(got):
        return f"{what}s: native has {len(want)}, {name} {len(got)}"
    return None


__all__ = ["KERNEL_STREAM", "UNORDERED_STREAM", "Outcome", "OutcomeRules", "OutcomeRulesError", "compare"]
