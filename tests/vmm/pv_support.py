"""Helpers of the paravirtual tests: a PV hypervisor with domains built from tiny images."""

from __future__ import annotations

from pathlib import Path

from toyvisor.asm import assemble_file, assemble_source
from toyvisor.tools.guest import Guest
from toyvisor.vmm.hypervisor import Hypervisor
from toyvisor.vmm.paravirt.hypercalls import BY_NAME, dispatch
from toyvisor.vmm.strategies import make_strategy

HERE = Path(__file__).resolve().parent


def spin_guest(name: str = "spin", memory: int = 0x10000) -> Guest:
    image = assemble_source("start: jmp start\n").image
    return Guest(name=name, image=image, memory_size=memory, max_steps=10_000)


def pv_hello(max_steps: int = 100_000) -> Guest:
    image = assemble_file(HERE / "pv_hello.s").image
    return Guest(name="pv_hello", image=image, memory_size=0x10000, max_steps=max_steps)


def system(n_domains: int = 2, memory: int = 0x10000, pool_pages: int = 32):
    """A PV hypervisor with dom0 (privileged) and `n_domains`-1 unprivileged domains."""
    strategy = make_strategy("paravirtual")
    hv = Hypervisor(strategy, memory_size=(1 << 20) + n_domains * memory + pool_pages * 4096)
    doms = [strategy.create_domain(spin_guest(f"d{i}", memory), privileged=i == 0)
            for i in range(n_domains)]
    strategy.configs = [spin_guest("created", memory)]
    return strategy, hv, doms


def call(domain, name: str, *args: int) -> int:
    """Hypercall `name` (``event_channel_op`` …) with raw register arguments."""
    return dispatch(domain, BY_NAME[name].number, tuple(args) + (0,) * (5 - len(args)))


def scratch_va(domain) -> int:
    """A writable page of the domain for hypercall argument buffers (its first free pfn)."""
    return domain.first_free_pfn * 4096
