"""Shared test configuration: hypothesis profiles.

`ci` (the default) keeps the whole suite inside CI's budget: bounded, derandomized examples and no
deadline (CI machines are noisy). `nightly` runs many more examples for a deep search:
`HYPOTHESIS_PROFILE=nightly pytest`.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "nightly",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
