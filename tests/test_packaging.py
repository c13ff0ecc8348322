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
            # a folder mapped to a package of its own (tools/testing -> toyvisor.testing) is
            # found under its own root, not as a subpackage of its parent folder's package
            owner = max((r for r in roots if init.parent.is_relative_to(REPO / r)), key=len)
            if owner != root:
                continue
            relative = init.parent.relative_to(REPO / root)
            found.add(".".join([name, *relative.parts]))
    assert found <= listed, f"not installed by a regular install: {sorted(found - listed)}"


def test_every_guest_file_is_installed_as_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["toyvisor.guests"]
    recursive = {p[len("**/*"):] for p in patterns if p.startswith("**/*")}
    missing = [str(path.relative_to(REPO)) for path in (REPO / "guests").rglob("*")
               if path.is_file() and "__pycache__" not in path.parts
               and path.suffix not in recursive]
    assert not missing, f"guest files a regular install would leave out: {missing}"
