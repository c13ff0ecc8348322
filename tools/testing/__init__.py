"""toyvisor.testing: property-test the isolation guarantees of guest kernels and VMMs.

See docs/testing-isolation.md.  The pieces, each a module of its own:

- `strategies`: hypothesis strategies for guest programs (`programs`), hypercall sequences and
  assembly text;
- `Program` / `Instr`: a generated program, an immutable value printed as assembly source;
- `harness`: `bare_guest` (a program as a ring-0 guest) and `user_guest` (a program as the first
  ring-3 task of a kernel that follows the user-program convention);
- `properties`: `run_under`, `kernel_isolation` and the ``assert_*`` helpers, which raise
  `PropertyViolation` with the property, the program as assembly and the first offending access;
- `check`: `check_kernel`, the search behind ``toyvisor check``;
- `pytest_plugin`: the ``toyvisor_check`` fixture.

The names below are importable from ``toyvisor.testing`` directly; the modules that need
hypothesis or the VMMs load on first use, so importing the package (as pytest does for the
plugin) stays cheap.
"""

from __future__ import annotations

import importlib

from .program import Instr, Program

_LAZY = {
    "strategies": ("strategies", None),
    "Targets": ("strategies", "Targets"),
    "DEFAULT_TARGETS": ("strategies", "DEFAULT_TARGETS"),
    "bare_guest": ("harness", "bare_guest"),
    "user_guest": ("harness", "user_guest"),
    "kernel_targets": ("harness", "kernel_targets"),
    "HarnessError": ("harness", "HarnessError"),
    "Access": ("properties", "Access"),
    "Finding": ("properties", "Finding"),
    "PropertyViolation": ("properties", "PropertyViolation"),
    "run_under": ("properties", "run_under"),
    "kernel_isolation": ("properties", "kernel_isolation"),
    "check_program": ("properties", "check_program"),
    "assert_properties": ("properties", "assert_properties"),
    "assert_equivalent": ("properties", "assert_equivalent"),
    "assert_resource_control": ("properties", "assert_resource_control"),
    "assert_efficient": ("properties", "assert_efficient"),
    "assert_isolated": ("properties", "assert_isolated"),
    "assert_kernel_isolates": ("properties", "assert_kernel_isolates"),
    "check_kernel": ("check", "check_kernel"),
    "CheckReport": ("check", "CheckReport"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'toyvisor.testing' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return module if attribute is None else getattr(module, attribute)


__all__ = ["Instr", "Program", *_LAZY]
