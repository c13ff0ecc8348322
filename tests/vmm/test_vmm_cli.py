"""`toyvisor run GUEST --vmm NAME`."""

import json

from click.testing import CliRunner

from toyvisor.tools.cli import main


def test_run_vmm_json():
    result = CliRunner().invoke(main, ["run", "examples/loop.s", "--vmm", "trap-emulate",
                                       "--ring-model", "0/3/3", "--placement", "hosted", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["strategy"] == "trap-emulate:0/3/3" and data["placement"] == "hosted"
    assert data["equivalent"] is True and data["divergence"] is None
    assert data["vmm_entries"] > 0 and data["by_cause"]["vmm:io"] > 0
    assert {"guest_instructions", "cycles", "events", "efficiency"} <= set(data)


def test_run_vmm_text_and_unknown_strategy():
    result = CliRunner().invoke(main, ["run", "examples/hello.s", "--vmm", "trap-emulate"])
    assert result.exit_code == 0 and "equivalent to the bare machine: yes" in result.output
    bad = CliRunner().invoke(main, ["run", "examples/hello.s", "--vmm", "teleport"])
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == ["error: unknown strategy 'teleport' (known: "
                                               + bad.output.split("(known: ")[1].strip()]
