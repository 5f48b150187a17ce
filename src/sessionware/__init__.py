"""sessionware: secure server-side sessions for Python web apps."""

from __future__ import annotations

from sessionware.asgi import SessionMiddleware
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
