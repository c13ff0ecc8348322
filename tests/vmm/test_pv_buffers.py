"""A hypercall's guest buffer is translated once a page (`Domain.read_bytes`,
`writable_addresses`): the same bytes, the same machine addresses and the same EFAULT, at the
same first bad byte, as translating it byte by byte."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from pv_support import scratch_va, system
from toyvisor.isa.spec import M32
from toyvisor.vmm.paravirt.abi import PV_VMM_START
from toyvisor.vmm.paravirt.hypercalls import HypercallError

STRATEGY, HV, DOMAINS = system(2)
DOMAIN = DOMAINS[1]


def _outcome(call):
    try:
        return call()
    except HypercallError as error:
        return ("EFAULT", error.code, str(error))


# around the end of the domain's memory, its first pages, and the VMM hole
_starts = st.one_of(st.integers(0, 0x12000), st.integers(PV_VMM_START - 0x3000, PV_VMM_START),
                    st.integers(M32 - 0x2000, M32))


@settings(max_examples=200, deadline=None)
@given(va=_starts, n=st.integers(0, 3 * 4096))
def test_a_buffer_is_translated_a_page_at_a_time_as_byte_by_byte(va, n):
    data = DOMAIN.memory.data
    for write in (False, True):
        expected = _outcome(lambda: [DOMAIN.translate((va + i) & M32, write) for i in range(n)])
        if write:
            assert _outcome(lambda: DOMAIN.writable_addresses(va, n)) == expected
        else:
            read = expected if isinstance(expected, tuple) else bytes(data[a] for a in expected)
            assert _outcome(lambda: DOMAIN.read_bytes(va, n)) == read


def test_a_buffer_across_two_pages_reads_both():
    va = scratch_va(DOMAIN) + 4096 - 1
    DOMAIN.memory.data[DOMAIN.translate(va, True)] = 0x41
    DOMAIN.memory.data[DOMAIN.translate(va + 1, True)] = 0x42
    assert DOMAIN.read_bytes(va, 2) == b"AB"
    assert DOMAIN.writable_addresses(va, 2)[1] == DOMAIN.translate(va + 1, True)
