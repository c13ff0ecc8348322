"""Packaging: every Python package in the tree is installed (regular installs list them)."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    roots = {path: name for name, path in config["package-dir"].items()}
    found = set()
    for root, name in roots.items():
        for init in (REPO / root).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / root)
            found.add(".".join([name, *relative.parts]))
    assert found <= listed, f"not installed by a regular install: {sorted(found - listed)}"
