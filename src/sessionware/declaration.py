"""The cookie declaration: every cookie an app can set, generated from its settings.

Privacy law (the ePrivacy Directive, GDPR) asks a site to say which cookies it sets,
why, for how long, and whether they are strictly necessary. Writing that table by
hand drifts from the code; :func:`declare` reads it off the same
:class:`~sessionware.config.SessionConfig` (and remember-me settings) the middleware
runs with, so a changed name or timeout changes the declaration too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sessionware.auth._device_cookie import cookie_name as device_cookie_name
from sessionware.config import SessionConfig, seconds
from sessionware.cookies import is_prefixed

__all__ = ["CookieDeclaration", "RememberSettings", "as_table", "declare", "format_duration"]


class RememberSettings(Protocol):
    """What :func:`declare` reads from a remember-me configuration."""

    @property
    def cookie_name(self) -> str: ...

    @property
    def ttl_seconds(self) -> float: ...

    @property
    def secure(self) -> bool | None: ...


class ThrottleSettings(Protocol):
    """What :func:`declare` reads from a login throttle (its device cookie)."""

    @property
    def device_cookie_name(self) -> str | None: ...

    @property
    def device_max_age_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class CookieDeclaration:
    """One cookie the app can set."""

    name: str
    purpose: str
    strictly_necessary: bool
    lifetime: str
    #: Seconds the browser keeps it; ``None`` for a browser-session cookie.
    max_age: float | None
    attributes: str


def format_duration(seconds: float) -> str:
    """``90`` -> ``"1.5 minutes"``, ``86400`` -> ``"1 day"``: the largest unit that fits."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            value = seconds / size
            text = f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    text = f"{seconds:.0f}" if seconds == int(seconds) else f"{seconds:g}"
    return f"{text} second{'' if text == '1' else 's'}"


def _attributes(
    *,
    path: str,
    domain: str | None,
    secure: bool | str,
    http_only: bool,
    same_site: str | None,
    partitioned: bool = False,
) -> str:
    parts = [f"Path={path}"]
    if domain:
        parts.append(f"Domain={domain}")
    if secure == "auto":
        parts.append("Secure on https")
    elif secure:
        parts.append("Secure")
    if http_only:
        parts.append("HttpOnly")
    if same_site:
        parts.append(f"SameSite={same_site.capitalize()}")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def declare(
    config: SessionConfig,
    *,
    remember: RememberSettings | None = None,
    throttle: ThrottleSettings | None = None,
    secure: bool | None = None,
) -> list[CookieDeclaration]:
    """The cookies an app with these settings can set, session cookie first.

    ``secure`` states how ``secure="auto"`` resolves where the app runs (True behind
    https); leave it ``None`` to say "Secure on https".
    """
    idle, absolute = format_duration(config.idle), format_duration(config.absolute)
    max_age = seconds(config.max_age, "max_age")
    browser = format_duration(max_age) if max_age else "browser session"
    lifetime = f"{browser} (server: {idle} idle, {absolute} at most)"
    session_secure: bool | str = config.secure if secure is None else secure
    if is_prefixed(config.cookie_name):
        session_secure = True  # the core always marks prefixed cookies Secure
    out = [
        CookieDeclaration(
            name=config.cookie_name,
            purpose=(
                "Keeps you signed in: a random session id, signed; the session itself "
                "stays on the server. Set only when you sign in."
            ),
            strictly_necessary=True,
            lifetime=lifetime,
            max_age=max_age,
            attributes=_attributes(
                path=config.path,
                domain=config.domain,
                secure=session_secure,
                http_only=config.http_only,
                same_site=config.same_site,
                partitioned=config.partitioned,
            ),
        )
    ]
    if remember is not None:
        # sessionware.remember writes its cookie with Path=/, HttpOnly, SameSite=Lax,
        # and Secure as the session cookie unless told otherwise (or prefixed).
        rsecure: bool | str = session_secure if remember.secure is None else remember.secure
        if is_prefixed(remember.cookie_name):
            rsecure = True
        out.append(
            CookieDeclaration(
                name=remember.cookie_name,
                purpose=(
                    "Signs you back in after the browser restarts: a one-time token that "
                    "changes on every use. Set only when you tick \u201cRemember me\u201d."
                ),
                strictly_necessary=False,
                lifetime=format_duration(remember.ttl_seconds),
                max_age=remember.ttl_seconds,
                attributes=_attributes(
                    path="/", domain=None, secure=rsecure, http_only=True, same_site="lax"
                ),
            )
        )
    if throttle is not None:
        name = device_cookie_name(throttle.device_cookie_name, config.cookie_name)
        out.append(
            CookieDeclaration(
                name=name,
                purpose=(
                    "Marks this browser as one you signed in from, so strangers guessing "
                    "your password cannot lock you out of it. Signs nobody in. Set when "
                    "you sign in."
                ),
                strictly_necessary=True,
                lifetime=format_duration(throttle.device_max_age_seconds),
                max_age=throttle.device_max_age_seconds,
                attributes=_attributes(
                    path="/",
                    domain=None,
                    secure=True if is_prefixed(name) else session_secure,
                    http_only=True,
                    same_site="lax",
                ),
            )
        )
    return out


def as_table(cookies: Sequence[CookieDeclaration]) -> str:
    """The declaration as a plain-text table (for ``sessionware cookies``)."""
    head = ("NAME", "NECESSARY", "LIFETIME", "ATTRIBUTES")
    rows = [
        (c.name, "yes" if c.strictly_necessary else "no (opt-in)", c.lifetime, c.attributes)
        for c in cookies
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in (head, *rows)
    ]
    lines.append("")
    lines.extend(f"{c.name}: {c.purpose}" for c in cookies)
    return "\n".join(lines)
