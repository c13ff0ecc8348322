"""toyvisor.vmm.bt: the binary translator, as the VMMs use it.

The translator itself lives in `toyvisor.cpu.bt` (it is also the machine's "fast" engine); a VMM
drives it with its own `Callouts` (the sensitive and privileged instructions of translated code)
and `Translator.translate_cpls` (the rings whose code is translated).  The names below are that
package's, re-exported so VMM code and users keep one import.
"""

from toyvisor.cpu.bt import (DEFAULT_MAX_BLOCK, Block, Callouts, DirectCallouts, Translator,
                             TranslatorStats)

__all__ = ["Block", "Callouts", "DEFAULT_MAX_BLOCK", "DirectCallouts", "Translator",
           "TranslatorStats"]
