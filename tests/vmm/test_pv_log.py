"""Paravirtual refusals say why: every refused hypercall's reason is kept in the domain's log
(`toyvisor.vmm.paravirt.log`, like ``xl dmesg``) and shown in the run output and ``--json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from toyvisor.tools.cli import main
from toyvisor.vmm.paravirt.abi import EINVAL, EPERM
from toyvisor.vmm.paravirt.log import LOG_CAPACITY, errno_name

from pv_support import call, system

HERE = Path(__file__).resolve().parent
REFUSAL = "mmu_update: -1 EPERM: frame 0x1000 is not the domain's"


@pytest.fixture
def refusing_guest(tmp_path):
    """A guest whose paravirtual port makes one mmu_update the VMM must refuse."""
    shutil.copy(HERE / "pv_refused.s", tmp_path / "pv.s")
    (tmp_path / "k.s").write_text("cli\nhlt\n")
    (tmp_path / "guest.toml").write_text('entry_source = "k.s"\npv_source = "pv.s"\n')
    return tmp_path


def test_errno_names():
    assert errno_name(EINVAL) == "-22 EINVAL" and errno_name(EPERM) == "-1 EPERM"
    assert errno_name(-99) == "-99"


def test_a_refused_mmu_update_is_in_the_run_output(refusing_guest):
    result = CliRunner().invoke(main, ["run", str(refusing_guest), "--vmm", "paravirtual"])
    assert result.exit_code == 0, result.output
    assert "--- hypervisor log: 1 refused hypercalls (as xl dmesg shows them)" in result.output
    assert f"(XEN) [t=13] d0 {REFUSAL}" in result.output


def test_a_refused_mmu_update_is_in_the_json(refusing_guest):
    result = CliRunner().invoke(main, ["run", str(refusing_guest), "--vmm", "paravirtual",
                                       "--json"])
    assert result.exit_code == 0, result.output
    (refusal,) = json.loads(result.output)["refusals"]
    assert refusal == {"clock": 13, "domid": 0, "hypercall": "mmu_update", "code": -1,
                       "error": "EPERM", "reason": "frame 0x1000 is not the domain's"}


def test_a_run_with_nothing_refused_logs_nothing():
    result = CliRunner().invoke(main, ["run", "minikernel", "--vmm", "paravirtual", "--json"])
    assert json.loads(result.output)["refusals"] == []


def test_every_refusal_of_a_hypercall_is_logged_with_its_sub_command():
    _, _, (d0, d1) = system()
    assert call(d0, "console_io", 9, 0, 0) == EINVAL
    assert call(d1, "domctl", 0, 0) == EPERM
    assert call(d0, "sched_op", 7) == EINVAL
    assert [r.line().split("] ", 1)[1] for r in d0.refusals.entries] == [
        "d0 console_io: -22 EINVAL: console_io has no command 9",
        "d0 sched_op: -22 EINVAL: sched_op has no command 7"]
    assert [r.line().split("] ", 1)[1] for r in d1.refusals.entries] == [
        "d1 domctl: -1 EPERM: domctl is for dom0 only"]


def test_the_log_is_bounded_and_counts_what_it_dropped():
    _, _, (d0, _) = system()
    for _ in range(LOG_CAPACITY + 5):
        call(d0, "console_io", 9, 0, 0)
    log = d0.refusals
    assert len(log.entries) == LOG_CAPACITY and log.dropped == 5 and log.total == LOG_CAPACITY + 5
    assert log.lines()[0] == "(XEN) (5 older refusals dropped)"
