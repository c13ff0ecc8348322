"""The constants docs/migration.md's prose quotes are the code's (its tables and round plot are
docgen regions and a picture, checked by tests/test_docs.py and tests/test_docs_generated.py)."""

from __future__ import annotations

from pathlib import Path

from toyvisor.vmm.migration.methods.post_copy import PREPAGE
from toyvisor.isa.spec import PAGE_SIZE
from toyvisor.vmm.migration.pv_session import DEST_VMM_EXTRA, SUSPEND_TIMEOUT
from toyvisor.vmm.migration.session import STATE_BYTES
from toyvisor.vmm.paravirt.abi import SI_CONTROL_PORT
from toyvisor.vmm.migration.stop_rules import QemuRule, XenRule
from toyvisor.vmm.migration.throttle import AutoConverge

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "migration.md"


def test_the_constants_the_document_quotes_are_the_codes():
    text = DOC.read_text(encoding="utf-8")
    assert f"registers ({STATE_BYTES} bytes)" in text
    assert f"brings the next {PREPAGE} pages" in text
    xen = XenRule()
    assert (f"{xen.max_rounds} rounds are done, or fewer than {xen.min_dirty} pages were dirtied "
            f"in the round, or more than {xen.max_factor}× the VM's memory") in text
    assert f"a cap of {QemuRule().max_rounds} rounds" in text
    ac = AutoConverge()
    assert (f"exceed {ac.trigger:.0%} of those sent for the second time, the vCPU loses "
            f"{ac.initial:.0%} of its time, then {ac.increment:.0%} more each time, at most "
            f"{ac.maximum:.0%}").replace("%", " %") in text


def test_the_paravirtual_constants_the_document_quotes_are_the_codes():
    text = DOC.read_text(encoding="utf-8")
    assert f"({DEST_VMM_EXTRA // PAGE_SIZE} pages)" in text
    assert f"within\n{SUSPEND_TIMEOUT:,} of its steps" in text
    assert f"start_info {SI_CONTROL_PORT:#x}".replace("0x3c", "0x3C") in text
