"""Migration methods: one file each, registered under their name (``stop-and-copy``,
``pre-copy``, ``post-copy``); variants are spelled ``name:variant`` (``pre-copy:qemu``).

A method is a class with `name`, `variants` (first = default), `logs_dirty` (whether it keeps a
dirty log at the source) and ``migrate(session)``, which runs steps 3 to 6 with
the `toyvisor.vmm.migration.session.Session`'s mechanism.  Adding one is one file here and one
name in `load_builtin`.
"""

from __future__ import annotations

import importlib
from typing import ClassVar

from ..link import MigrationError


class Method:
    """The base of the migration methods."""

    name: ClassVar[str] = ""
    variants: ClassVar[tuple[str, ...]] = ()
    logs_dirty: ClassVar[bool] = False

    def __init__(self, variant: str | None = None, **options) -> None:
        if self.variants:
            variant = variant or self.variants[0]
            if variant not in self.variants:
                raise MigrationError(f"{self.name}: unknown variant '{variant}' (known: "
                                     f"{', '.join(self.variants)})")
        elif variant:
            raise MigrationError(f"{self.name} has no variants (got '{variant}')")
        self.variant = variant
        self.options = options

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.variant}" if self.variant else self.name

    def migrate(self, session) -> None:
        raise NotImplementedError


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def load_builtin() -> None:
    for module in ("stop_and_copy", "pre_copy", "post_copy"):
        importlib.import_module(f"{__name__}.{module}")


def make_method(spec: str, **options) -> Method:
    """``"pre-copy:qemu"`` → a method (a `MigrationError` for an unknown one)."""
    load_builtin()
    name, _, variant = spec.partition(":")
    cls = METHODS.get(name)
    if cls is None:
        raise MigrationError(f"unknown migration method '{spec}' (known: "
                             f"{', '.join(sorted(METHODS))})")
    return cls(variant or None, **options)


__all__ = ["METHODS", "Method", "load_builtin", "make_method", "register"]
