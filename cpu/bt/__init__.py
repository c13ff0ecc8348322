"""toyvisor.cpu.bt: binary translation of guest code to Python functions (the "fast" engine).

Guest code is translated block by block (`block`) into generated Python functions (`codegen`)
kept in a QEMU-style translation cache with per-page invalidation and chaining (`engine`); every
sensitive or privileged instruction becomes a callout (`callouts`).  With `DirectCallouts` the
translator computes exactly what the interpreter does: that is `Machine.run(engine="fast")`.  A
VMM supplies its own callouts to emulate those instructions against the virtual CPU
(`toyvisor.vmm.bt` re-exports these names for it).

Why here and not under `toyvisor.vmm`: the translator runs a `CPU` and needs nothing from a VMM
(the callout protocol is its only seam), while the machine's own fast engine needs the
translator; keeping it in the machine package keeps dependencies pointing one way, vmm -> cpu.
"""

from .block import DEFAULT_MAX_BLOCK, Block
from .callouts import Callouts, DirectCallouts
from .engine import Translator, TranslatorStats

__all__ = ["Block", "Callouts", "DEFAULT_MAX_BLOCK", "DirectCallouts", "Translator",
           "TranslatorStats"]
