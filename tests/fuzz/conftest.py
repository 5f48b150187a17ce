"""One hypothesis profile for the fuzz tests: ``SESSIONWARE_FUZZ_EXAMPLES`` examples per
test (200 by default; raise it for a longer hunt), no deadline (real stores answer some).

Tests that go through a real store per example (Redis, PostgreSQL) run an eighth of
that (``FUZZ_STORES``), so the whole package stays well under a minute by default.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("SESSIONWARE_FUZZ_EXAMPLES", "200"))
FUZZ_STORES = max(10, EXAMPLES // 8)

settings.register_profile(
    "sessionware-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("CI") == "true",
)
FUZZ = settings.get_profile("sessionware-fuzz")
