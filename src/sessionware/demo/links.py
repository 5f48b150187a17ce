"""Where the demo may send a browser next: local paths only (a leaf module)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["safe_next"]


def safe_next(value: Any, default: str = "/dashboard") -> str:
    """A local path to go to after login, or ``default``: never another site.

    Refuses scheme-relative (``//evil``), backslash (``/\\evil``, which browsers read
    as ``//``), absolute URLs and control characters (OWASP unvalidated redirects).
    """
    if not isinstance(value, str) or not value or len(value) > 512:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
