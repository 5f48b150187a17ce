"""Login and registration throttling: the public names, from :mod:`sessionware.auth.throttle`.

How the budgets work is described there and in docs/security.md, "Login throttling".
"""

from __future__ import annotations

from sessionware.auth.throttle import (
    Attempt,
    LoginThrottle,
    RegistrationThrottle,
    TooManyAttemptsError,
    too_many_attempts,
)

__all__ = [
    "Attempt",
    "LoginThrottle",
    "RegistrationThrottle",
    "TooManyAttemptsError",
    "too_many_attempts",
]
