"""pytest plugin: isolation checks of your own kernels in your own test suite.

Installed with toyvisor (entry point ``pytest11``), so the fixture is there in every session::

    def test_my_kernel_keeps_user_programs_out(toyvisor_check):
        report = toyvisor_check("path/to/my_kernel", vmms=["trap-emulate"])
        assert report.held   # toyvisor_check already failed the test with the details otherwise

``toyvisor_check(guest, vmms=None, *, examples=None, seed=None, expect_held=True)`` loads `guest`
(a guest directory or anything ``toyvisor run`` takes), runs `toyvisor.testing.check_kernel` and,
when `expect_held` is true and a property failed, fails the test with the report: each property,
the shrunk counterexample as assembly and the first offending access.  It returns the
`CheckReport`.  ``--toyvisor-examples`` and ``--toyvisor-seed`` set the defaults for a session.
"""

from __future__ import annotations

import pytest

from .defaults import DEFAULT_EXAMPLES, DEFAULT_SEED


def pytest_addoption(parser) -> None:
    group = parser.getgroup("toyvisor", "toyvisor isolation checks")
    group.addoption("--toyvisor-examples", type=int, default=DEFAULT_EXAMPLES,
                    help="generated programs per property and strategy for toyvisor_check "
                         f"(default {DEFAULT_EXAMPLES})")
    group.addoption("--toyvisor-seed", type=int, default=DEFAULT_SEED,
                    help=f"seed of toyvisor_check's program generator (default {DEFAULT_SEED})")


@pytest.fixture
def toyvisor_check(request):
    """A function that checks a kernel's isolation properties (see the module docstring)."""
    from toyvisor.tools.guest import load_guest

    from .check import check_kernel

    config = request.config

    def run(guest, vmms=None, *, examples: int | None = None, seed: int | None = None,
            expect_held: bool = True, **options):
        loaded = load_guest(guest) if not hasattr(guest, "image") else guest
        report = check_kernel(
            loaded, vmms,
            examples=config.getoption("toyvisor_examples") if examples is None else examples,
            seed=config.getoption("toyvisor_seed") if seed is None else seed, **options)
        if expect_held and not report.held:
            pytest.fail(report.text(), pytrace=False)
        return report

    return run
