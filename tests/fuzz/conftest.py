"""One hypothesis profile for the fuzz tests: ``SESSIONWARE_FUZZ_EXAMPLES`` examples per
test (200 by default; raise it for a longer hunt), no deadline (real stores answer some)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "sessionware-fuzz",
    max_examples=int(os.environ.get("SESSIONWARE_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("CI") == "true",
)
FUZZ = settings.get_profile("sessionware-fuzz")
