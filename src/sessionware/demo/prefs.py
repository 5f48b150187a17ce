"""The demo's one non-essential cookie, a theme, set only after the visitor agrees.

The consent pattern a site needs for anything that is not strictly necessary
(ePrivacy Directive art. 5(3)): nothing is set for a visitor who has not chosen; the
banner's "Accept" records the choice and allows the theme cookie; "Decline" records
the choice and removes it. The choice itself is kept in a strictly necessary cookie
(remembering a refusal is what stops the banner from asking on every page), and it
can be changed on the cookie page. Framework-free: both demo apps read and write
these cookies through the functions here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sessionware.cookies import cookie_values, format_set_cookie
from sessionware.declaration import CookieDeclaration, format_duration

__all__ = [
    "CONSENT_MAX_AGE",
    "THEME_MAX_AGE",
    "Prefs",
    "consent_cookies",
    "declarations",
    "read",
    "theme_cookie",
]

Choice = Literal["all", "necessary"]
Theme = Literal["light", "dark"]

#: Six months, then the banner asks again (the CNIL's recommendation for a choice).
CONSENT_MAX_AGE = 180 * 86400
THEME_MAX_AGE = 365 * 86400
_CHOICES: tuple[Choice, ...] = ("all", "necessary")
_THEMES: tuple[Theme, ...] = ("light", "dark")


@dataclass(frozen=True, slots=True)
class Prefs:
    """What this browser chose: nothing yet (None), and its theme if it allowed one."""

    consent: Choice | None = None
    theme: Theme | None = None


def _names(tls: bool) -> tuple[str, str]:
    prefix = "__Host-" if tls else ""
    return prefix + "consent", prefix + "theme"


def _first(header: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    for value in cookie_values(header, name):
        if value in allowed:
            return value
    return None


def read(cookie_header: str | None, tls: bool) -> Prefs:
    """The visitor's choices from the request's Cookie header; unknown values are ignored."""
    consent_name, theme_name = _names(tls)
    consent = _first(cookie_header, consent_name, _CHOICES)
    theme = _first(cookie_header, theme_name, _THEMES) if consent == "all" else None
    return Prefs(consent=consent, theme=theme)  # type: ignore[arg-type]


def _cookie(name: str, value: str, max_age: int, tls: bool) -> str:
    return format_set_cookie(name, value, max_age=max_age, secure=tls, same_site="lax")


def consent_cookies(choice: str, tls: bool) -> list[str]:
    """Set-Cookie values recording ``choice`` ("all" or "necessary"); a refusal also
    removes the theme cookie. Empty for any other value."""
    if choice not in _CHOICES:
        return []
    consent_name, theme_name = _names(tls)
    out = [_cookie(consent_name, choice, CONSENT_MAX_AGE, tls)]
    if choice == "necessary":
        out.append(_cookie(theme_name, "", 0, tls))
    return out


def theme_cookie(theme: str, prefs: Prefs, tls: bool) -> str | None:
    """The Set-Cookie value keeping ``theme``, or None: without consent, nothing is set."""
    if prefs.consent != "all" or theme not in _THEMES:
        return None
    return _cookie(_names(tls)[1], theme, THEME_MAX_AGE, tls)


def declarations(tls: bool) -> list[CookieDeclaration]:
    """The two cookies for the cookie declaration."""
    consent_name, theme_name = _names(tls)
    attributes = "Path=/; " + ("Secure; " if tls else "") + "HttpOnly; SameSite=Lax"
    return [
        CookieDeclaration(
            name=consent_name,
            purpose=(
                "Remembers whether you accepted or declined non-essential cookies, so "
                "the question is not asked on every page. Set only when you choose."
            ),
            strictly_necessary=True,
            lifetime=format_duration(CONSENT_MAX_AGE),
            max_age=CONSENT_MAX_AGE,
            attributes=attributes,
        ),
        CookieDeclaration(
            name=theme_name,
            purpose=(
                "Remembers the light or dark theme you picked. Set only if you accepted "
                "non-essential cookies and picked a theme; removed when you decline."
            ),
            strictly_necessary=False,
            lifetime=format_duration(THEME_MAX_AGE),
            max_age=THEME_MAX_AGE,
            attributes=attributes,
        ),
    ]
