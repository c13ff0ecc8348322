"""The engines' shortcuts of issue 13 compute exactly what the paths they shortcut compute.

- `Decodings` (decoding remembered across machines) gives `decode_word`'s result or error, and
  asks for a second word exactly when `decode_word` does;
- a cold block whose body is "quiet" checks the engine's signal once: every instruction marked
  quiet touches nothing but the registers, flags and pc (so no hook can run inside it);
- block tails run natively inside the dispatcher count their callouts, privileged and
  sensitive instructions as the callouts object does;
- `CPU.software_interrupt`'s shortcut (nobody watching) leaves what `CPU.deliver` leaves;
- VM exit and entry move the control structure's areas as slices: the same bytes as field by
  field;
- a block's chaining exits, found by opcode, are its code template's destinations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toyvisor.cpu import Machine
from toyvisor.cpu.decode import _STATIC, Decodings
from toyvisor.cpu.bt import DirectCallouts, Translator
from toyvisor.isa.encoding import DecodeError, decode_word
from toyvisor.isa import vt as V
from toyvisor.isa.faults import GuestFault
from toyvisor.isa.spec import M32
from toyvisor.isa.table import ALL_INSTRUCTIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vmm"))

from test_bt_trap_paths import make, make_ports, state  # noqa: E402

OPCODES = sorted(d.opcode for d in ALL_INSTRUCTIONS)


def _outcome(decode, word, pc, ext, second_fails):
    """(result or error type, whether the second word was asked for)."""
    asked = []

    def next_word():
        asked.append(True)
        if second_fails:
            raise GuestFault(14, 0)
        return ext

    try:
        decoded = decode(word, pc, next_word)
        if isinstance(decoded, tuple):
            decoded = decoded[0]
        return decoded, bool(asked)
    except (DecodeError, GuestFault) as error:
        return type(error), bool(asked)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(OPCODES), st.integers(0, 255)), st.integers(0, 1 << 24 - 1),
       st.integers(0, M32 >> 2).map(lambda w: w << 2), st.integers(0, M32), st.booleans(),
       st.integers(0, M32))
def test_decodings_give_decode_words_result_and_ask_for_the_same_words(
        opcode, low, pc, ext, second_fails, other_ext):
    word = (opcode << 24) | (low & 0xFFFFFF)
    memo = Decodings()
    expected = _outcome(decode_word, word, pc, ext, second_fails)
    assert _outcome(memo.decode, word, pc, ext, second_fails) == expected  # a miss
    assert _outcome(memo.decode, word, pc, ext, second_fails) == expected  # remembered
    # another second word (li's immediate) after the first was remembered
    assert _outcome(memo.decode, word, pc, other_ext, False) \
        == _outcome(decode_word, word, pc, other_ext, False)


def test_decodings_bind_the_handler_of_the_decoded_instruction():
    memo = Decodings(limit=2)
    machine = Machine(memory_size=1 << 12)
    cpu = machine.cpu
    li = next(d for d in ALL_INSTRUCTIONS if d.mnemonic == "li")
    word = (li.opcode << 24) | (3 << 20)
    for ext in (7, 0xDEADBEEF, 7):  # the limit forgets everything on the third
        decoded, handler = memo.decode(word, 0x100, lambda: ext)
        assert decoded == decode_word(word, 0x100, lambda: ext)
        handler(cpu, cpu.regs)
        assert cpu.regs[3] == ext and cpu.pc == 0x108


class _Probe:
    """A stand-in ``cpu`` that records every attribute a handler touches."""

    def __init__(self) -> None:
        object.__setattr__(self, "touched", set())

    def __getattr__(self, name):
        self.touched.add(name)
        return 0

    def __setattr__(self, name, value):
        self.touched.add(name)


# an instruction that needs attention never sits in a block body, so it is not asked about
@pytest.mark.parametrize("definition", [d for d in ALL_INSTRUCTIONS
                                        if _STATIC[d.opcode][7] and not _STATIC[d.opcode][4]],
                         ids=lambda d: d.mnemonic)
def test_quiet_instructions_touch_only_registers_flags_and_pc(definition):
    fields = {name: 1 for name in _fields(definition)}
    handler = _STATIC[definition.opcode][6](**fields, pc=0x100, npc=0x104)
    probe = _Probe()
    for divisor in (1, 0):  # div/rem by zero raise #DE
        regs = [divisor] * 16
        try:
            handler(probe, regs)
        except GuestFault:
            pass
    assert probe.touched <= {"pc", "flags"}


def _fields(definition):
    from toyvisor.isa.codegen import field_names
    return field_names(definition)


class _CountingCallouts(DirectCallouts):
    """DirectCallouts under another type: the dispatcher then leaves for every tail and runs it
    through ``callouts.callout`` (`Translator._run_tail`)."""


@pytest.mark.parametrize("build,period,flags", [(make, 0, 0), (make, 7, 0x200),
                                                (make_ports, 23, 17), (make_ports, 3, 5)])
@pytest.mark.parametrize("hot", [1, 10**6])
def test_tails_in_the_dispatcher_count_like_the_callouts(build, period, flags, hot):
    runs = []
    for callouts in (DirectCallouts(), _CountingCallouts()):
        machine = build(period, flags)
        translator = Translator(machine.cpu, callouts, hot_threshold=hot)
        translator.run(100_000)
        runs.append((machine, translator))
    (chained, fast), (plain, slow) = runs
    assert state(chained) == state(plain)
    assert fast.stats.tails_chained > 0 and slow.stats.tails_chained == 0
    for field in ("callouts", "callouts_by_mnemonic", "translated_instructions",
                  "direct_instructions", "blocks_translated", "cache_misses"):
        assert getattr(fast.stats, field) == getattr(slow.stats, field), field


@pytest.mark.parametrize("period,flags", [(0, 0), (5, 0x200), (13, 0x200)])
def test_the_software_interrupt_shortcut_leaves_what_deliver_leaves(period, flags):
    shortcut = make(period, flags)
    shortcut.run(20_000)
    events = []
    traced = make(period, flags)  # a trace takes the full path (an event per delivery)
    traced.run(20_000, trace=events.append)
    assert state(shortcut) == state(traced)
    assert shortcut.cpu.by_cause["int 0x80"] == 30


# -- the "vt" control structure moved in slices ----------------------------------------------

EVENTS = st.one_of(st.none(), st.tuples(st.integers(0, 255), st.integers(0, M32),
                                        st.sampled_from(["exception", "interrupt", "software"])))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, M32), min_size=16, max_size=16), st.integers(0, M32 >> 2),
       st.sampled_from(sorted(V.REASON_NUMBERS)), st.integers(0, M32),
       st.one_of(st.none(), st.integers(0, M32)), st.one_of(st.none(), st.integers(0, M32)),
       st.sampled_from([0, 4, 8]), EVENTS, EVENTS, st.integers(0, M32))
def test_vm_exit_and_entry_move_every_field_as_word_by_word(
        regs, pc, reason, qualification, physical, linear, length, interruption, vectoring,
        filler):
    from vt_helpers import VMCS, guest_machine
    machine, vmcs, _ = guest_machine("start: hlt", idtr=0x3000, cr2=0x1234, ksp0=0x9000,
                                     ksp1=0x9100, ksp2=0x9200, flags=0x200)
    cpu = machine.cpu
    memory = machine.memory
    cpu.vm_enter(VMCS)
    # entry loaded every guest-state field
    assert list(cpu.regs[:15]) == [0] * 15 and cpu.regs[15] == 0x10000
    assert (cpu.idtr, cpu.cr2, list(cpu.ksp), cpu.flags) == (0x3000, 0x1234,
                                                           [0x9000, 0x9100, 0x9200], 0x200)
    before = bytearray(memory.read(VMCS, V.VMCS_SIZE))
    cpu.regs[:] = regs
    cpu.flags, cpu.idtr, cpu.cr2, cpu.ksp[:] = 0x200, filler, filler ^ 0x5A5A, [1, 2, filler]
    expected = before
    word = lambda offset, value: expected.__setitem__(  # noqa: E731
        slice(offset, offset + 4), (value & M32).to_bytes(4, "little"))
    for n in range(16):
        word(V.GUEST_REGS + 4 * n, regs[n])
    for offset, value in ((V.GUEST_PC, pc << 2), (V.GUEST_FLAGS, cpu.flags),
                          (V.GUEST_CPL, cpu.cpl), (V.GUEST_IDTR, cpu.idtr),
                          (V.GUEST_CR0, cpu.cr0), (V.GUEST_CR2, cpu.cr2),
                          (V.GUEST_CR3, cpu.mmu.cr3), (V.GUEST_KSP, 1), (V.GUEST_KSP + 4, 2),
                          (V.GUEST_KSP + 8, filler), (V.EXIT_REASON, V.REASON_NUMBERS[reason]),
                          (V.EXIT_QUALIFICATION, qualification),
                          (V.EXIT_GUEST_PHYSICAL, physical or 0),
                          (V.EXIT_GUEST_LINEAR, linear or 0), (V.EXIT_INSTRUCTION_LENGTH, length),
                          (V.EXIT_PC, pc << 2)):
        word(offset, value)
    for field, event in ((V.EXIT_INTERRUPTION, interruption), (V.EXIT_VECTORING, vectoring)):
        word(field, V.event_word(event[0], event[2]) if event else 0)
        word(field + 4, event[1] if event else 0)
    cpu.vt.exit(reason, pc << 2, qualification=qualification, instruction_length=length,
                guest_physical=physical, guest_linear=linear, interruption=interruption,
                vectoring=vectoring)
    assert memory.read(VMCS, V.VMCS_SIZE) == bytes(expected)
    # and entering again loads what the exit stored
    cpu.vm_enter(VMCS)
    assert (list(cpu.regs), cpu.pc, cpu.idtr, cpu.cr2, list(cpu.ksp)) \
        == (regs, pc << 2, filler, filler ^ 0x5A5A, [1, 2, filler])


# -- forming blocks: exits by opcode ---------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.sampled_from([d for d in ALL_INSTRUCTIONS  # the transfers that can end a body
                        if d.sets_pc and d.length == 4 and not _STATIC[d.opcode][4]]),
       st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, (M32 >> 2) - 4))
def test_exits_by_opcode_are_the_templates_destinations(definition, high, low, word_pc):
    from toyvisor.cpu.bt.codegen import _values, exit_pcs, template
    word = (definition.opcode << 24) | (high & 0xFF) << 16 | low
    try:
        decoded = decode_word(word, word_pc << 2)
    except DecodeError:
        return
    final = template(decoded.definition).final  # what exit_pcs read before: the template
    values = _values(decoded)
    if final is None:
        expected = [decoded.npc]
    elif final[0] == "if":
        taken, fall = values[final[2][2:-2]], values[final[3][2:-2]]
        expected = [taken] if taken == fall else [taken, fall]
    elif final[0] == "const":
        expected = [values[final[1][2:-2]]]
    else:
        expected = []
    assert exit_pcs([decoded], tail=None, end_pc=decoded.npc) == expected


@pytest.mark.parametrize("engine", ["interpreter", "fast"])
def test_a_hook_in_place_of_deliver_sees_every_software_interrupt(engine):
    """`CPU.deliver` is the seam of every delivery (the isolation harness wraps it): the
    shortcut is not taken while an instance attribute stands in for it."""
    machine = make(0, 0)
    cpu = machine.cpu
    seen = []
    deliver = cpu.deliver

    def hooked(vector, error, pc, source="exception", address=None):
        seen.append((vector, source))
        return deliver(vector, error, pc, source, address)

    cpu.deliver = hooked
    machine.run(100_000, engine=engine)
    assert seen.count((0x80, "software")) == 30 and seen.count((3, "software")) == 30
