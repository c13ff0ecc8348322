"""The paravirtual VMM (Xen-style): domains, validated direct paging, event channels, grant
tables, the balloon and the hypercall table.  The contract is docs/paravirtual-abi.md; the
design and measurements are in docs/paravirtualization.md; the strategy that runs it is
`toyvisor.vmm.strategies.paravirtual`."""

from .abi import HypercallError
from .domain import Domain, DomainSnapshot, DomainVM, build_domain
from .hypercalls import HYPERCALLS, dispatch, reference_markdown

__all__ = ["HYPERCALLS", "Domain", "DomainSnapshot", "DomainVM", "HypercallError",
           "build_domain", "dispatch", "reference_markdown"]
