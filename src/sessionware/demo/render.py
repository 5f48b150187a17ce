"""Templates, their filters, flash messages and the error pages.

Flash messages live in the session, so they exist only for signed-in users: an
anonymous visitor must get no cookie, so the few messages they see (signed out,
session expired) come from a fixed list chosen by a query parameter, never echoed.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sessionware import __version__, _dates
from sessionware.csrf import csrf_token
from sessionware.declaration import format_duration
from sessionware.demo import prefs
from sessionware.demo.links import safe_next
from sessionware.exceptions import ConfigurationError
from sessionware.flash import flash as flash_message
from sessionware.flash import get_flashed_messages

__all__ = ["NOTICES", "Renderer", "flash", "take_flashes", "wants_json"]

#: Messages an anonymous page may show, picked by ``?m=<code>``: never user-supplied text.
NOTICES: dict[str, tuple[str, str]] = {
    "signed-out": ("ok", "You have signed out."),
    "expired": ("info", "Your session has ended. Please sign in again."),
    "consent-all": ("ok", "Thank you: pick a light or dark theme at the bottom of any page."),
    "consent-necessary": ("ok", "Only strictly necessary cookies will be set."),
    "theme": ("ok", "Theme saved in a cookie on this browser."),
}


def flash(request: Any, kind: str, text: str) -> None:
    """Keep a message for the next page (``sessionware.flash``: parallel requests'
    messages all land, each shown once)."""
    flash_message(request, text, kind)


def take_flashes(request: Any, code: str | None) -> list[tuple[str, str]]:
    """The waiting messages of ``request``'s session (taken out), then the notice
    ``?m=code`` picks."""
    try:
        out: list[tuple[str, str]] = get_flashed_messages(request, with_categories=True)
    except ConfigurationError:
        out = []  # an error page with no session (the store is down): no messages
    if code in NOTICES:
        out.append(NOTICES[code])
    return out


def _take_flashes(request: Request) -> list[tuple[str, str]]:
    return take_flashes(request, request.query_params.get("m"))


def wants_json(accept: str, path: str) -> bool:
    """Whether an error is answered in JSON: the client asked for it, or the API path."""
    return "application/json" in accept or path == "/me"


def error_json(title: str, message: str, retry_after: int | None) -> dict[str, Any]:
    """An error's JSON body."""
    body: dict[str, Any] = {"error": title, "detail": message}
    if retry_after:
        body["retry_after"] = retry_after
    return body


def error_context(
    status: int,
    title: str,
    message: str,
    retry_after: int | None,
    links: list[tuple[str, str]] | None,
) -> dict[str, Any]:
    """The context of ``error.html``."""
    return {
        "status": status,
        "title": title,
        "message": message,
        "retry_after": retry_after,
        "links": links if links is not None else [("/", "Back to the start page")],
    }


def _csrf(request: Request) -> str:
    """This request's CSRF token; none on pages served outside the CSRF middleware (503)."""
    try:
        return csrf_token(request)
    except RuntimeError:
        return ""


def _browser(ua: str | None) -> str:
    """A short human name for a user agent string (good enough for a device list)."""
    if not ua:
        return "Unknown browser"
    low = ua.lower()
    name = "Browser"
    for needle, label in (
        ("edg/", "Edge"),
        ("headlesschrome", "Headless Chrome"),
        ("chrome/", "Chrome"),
        ("chromium", "Chromium"),
        ("firefox/", "Firefox"),
        ("safari/", "Safari"),
        ("curl/", "curl"),
        ("python-httpx", "httpx"),
        ("python", "Python"),
    ):
        if needle in low:
            name = label
            break
    for needle, os_name in (
        ("android", "Android"),
        ("iphone", "iPhone"),
        ("ipad", "iPad"),
        ("windows", "Windows"),
        ("mac os", "macOS"),
        ("linux", "Linux"),
    ):
        if needle in low:
            return f"{name} on {os_name}"
    return name


def _here(path: str, query: str) -> str:
    """This page's local address, where the consent and theme forms come back to."""
    return safe_next(path + (f"?{query}" if query else ""), "/")


class Renderer:
    """Renders pages with the context every page needs."""

    def __init__(self, *, store_kind: str, tls: bool, idle: float, absolute: float) -> None:
        self.env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["when"] = _dates.when
        self.env.filters["date"] = _dates.date
        self.env.filters["ago"] = _dates.ago
        self.env.filters["iso"] = _dates.iso
        self.env.filters["duration"] = format_duration
        self.env.filters["browser"] = _browser
        self.tls = tls
        self.globals: dict[str, Any] = {
            "version": __version__,
            "store_kind": store_kind,
            "tls": tls,
            "idle": format_duration(idle),
            "absolute": format_duration(absolute),
            "timezone": datetime.datetime.now().astimezone().tzname() or "local time",
        }

    def render(
        self,
        name: str,
        context: dict[str, Any] | None,
        *,
        user: Any,
        csrf: str,
        flashes: list[tuple[str, str]],
        request: Any = None,
        cookie_header: str | None = None,
        path: str = "/",
    ) -> str:
        """Render ``name`` with what every page shows; framework-free."""
        ctx: dict[str, Any] = {
            **self.globals,
            "request": request,
            "prefs": prefs.read(cookie_header, self.tls),
            "here": path,
            "user": user,
            "csrf": csrf,
            "flashes": flashes,
            "page": name.removesuffix(".html"),
        }
        ctx.update(context or {})
        return self.env.get_template(name).render(ctx)

    def page(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """Render ``name`` with the user, CSRF token and flashes filled in."""
        html = self.render(
            name,
            context,
            user=getattr(request.state, "user", None),
            csrf=_csrf(request),
            flashes=_take_flashes(request),
            request=request,
            cookie_header=request.headers.get("cookie"),
            path=_here(request.url.path, request.url.query),
        )
        return HTMLResponse(html, status_code=status, headers=headers)

    def error(
        self,
        request: Request,
        status: int,
        title: str,
        message: str,
        *,
        retry_after: int | None = None,
        links: list[tuple[str, str]] | None = None,
    ) -> Response:
        """An error page, or JSON for clients that asked for JSON."""
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        if wants_json(request.headers.get("accept", ""), request.url.path):
            body = error_json(title, message, retry_after)
            return JSONResponse(body, status_code=status, headers=headers)
        return self.page(
            request,
            "error.html",
            error_context(status, title, message, retry_after, links),
            status=status,
            headers=headers,
        )
