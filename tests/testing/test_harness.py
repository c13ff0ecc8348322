"""The harness: bare ring-0 programs and the user-program convention of a kernel."""

from pathlib import Path

import pytest

from toyvisor.testing import Instr, Program
from toyvisor.testing.harness import HarnessError, bare_guest, user_guest, user_memory
from toyvisor.tools.guest import load_guest
from toyvisor.vmm import run_guest

BROKEN = Path(__file__).resolve().parent / "broken_kernel"


def test_a_bare_program_runs_at_ring_0_with_its_timer_and_skips_its_faults():
    program = Program((Instr("li", (1, 7)), Instr("div", (2, 1, 0)), Instr("addi", (1, 1, 1)),
                       Instr("li", (3, 0)), Instr("addi", (3, 3, 1)), Instr("cmpi", (3, 50)),
                       Instr("jnz", (4,))), timer_period=9)
    result = run_guest(bare_guest(program), "binary-translation")
    assert result.halted and result.equivalent
    assert result.by_cause["divide-error"] == 1 and result.by_cause["timer"] >= 5


def test_a_user_program_runs_as_task_1_of_minikernel_and_exits():
    kernel = load_guest("minikernel")
    result = run_guest(user_guest(kernel, Program((Instr("li", (1, 5)),))), "native")
    assert "task 1 (A): exited with code 0" in result.console
    assert "A0" not in result.console  # task A's own code did not run
    assert "B: now reading kernel memory" in result.console  # its neighbour did


def test_minikernel_declares_its_user_memory():
    names = {name for name, _, _ in user_memory(load_guest("minikernel"))}
    assert names == {"text", "stack1", "stack2"}


def test_a_kernel_without_the_convention_is_refused_with_the_reason():
    with pytest.raises(HarnessError, match="user_program and user_program_end"):
        user_guest(load_guest("examples/hello.s"), Program(()))


def test_a_program_larger_than_the_kernel_s_area_is_refused():
    huge = Program((Instr("li", (1, 1)),) * 600)  # 4800 bytes; the area is 4092
    with pytest.raises(HarnessError, match="needs 4804 bytes"):
        user_guest(load_guest(BROKEN), huge)


def test_a_kernel_whose_program_area_is_too_small_for_the_search_gets_a_clear_error():
    import attrs

    from toyvisor.testing.check import check_kernel

    kernel = load_guest(BROKEN.parent / "kernels" / "sound")  # a sound kernel: the search runs
    symbols = dict(kernel.image.symbols)
    symbols["user_program_end"] = symbols["user_program"] + 4  # room for the final jump only
    tiny = attrs.evolve(kernel, image=attrs.evolve(kernel.image, symbols=symbols))
    with pytest.raises(HarnessError, match="too small for the generated programs"):
        check_kernel(tiny, [], examples=3)
