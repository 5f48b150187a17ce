"""Which requests skip the CSRF check: listed paths, and endpoints marked ``@csrf_exempt``.

Neutral: paths are plain strings and the mark is an attribute on the endpoint. Each
adapter finds the endpoint a request will reach through its own router (the ASGI
middleware asks Starlette's routes, :mod:`sessionware.csrf.asgi`). Anything that
cannot be matched is not exempt: an exemption fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sessionware.exceptions import ConfigurationError

__all__ = ["ExemptPaths", "csrf_exempt", "is_exempt"]

F = TypeVar("F")

_ATTR = "__sessionware_csrf_exempt__"


def csrf_exempt(endpoint: F) -> F:
    """Mark an endpoint (function or class) as exempt: for webhooks only."""
    setattr(endpoint, _ATTR, True)
    return endpoint


def is_exempt(endpoint: Any) -> bool:
    """Whether ``endpoint`` was marked with :func:`csrf_exempt`."""
    return getattr(endpoint, _ATTR, False) is True


class ExemptPaths:
    """``exempt_paths``: exact paths, and prefixes written with a trailing ``*``."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, paths: Iterable[str]) -> None:
        if isinstance(paths, str):
            raise ConfigurationError("exempt_paths is a list of paths, not one string")
        exact: set[str] = set()
        prefixes: list[str] = []
        for value in paths:
            if not isinstance(value, str) or not value.startswith("/"):
                raise ConfigurationError(
                    f"exempt_paths entry {value!r} must be a path starting with /"
                )
            if value.endswith("*"):
                prefixes.append(value[:-1])
            else:
                exact.add(value)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def cover(self, path: str) -> bool:
        """Whether ``path`` (as the app's routes see it) is exempt."""
        if path in self.exact:
            return True
        return bool(self.prefixes) and _plain(path) and path.startswith(self.prefixes)

    def listed(self) -> list[str]:
        """The paths as configured, for the start-up log line."""
        return sorted(self.exact) + [p + "*" for p in self.prefixes]


def _plain(path: str) -> bool:
    """No dot or empty segments that a later layer might resolve into another path."""
    return "//" not in path and not any(seg in (".", "..") for seg in path.split("/"))
