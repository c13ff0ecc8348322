"""toyvisor.testing: property-test isolation guarantees of guest kernels and VMMs.

See docs/testing-isolation.md.  `strategies` generates guest programs (hypothesis strategies);
`Program` is one generated program, printed as assembly source.
"""

from .program import Instr, Program

__all__ = ["Instr", "Program"]
