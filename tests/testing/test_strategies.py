"""toyvisor.testing.strategies: generated programs are valid, readable and cover the ISA."""

import pytest
from hypothesis import given, settings

from toyvisor.isa.spec import Privilege
from toyvisor.isa.table import ALL_INSTRUCTIONS
from toyvisor.testing import Instr, Program, strategies


def test_the_pools_branches_and_li_cover_every_instruction():
    pools = strategies.pools(privileged=True, sensitive=True, wild=True, extension="vt")
    covered = {d.mnemonic for pool in pools.values() for d in pool}
    covered |= {*strategies.FORWARD_BRANCHES, "li"}
    assert covered == {d.mnemonic for d in ALL_INSTRUCTIONS}


def test_the_default_mix_is_innocuous_only():
    pools = strategies.pools()
    assert all(d.privilege is Privilege.INNOCUOUS for pool in pools.values() for d in pool)


@settings(max_examples=25)
@given(strategies.programs(privileged=True, sensitive=True, wild=True,
                           targets=strategies.DEFAULT_TARGETS, self_modifying=True,
                           interrupts=True, loop=True))
def test_a_program_prints_as_source_that_assembles_to_its_bytes_and_parses_back(program):
    assembly = program.assemble(0x4000)
    code = b"".join(s.data for s in assembly.image.segments)
    assert code == program.encode(0x4000)
    assert program.timer_period == 0 or 4 <= program.timer_period <= 64
    assert Program.from_source(program.source()) == program


def test_hypothesis_prints_a_failing_program_as_pasteable_assembly():
    from hypothesis.vendor.pretty import pretty

    program = Program((Instr("li", (13, 0), "kernel"), Instr("st", ((13, 0), 0))))
    text = pretty(program)
    assert text.startswith('Program.from_source("""') and "st [r13], r0" in text
    assert eval(text) == program  # noqa: S307 - the point: it is pasteable


def test_from_source_refuses_branches_out_of_the_program():
    with pytest.raises(ValueError, match="does not land on an instruction"):
        Program.from_source("jmp 0x100\n")


def test_branches_print_as_labels_and_comments_follow_the_instruction():
    program = Program((Instr("li", (13, 0x1000), "kernel"), Instr("jz", (3,)),
                       Instr("st", ((13, 4), 2)), Instr("nop")))
    assert program.source().splitlines() == [
        "        li r13, 0x1000                  ; kernel",
        "        jz L3",
        "        st [r13 + 4], r2",
        "L3:     nop",
    ]


def test_self_modifying_snippets_patch_the_instruction_they_aim_at():
    # a patch over the snippet right after it: pop at 4, li at 8, st at 16, the target at 20
    program = strategies._resolve([strategies._Patch(0x01000000, "nop", 1), (Instr("hlt"),)],
                                  loop=0, timer_period=0)
    st_disp = program.instructions[3].values[0][1]
    addresses = program.addresses(0)
    assert addresses[1] + st_disp == addresses[4]  # the popped address + disp = the hlt
    assert program.instructions[4].mnemonic == "hlt"


def test_a_hypercall_prints_as_the_calling_sequence():
    call = strategies.HypercallCall(3, (1, 2, 3, 4, 5))
    text = str(call)
    assert text.splitlines()[0].split(";")[0].strip() == "li r1, 3"
    assert text.splitlines()[-1].strip() == "int 0x82"
    assert call.name != "unknown"
