"""sessionware: secure server-side sessions for Python web apps.

The adapters load on first use (``sessionware.SessionMiddleware`` imports the ASGI
one), so code that only needs the core, the stores or auth imports no web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sessionware.config import SessionConfig
from sessionware.exceptions import (
    ConfigurationError,
    InvalidSignatureError,
    SessionTooLargeError,
    SessionwareError,
    StoreError,
    StoreUnavailableError,
)
from sessionware.session import Session

if TYPE_CHECKING:
    from sessionware.asgi import SessionMiddleware

__all__ = [
    "ConfigurationError",
    "InvalidSignatureError",
    "Session",
    "SessionConfig",
    "SessionMiddleware",
    "SessionTooLargeError",
    "SessionwareError",
    "StoreError",
    "StoreUnavailableError",
    "__version__",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "SessionMiddleware":
        from sessionware.asgi import SessionMiddleware

        return SessionMiddleware
    raise AttributeError(f"module 'sessionware' has no attribute {name!r}")
