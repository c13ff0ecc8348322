"""toyvisor.vmm.bt: the binary translator.

Guest code is translated block by block (`block`) into generated Python functions (`codegen`)
kept in a QEMU-style translation cache with per-page invalidation and chaining (`engine`); every
sensitive or privileged instruction becomes a callout (`callouts`).  On bare metal with
`DirectCallouts` the translator computes exactly what the interpreter does; a VMM supplies its
own callouts to emulate those instructions against the virtual CPU.
"""

from .block import DEFAULT_MAX_BLOCK, Block
from .callouts import Callouts, DirectCallouts
from .engine import Translator, TranslatorStats

__all__ = ["Block", "Callouts", "DEFAULT_MAX_BLOCK", "DirectCallouts", "Translator",
           "TranslatorStats"]
