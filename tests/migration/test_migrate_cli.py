"""`toyvisor migrate`: the Done-when command, its outputs and its bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from toyvisor.tools.cli import main

SLOW = ["--input", "256 400 2000", "--max-steps", "700000"]


def _run(*args):
    return CliRunner().invoke(main, ["migrate", *args])


def test_the_done_when_command_compares_three_methods():
    result = _run("guests/migration/dirty", "--method", "pre-copy", "--method", "post-copy",
                  "--method", "stop-and-copy", *SLOW)
    assert result.exit_code == 0, result.output
    table = result.output[result.output.rindex("method "):]
    assert [line.split()[0] for line in table.splitlines()[1:]] == [
        "pre-copy:xen", "post-copy", "stop-and-copy"]
    assert "equivalent to the unmigrated run: yes" in result.output
    for phase in ("choose-hosts", "init-container", "pre-copy", "suspend-copy", "commit",
                  "resume"):
        assert phase in result.output


def test_json_carries_rounds_phases_and_totals():
    result = _run("guests/migration/dirty", "--json", "--compress", "all", *SLOW)
    assert result.exit_code == 0, result.output
    (one,) = json.loads(result.output)["migrations"]
    assert one["method"] == "pre-copy:xen" and one["equivalent"]
    assert [p["name"] for p in one["phases"]][0] == "choose-hosts"
    assert one["rounds"][0]["pages_sent"] == one["memory_pages"]
    assert one["bytes_saved"] > 0 and one["downtime_ticks"] > 0


def test_a_vm_lost_by_post_copy_exits_2_unless_no_fail():
    args = ["guests/migration/dirty", "--method", "post-copy", "--fail-at", "5000", *SLOW]
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert "outcome: lost" in result.output and "equivalent to the unmigrated run: NO" in \
        result.output
    assert _run(*args, "--no-fail").exit_code == 0
    assert _run("guests/migration/dirty", "--json", "--markdown").exit_code == 1


def test_a_migration_between_two_nodes_of_the_interconnect():
    result = _run("guests/migration/dirty", "--network", "torus:16:0:10", "--method", "post-copy",
                  "--at", "1000", "--input", "256 400 200", "--max-steps", "200000")
    assert result.exit_code == 0, result.output
    assert "(4 bytes/tick, latency 16 ticks)" in result.output


def test_a_link_that_fails_mid_migration_leaves_the_vm_at_the_source():
    result = _run("guests/migration/dirty", "--fail-at", "10000", *SLOW)
    assert result.exit_code == 0, result.output
    assert "outcome: aborted; stopped by: link failed" in result.output
    assert "equivalent to the unmigrated run: yes" in result.output


@pytest.mark.parametrize("args,message", [
    (["guests/migration/no-such-guest"], "no such file or directory"),
    (["guests/migration/dirty", "--dest-memory", str((1 << 20) + 4096)], "no room"),
    (["guests/migration/dirty", "--bandwidth", "0"], "bandwidth must be positive"),
    (["guests/migration/dirty", "--bandwidth", "-3"], "bandwidth must be positive"),
    (["guests/migration/dirty", "--bandwidth", "fast"], "bandwidth must be a number"),
    (["guests/migration/dirty", "--method", "pre-copy", "--method", "teleport"],
     "unknown migration method 'teleport'"),
    (["guests/migration/dirty", "--vmm", "native"], "keeps no dirty log"),
    (["guests/migration/dirty", "--vmm", "warp"], "unknown strategy"),
    (["guests/migration/dirty", "--compress", "lz4"], "unknown compression 'lz4'"),
    (["guests/migration/dirty", "--downtime-limit", "0"], "downtime limit must be positive"),
    (["guests/migration/dirty", "--at", "-1"], "must not be negative"),
    (["guests/migration/dirty", "--network", "torus:16:0:99"], "node 99 does not exist"),
    (["guests/migration/dirty", "--network", "torus:16:0:3", "--bandwidth", "8"],
     "without --bandwidth"),
    (["guests/migration/dirty", "--at", "900000", *SLOW], "before the migration time"),
])
def test_bad_input_is_one_line_and_exit_1(args, message):
    result = _run(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
