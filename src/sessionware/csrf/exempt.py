"""Which requests skip the CSRF check: listed paths and endpoints marked ``@csrf_exempt``.

The middleware runs before Starlette's router has chosen an endpoint, so a marked
endpoint is found by asking the app's routes the same question the router will
(``route.matches(scope)``, first full match, into mounts). Anything that cannot be
matched is not exempt: an exemption fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any, TypeVar

from sessionware.exceptions import ConfigurationError

__all__ = ["Exemptions", "csrf_exempt"]

Scope = MutableMapping[str, Any]
F = TypeVar("F")

_ATTR = "__sessionware_csrf_exempt__"
_MAX_DEPTH = 8


def csrf_exempt(endpoint: F) -> F:
    """Mark a Starlette/FastAPI endpoint (function or class) as exempt: for webhooks only."""
    setattr(endpoint, _ATTR, True)
    return endpoint


def _marked(obj: Any) -> bool:
    return getattr(obj, _ATTR, False) is True


class Exemptions:
    """``exempt_paths`` (exact, or a prefix ending in ``*``) plus marked endpoints."""

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

    def cover(self, scope: Scope) -> bool:
        """Whether this request skips the check."""
        path = _route_path(scope)
        if path in self.exact:
            return True
        if self.prefixes and _plain(path) and any(path.startswith(p) for p in self.prefixes):
            return True
        endpoint = scope.get("endpoint")
        if endpoint is None:
            endpoint = _match(_routes_of(scope.get("app")), scope)
        return _marked(endpoint)

    def describe(self, app: Any) -> str:
        """The exempt paths and marked routes, for the start-up log line."""
        paths = sorted(self.exact) + [p + "*" for p in self.prefixes]
        routes = sorted(_marked_routes(_routes_of(app), ""))
        return f"paths {paths} and routes {routes}"


def _route_path(scope: Scope) -> str:
    """The path the app's routes see (``root_path`` removed, as Starlette's router does)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _plain(path: str) -> bool:
    """No dot or empty segments that a later layer might resolve into another path."""
    return "//" not in path and not any(seg in (".", "..") for seg in path.split("/"))


def _routes_of(app: Any) -> Sequence[Any]:
    router = getattr(app, "router", app)
    routes = getattr(router, "routes", None)
    return routes if isinstance(routes, Sequence) else ()


def _match(routes: Sequence[Any], scope: Scope, depth: int = 0) -> Any:
    """The endpoint Starlette's router would pick for this request (first full match)."""
    from starlette.routing import Match

    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot judge this request grants no exemption
            return None
        if match is not Match.FULL:
            continue
        endpoint = child.get("endpoint")
        if _marked(endpoint):
            return endpoint
        sub = getattr(route, "routes", None)
        if sub and depth < _MAX_DEPTH:
            return _match(sub, {**scope, **child}, depth + 1)
        return endpoint
    return None


def _marked_routes(routes: Sequence[Any], prefix: str, depth: int = 0) -> list[str]:
    found = []
    for route in routes:
        path = prefix + str(getattr(route, "path", ""))
        if _marked(getattr(route, "endpoint", None)):
            found.append(path)
        elif _marked(getattr(route, "app", None)):
            found.append(path + "/*")
        else:
            sub = getattr(route, "routes", None)
            if sub and depth < _MAX_DEPTH:
                found.extend(_marked_routes(sub, path, depth + 1))
    return found
