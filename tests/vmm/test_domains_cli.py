"""Domain configurations and management through dom0 (docs/paravirtualization.md, "Domains"):
`toyvisor.tools.domains` boots guests/domains/example.toml (dom0 + two PV minikernels); the
management commands go to dom0's real console input and dom0 (guests/dom0/mgmt.s) carries them
out with domctl."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner
from toyvisor.tools import domains
from toyvisor.tools.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "guests" / "domains" / "example.toml"
SECTOR_LINE = 'B: sector 1 says "Hello from sector 1 of the minikernel disk (disk.txt)!"'
PAUSE_AT = 60_000          # machine ticks: both domUs are mid-run (a whole run ends a little after 200,000)


def boot(*commands):
    return domains.boot(domains.load_config(EXAMPLE), commands)


def lines_of(console: str, prefix: str) -> list[str]:
    return [line[len(prefix):] for line in console.splitlines() if line.startswith(prefix)]


def rows_by_id(system) -> dict[int, dict]:
    return {row["id"]: row for row in domains.domain_rows(system)}


def total_pages(system) -> int:
    """Frames of the live domains + the VMM's free pool: what ballooning and destroying move."""
    return (sum(len(d.frames()) for d in system.strategy.domains.values())
            + len(system.strategy.frames.pool))


@pytest.fixture(scope="module")
def plain():
    return boot("list")


def test_the_example_boots_and_both_domus_use_the_back_ends(plain):
    config = domains.load_config(EXAMPLE)
    assert [d.name for d in config.domains] == ["alpha", "beta"]
    assert all(d.devices == ("console", "disk") for d in config.domains)
    console = plain.console
    for domid in (1, 2):
        lines = lines_of(console, f"[d{domid}] ")
        assert lines[0].startswith(f"[kernel] toyvisor minikernel booting (paravirtualized: "
                                   f"ring 1, domain {domid},")
        assert SECTOR_LINE in lines                       # sector 1 through the block back-end
        assert lines[-1].endswith("shutting down")
    assert all(d.vm.console == "" for d in plain.domus)   # every byte went through dom0
    assert plain.hypervisor.machine.platform.disk.reads == 2
    assert all(d.vm.stop_reason == "halted" for d in plain.all_domains)
    rows = rows_by_id(plain)
    assert [(r["name"], r["state"]) for r in rows.values()] == [
        ("dom0", "shutdown"), ("alpha", "shutdown"), ("beta", "shutdown")]
    assert all(r["vmm_entries"] >= r["hypercalls"] > 0 for r in rows.values())


def test_list_prints_the_three_domains(plain):
    mgmt = lines_of(plain.console, "[dom0] ")
    assert mgmt == ["list: 3 domains", "  d0 running 16 pages", "  d1 running 1024 pages",
                    "  d2 running 1024 pages"]


def test_pause_stops_a_domain_while_the_other_finishes():
    system = boot(f"@{PAUSE_AT} pause 1")
    console = system.console
    assert "[dom0] pause 1: ok" in console
    d1, d2 = lines_of(console, "[d1] "), lines_of(console, "[d2] ")
    assert d2[-1].endswith("shutting down") and SECTOR_LINE in d2
    assert not any("all tasks finished" in line for line in d1)
    rows = rows_by_id(system)
    assert rows[1]["state"] == "paused" and rows[2]["state"] == "shutdown"
    assert system.domus[0].vm.steps < system.domus[1].vm.steps / 2   # it stopped early


def test_unpause_lets_the_paused_domain_finish():
    system = boot(f"@{PAUSE_AT} pause 1", "@200000 list", "@200000 unpause 1")
    console = system.console
    mgmt = lines_of(console, "[dom0] ")
    assert mgmt[0] == "pause 1: ok" and mgmt[-1] == "unpause 1: ok"
    assert "  d1 paused 1024 pages" in mgmt and "  d2 shutdown 1024 pages" in mgmt
    lines = console.splitlines()
    paused, unpaused = lines.index("[dom0] pause 1: ok"), lines.index("[dom0] unpause 1: ok")
    between = lines[paused:unpaused]
    assert any(line.startswith("[d2] ") and line.endswith("shutting down") for line in between)
    assert not any(line.startswith("[d1] ") and "all tasks finished" in line for line in between)
    d1 = lines_of(console, "[d1] ")
    assert SECTOR_LINE in d1 and d1[-1].endswith("shutting down")
    assert all(d.vm.stop_reason == "halted" for d in system.all_domains)


def test_balloon_changes_the_page_count_and_conserves_pages(plain):
    system = boot("balloon 2 900", f"@{PAUSE_AT} balloon 1 1000", f"@{PAUSE_AT} list")
    mgmt = lines_of(system.console, "[dom0] ")
    assert mgmt[:2] == ["balloon 2 900: 900 pages", "balloon 1 1000: 1000 pages"]
    assert "  d2 running 900 pages" in mgmt or "  d2 blocked 900 pages" in mgmt
    rows = rows_by_id(system)
    assert rows[2]["pages"] == 900 and rows[1]["pages"] == 1000
    assert total_pages(system) == total_pages(plain)
    assert len(system.strategy.frames.pool) == len(plain.strategy.frames.pool) + 124 + 24
    for domid in (1, 2):   # both still run to the end with fewer pages
        assert lines_of(system.console, f"[d{domid}] ")[-1].endswith("shutting down")


def test_destroy_removes_a_domain(plain):
    system = boot(f"@{PAUSE_AT} destroy 2", "list")
    console = system.console
    mgmt = lines_of(console, "[dom0] ")
    assert mgmt == ["destroy 2: ok", "list: 2 domains", "  d0 running 16 pages",
                    "  d1 running 1024 pages"]
    assert 2 not in system.strategy.domains
    assert rows_by_id(system)[2]["state"] == "destroyed"
    assert not any("shutting down" in line for line in lines_of(console, "[d2] "))
    assert lines_of(console, "[d1] ")[-1].endswith("shutting down")
    assert total_pages(system) == total_pages(plain)
    assert system.dom0.vm.stop_reason == "halted"


def test_refused_commands_print_the_error_code_and_its_errno_name():
    system = boot("destroy 0", "pause 7", "balloon 1 5000", "unpause 1")
    assert lines_of(system.console, "[dom0] ")[:4] == [
        "destroy 0: error -22 EINVAL", "pause 7: error -3 ESRCH",
        "balloon 1 5000: error -22 EINVAL", "unpause 1: error -22 EINVAL"]


def test_the_hypervisor_log_says_why_each_command_was_refused():
    system = boot("destroy 0", "pause 7", "balloon 1 5000", "unpause 1")
    log = domains.hypervisor_log(system).splitlines()
    assert [line.split("] ", 1)[1] for line in log] == [
        "d0 domctl destroy: -22 EINVAL: use sched_op shutdown",
        "d0 domctl pause: -3 ESRCH: no domain 7",
        "d0 domctl balloon: -22 EINVAL: target beyond the domain's 1024 pfns",
        "d0 domctl unpause: -22 EINVAL: domain 1 is running, not paused"]
    assert all(line.startswith("(XEN) [t=") for line in log)
    row = rows_by_id(system)[0]
    assert row["refused"] == 4
    assert [r["error"] for r in row["refusals"]] == ["EINVAL", "ESRCH", "EINVAL", "EINVAL"]
    assert row["refusals"][0]["hypercall"] == "domctl destroy"


def test_the_example_configurations_own_command_works():
    """guests/domains/example.toml's comment names a command: it runs and does what it says."""
    text = EXAMPLE.read_text()
    comment = " ".join(line.lstrip("# ").rstrip("\\ ") for line in text.splitlines()
                       if line.startswith("#   toyvisor") or line.startswith("#       --do"))
    args = shlex.split(comment)[1:]
    assert args[:3] == ["domains", "boot", "guests/domains/example.toml"]
    args[2] = str(EXAMPLE)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    mgmt = lines_of(result.output, "[dom0] ")
    assert "pause 1: ok" in mgmt and "unpause 1: ok" in mgmt and "  d1 paused 1024 pages" in mgmt
    assert "error" not in result.output and "hypervisor log" not in result.output
    assert lines_of(result.output, "[d1] ")[-1].endswith("shutting down")


def test_a_command_timed_after_the_domains_finished_is_refused_with_a_reason():
    result = CliRunner().invoke(main, ["domains", "boot", str(EXAMPLE), "--do", "@400000 pause 1"])
    assert result.exit_code == 0, result.output
    assert "[dom0] pause 1: error -22 EINVAL" in result.output
    assert "hypervisor log (refused hypercalls, as xl dmesg shows them):" in result.output
    assert ("d0 domctl pause: -22 EINVAL: domain 1 is shutdown: only a running or blocked "
            "domain can be paused") in result.output


def test_cli_wrappers_and_json():
    result = CliRunner().invoke(main, ["domains", "list", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "[dom0] list: 3 domains" in result.output
    table = result.output.rstrip().splitlines()[-4:]
    assert table[0].split() == ["id", "name", "state", "pages", "VMM", "entries", "hypercalls",
                                "refused"]
    assert table[2].split()[:4] == ["1", "alpha", "shutdown", "1024"]
    result = CliRunner().invoke(main, ["domains", "balloon", str(EXAMPLE), "2", "900", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["commands"] == ["balloon 2 900"]
    assert [d["pages"] for d in data["domains"]] == [16, 1024, 900]
    assert "[dom0] balloon 2 900: 900 pages" in data["console"]


BAD_CONFIGS = {
    "unknown key": ('[dom0]\nkernel = "dom0"\ncolour = "red"\n', "[dom0]: unknown key 'colour'"),
    "missing kernel": ('[dom0]\nkernel = "dom0"\n[[domain]]\nname = "x"\n',
                       "[[domain]] 'x': missing 'kernel'"),
    "bad memory": ('[dom0]\nkernel = "dom0"\nmemory = "lots"\n', "'memory' must be bytes"),
    "unknown device": (('[dom0]\nkernel = "dom0"\n[[domain]]\nkernel = "minikernel"\n'
                        'devices = ["console", "net"]\n'), "unknown device 'net'"),
    "kernel not found": ('[dom0]\nkernel = "no-such-guest"\n', "kernel 'no-such-guest'"),
    "disk not found": ('disk = "nowhere.img"\n[dom0]\nkernel = "dom0"\n',
                       "disk 'nowhere.img' not found"),
    "invalid TOML": ("[dom0\n", "invalid TOML"),
    "no dom0": ('[[domain]]\nkernel = "minikernel"\n', "missing [dom0]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_configurations_are_one_line_errors(tmp_path, case):
    text, message = BAD_CONFIGS[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["domains", "boot", str(path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: {path}: ") and message in result.output


def test_missing_file_and_bad_command_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(main, ["domains", "list", str(tmp_path / "none.toml")])
    missing = tmp_path / "none.toml"
    assert result.exit_code == 1 and result.output == f"error: {missing}: no such file\n"
    result = CliRunner().invoke(main, ["domains", "boot", str(EXAMPLE), "--do", "frob 1"])
    assert result.exit_code == 1 and result.output.startswith("error: bad management command")
