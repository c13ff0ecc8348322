"""Judging a port on its guest-visible outcome (`toyvisor.vmm.outcome`)."""

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toyvisor.tools.guest import GuestError, load_guest
from toyvisor.vmm import run_guest
from toyvisor.vmm.outcome import KERNEL_STREAM, Outcome, OutcomeRules, OutcomeRulesError, compare

RULES = OutcomeRules.from_table({
    "lines": {"A": "^A:", "B": "^B:"},
    "words": {"A": r"A\d+", "B": r"B\d+"},
    "ignore": [r"\d+(?= ticks)"],
})


def outcome(console: str, disk: bytes = b"", stop: str = "halted") -> Outcome:
    return Outcome(console, disk, stop)


def test_lines_go_to_their_stream_and_token_lines_are_split_into_words():
    streams = RULES.streams("boot\nA0 B0 A1\nB: hello\nA: done\nB1 \nclock 17 ticks\n")
    assert streams == {"A": ["A0", "A1", "A: done"], "B": ["B0", "B: hello", "B1"],
                       KERNEL_STREAM: ["boot", "clock  ticks"]}


def test_a_line_with_one_foreign_word_is_not_split():
    assert RULES.streams("A0 hello")[KERNEL_STREAM] == ["A0 hello"]


def test_another_schedule_of_the_same_streams_is_equivalent():
    native = outcome("boot\nA0 B0 A1 B1\nA: done\nB: done\nclock 40 ticks\n")
    port = outcome("boot\nA0 B0 B1\nA1\nB: done\nA: done\nclock 38 ticks\n")
    assert compare(native, port, RULES) is None


@given(st.lists(st.sampled_from(["A", "B"]), min_size=1, max_size=12))
def test_any_interleaving_of_the_tasks_tokens_is_equivalent(order):
    native = outcome(" ".join(f"{t}{i}" for t in "AB" for i in range(order.count(t))))
    counters = {"A": 0, "B": 0}
    words = []
    for task in order:
        words.append(f"{task}{counters[task]}")
        counters[task] += 1
    assert compare(native, outcome(" ".join(words)), RULES) is None


def test_a_changed_stream_is_named_with_its_first_differing_item():
    native = outcome("A0 B0 A1\nB: sector says hi\n")
    port = outcome("A0 B0 A1\nB: read failed\n")
    assert compare(native, port, RULES, "paravirtual") == (
        "stream 'B' item 2 differs: native 'B: sector says hi', paravirtual 'B: read failed'")


def test_a_missing_token_is_reported():
    assert compare(outcome("A0 A1"), outcome("A0"), RULES) == "stream 'A' items: native has 2, port 1"


def test_disk_contents_and_the_way_the_run_ended_count():
    assert "disk contents differ" in compare(outcome("x", b"a"), outcome("x", b"b"), RULES)
    assert compare(outcome("x"), outcome("x", stop="budget"), RULES) == (
        "native stopped with 'halted', port with 'budget'")


def test_without_rules_the_console_is_compared_line_by_line():
    assert compare(outcome("a\nb"), outcome("a\nc"), None) == (
        "console line 2 differs: native 'b', port 'c'")
    assert OutcomeRules().describe() == "console line by line, disk contents, how the run ended"


@pytest.mark.parametrize("table, message", [
    ([], "port_outcome: expected a table"),
    ({"line": {}}, "port_outcome: unknown key 'line' (known: lines, words, ignore, unordered)"),
    ({"lines": ["^A"]}, "port_outcome.lines: expected a table of stream = regex"),
    ({"lines": {"A": 3}}, "port_outcome.lines.A: expected a regular expression string, got int"),
    ({"words": {"A": "("}}, "port_outcome.words.A: bad regular expression '('"),
    ({"ignore": "x"}, "port_outcome.ignore: expected a list of regular expressions"),
    ({"ignore": ["ok", "[z-a]"]}, "port_outcome.ignore[1]: bad regular expression '[z-a]'"),
])
def test_bad_rules_are_refused_with_their_location(table, message):
    with pytest.raises(OutcomeRulesError) as error:
        OutcomeRules.from_table(table)
    assert str(error.value).startswith(message)


def test_a_manifest_with_bad_rules_names_the_manifest(tmp_path):
    (tmp_path / "k.s").write_text("start: cli\n hlt\n")
    (tmp_path / "guest.toml").write_text(
        'entry_source = "k.s"\n[port_outcome]\nlines = { A = "(" }\n')
    with pytest.raises(GuestError) as error:
        load_guest(tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'guest.toml'}: port_outcome.lines.A: bad")


def test_the_port_without_the_disk_is_caught_in_task_b_stream():
    guest = load_guest("minikernel")
    result = run_guest(attrs.evolve(guest, disk=None), "paravirtual")
    assert result.equivalent  # natively there is no disk either: both say -22 (E_INVAL)
    port_only = attrs.evolve(guest, disk=None)
    native = run_guest(guest, "native")
    port = run_guest(port_only, "paravirtual", check_equivalence=False)
    divergence = compare(outcome(native.console), outcome(port.console), guest.port_outcome)
    assert divergence.startswith("stream 'B' item ")
    assert "sector 1 says" in divergence and "failed: -22" in divergence
