"""Where to send a browser: a safe ``next``, the login page's URL, and "login required"
answered as a redirect for pages and a 401 for API calls (Flask-Login's ``login_view``).

Framework-neutral: each function takes the framework's request (Starlette, FastAPI,
Flask, a WSGI request) or a :class:`~sessionware.request.RequestView`. For Starlette
and FastAPI, :func:`login_redirect` is the exception handler that turns
:class:`~sessionware.exceptions.LoginRequiredError` (raised by ``require_user``,
:class:`~sessionware.users.UserLoader.require`, the FastAPI ``CurrentUser`` of
:func:`sessionware.fastapi.user_dependencies` with a loader) into the right answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sessionware.exceptions import HTTPError, LoginRequiredError
from sessionware.request import view_of

__all__ = ["is_local_path", "login_redirect", "login_url", "safe_next", "wants_api"]

#: Longest ``next`` kept: a path and query, not a payload.
MAX_NEXT = 2048


def is_local_path(value: object) -> bool:
    """Whether ``value`` is a path on this site that no browser reads as another site.

    Only an absolute path (``/orders?page=2``) passes. Refused: absolute and
    scheme-relative URLs (``https://evil.example``, ``//evil.example``), any backslash
    (browsers read ``/\\evil`` as ``//evil``), whitespace and control characters
    (browsers drop tabs and newlines, so ``/\\t/evil`` would become ``//evil``), and
    text longer than :data:`MAX_NEXT`.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NEXT:
        return False
    if value[0] != "/" or value[:2] == "//" or "\\" in value:
        return False
    if not value.isprintable() or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    return not (parts.scheme or parts.netloc)


def safe_next(request: Any, value: object, default: str = "/") -> str:
    """``value`` if it is a local path (:func:`is_local_path`), else ``default``:
    where to go after login, never another site (OWASP unvalidated redirects).

    ``request`` is taken for symmetry with :func:`login_url` and is not read: the rule
    is the same on every site.
    """
    del request
    return value if is_local_path(value) else default  # type: ignore[return-value]


def here(request: Any) -> str:
    """This request's path and query, re-encoded, as a ``next`` value."""
    carrier = _carrier(request)
    if "PATH_INFO" in carrier:  # WSGI
        wsgi = str(carrier.get("SCRIPT_NAME", "")) + str(carrier.get("PATH_INFO", ""))
        path = wsgi.encode("latin-1", "replace").decode("utf-8", "replace")
        query = str(carrier.get("QUERY_STRING", ""))
    else:  # ASGI
        path = str(carrier.get("path", "/"))
        raw = carrier.get("raw_path")
        if isinstance(raw, bytes) and unquote(raw.decode("latin-1")) == path:
            path = raw.decode("latin-1")  # as sent: an encoded %2F stays encoded
        root = str(carrier.get("root_path", ""))
        if not path.startswith(root):
            path = root + path
        query = bytes(carrier.get("query_string", b"")).decode("latin-1")
    path = quote(path, safe="/:@!$&'()*+,;=~%")
    target = f"{path}?{query}" if query else path
    return target if is_local_path(target) else "/"


def login_url(request: Any, login_path: str = "/login", *, next_param: str = "next") -> str:
    """The login page's URL with this request's path as ``next``: ``/login?next=/orders``.

    The page the browser asked for comes back through :func:`safe_next` after login;
    a login page asked for itself gets no ``next``.
    """
    if not is_local_path(login_path):
        raise ValueError("login_path must be a path on this site, e.g. '/login'")
    target = here(request)
    if urlsplit(target).path == urlsplit(login_path).path:
        return login_path
    joiner = "&" if "?" in login_path else "?"
    return f"{login_path}{joiner}{quote(next_param)}={quote(target, safe='/')}"


def wants_api(request: Any) -> bool:
    """Whether a redirect to an HTML page would not help this request: it prefers JSON
    to HTML, sends JSON, or says it is a script (``X-Requested-With``, as htmx and
    jQuery do); browsers navigating to a page ask for ``text/html`` first."""
    headers = {k.lower(): v for k, v in view_of(request).headers}
    if b"x-requested-with" in headers or b"hx-request" in headers:
        return True
    if headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"application/json":
        return True
    return _quality(headers.get(b"accept", b""), "application/json") > _quality(
        headers.get(b"accept", b""), "text/html"
    )


def _quality(accept: bytes, kind: str) -> float:
    """The q-value ``accept`` gives ``kind`` (exact type, then ``type/*``, then ``*/*``)."""
    best: dict[str, float] = {}
    for item in accept.decode("latin-1").split(",")[:32]:
        name, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(val), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        best[name.lower()] = max(q, best.get(name.lower(), 0.0))
    major = kind.split("/")[0] + "/*"
    for name in (kind, major, "*/*"):
        if name in best:
            return best[name]
    return 0.0


def login_redirect(
    login_path: str = "/login", *, next_param: str = "next"
) -> Callable[[Any, Exception], Awaitable[Any]]:
    """An exception handler for Starlette and FastAPI: a page request that needs a login
    is redirected (303) to :func:`login_url`; an API request gets the 401.

    ``app.add_exception_handler(LoginRequiredError, login_redirect("/login"))``, or
    ``Starlette(exception_handlers={LoginRequiredError: login_redirect("/login")})``.
    """
    if not is_local_path(login_path):
        raise ValueError("login_path must be a path on this site, e.g. '/login'")
    from starlette.responses import JSONResponse, RedirectResponse, Response

    async def handler(request: Any, exc: Exception) -> Response:
        if isinstance(exc, LoginRequiredError) and not wants_api(request):
            url = login_url(request, login_path, next_param=next_param)
            return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})
        status = exc.status_code if isinstance(exc, HTTPError) else 401
        detail = exc.detail if isinstance(exc, HTTPError) else "Not authenticated"
        headers = exc.headers if isinstance(exc, HTTPError) else {}
        return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)

    return handler


def _carrier(request: Any) -> MutableMapping[str, Any]:
    view = view_of(request)
    for place in ("scope", "environ"):
        carrier = getattr(view, place, None)
        if isinstance(carrier, MutableMapping):
            return carrier
    raise TypeError(f"cannot read the path of {type(request).__name__}")
