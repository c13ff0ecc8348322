"""guests/smpkernel on 1, 2, 4 and 8 CPUs: every CPU works, the locked counter is exact, the
unlocked one loses updates, the parallel sum is right, the TLB shootdown reaches every CPU; both
engines and two runs give the same JSON."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from toyvisor.tools import runner
from toyvisor.tools.cli import main
from toyvisor.tools.guest import load_guest

SUM = sum(i * i for i in range(1, 1025))


def _run(cpus: int, engine: str = "interpreter"):
    guest = runner.with_overrides(load_guest("smpkernel"), cpus=cpus)
    return runner.run(guest, engine=engine)


def _answers(console: str) -> dict[str, int]:
    locked = re.search(r"locked counter: (\d+) \(expected (\d+)\)", console)
    unlocked = re.search(r"unlocked counter: (\d+) \((\d+) updates lost\)", console)
    parallel = re.search(r"parallel sum of squares 1\.\.1024: (\d+) \(expected (\d+)\)", console)
    assert locked and unlocked and parallel, console
    return {"locked": int(locked[1]), "locked_expected": int(locked[2]),
            "unlocked": int(unlocked[1]), "lost": int(unlocked[2]),
            "sum": int(parallel[1]), "sum_expected": int(parallel[2])}


@pytest.mark.parametrize("cpus", [1, 2, 4, 8])
def test_smpkernel_gives_the_same_answers_on_every_cpu_count(cpus):
    result = _run(cpus)
    assert result.halted
    answers = _answers(result.console)
    assert answers["locked"] == answers["locked_expected"] == 400
    assert answers["lost"] > 0 and answers["unlocked"] + answers["lost"] == 1600
    assert answers["sum"] == answers["sum_expected"] == SUM
    assert "8 at generation 1, 0 at generation 2; after the TLB shootdown: " \
           "0 at generation 1, 8 at generation 2" in result.console
    assert [f"[cpu {i}] online" in result.console for i in range(cpus)] == [True] * cpus
    if cpus > 1:
        assert all(c.guest_instructions > 1000 and c.state == "halted" for c in result.per_cpu)
        assert all(c.by_cause.get("timer", 0) > 0 for c in result.per_cpu)  # every local timer
        assert all(c.by_cause.get("ipi 0x31") == 1 for c in result.per_cpu[1:])  # the shootdown
        assert f"reschedule IPIs taken: {cpus - 1}," in result.console
        assert result.per_cpu[0].ipis_sent == 3 * (cpus - 1)  # start, reschedule, shootdown


def test_smpkernel_json_is_the_same_on_both_engines_and_on_a_second_run():
    outputs = []
    for engine in ("interpreter", "fast", "fast"):
        cli = CliRunner().invoke(main, ["run", "smpkernel", "--cpus", "4", "--json", "--engine",
                                        engine])
        assert cli.exit_code == 0, cli.output
        outputs.append(cli.output)
    assert outputs[0] == outputs[1] == outputs[2]
    data = json.loads(outputs[0])
    assert data["halted"] and len(data["cpus"]) == 4
    assert all(c["guest_instructions"] > 0 for c in data["cpus"])
