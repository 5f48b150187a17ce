"""Where the demo may send a browser next: local paths only (a leaf module)."""

from __future__ import annotations

from typing import Any

from sessionware.redirects import is_local_path

__all__ = ["safe_next"]


def safe_next(value: Any, default: str = "/dashboard") -> str:
    """A local path to go to after login, or ``default``: never another site
    (:func:`sessionware.redirects.is_local_path`, the library's rule)."""
    return str(value) if is_local_path(value) else default
