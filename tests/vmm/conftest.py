"""Shared fixtures for the VMM tests: guests loaded once per session."""

from pathlib import Path

import pytest

from toyvisor.asm import assemble_file
from toyvisor.tools.guest import Guest, load_guest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def minikernel():
    return load_guest("minikernel")


@pytest.fixture(scope="session")
def nanobench():
    return load_guest("nanobench")


@pytest.fixture(scope="session")
def loop():
    return load_guest("examples/loop.s")


@pytest.fixture(scope="session")
def hostile():
    image = assemble_file(HERE / "hostile.s").image
    return Guest(name="hostile", image=image, memory_size=0x10000, max_steps=100_000)
