"""The demo's words and headers, shared by the Starlette app and the Flask app.

Framework-free: the error pages' titles and texts, the security headers every
response carries, and the rule for which responses are tied to a session.
"""

from __future__ import annotations

import re
from typing import Any

from sessionware.passwords import PasswordPolicy
from sessionware.session import BaseSession

__all__ = [
    "BAD_LOGIN",
    "CSP",
    "HSTS",
    "MAX_FIELDS",
    "MESSAGES",
    "SECURITY_HEADERS",
    "TITLES",
    "USERNAME",
    "registration_problem",
    "security_headers",
    "tied_to_session",
]

#: Titles and texts of the error pages the app answers itself.
TITLES = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Please sign in", "You need to be signed in to do that."),
    403: ("Not allowed", "You are not allowed to do that."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Not allowed here", "This address does not accept that kind of request."),
    429: (
        "Too many attempts",
        "There were too many failed sign-in attempts. For your account's safety, "
        "please wait before trying again.",
    ),
}

#: The library's plain-text refusals, re-rendered as pages for browsers.
MESSAGES = {
    403: (
        "This request was refused",
        "The form did not come from this site, or it was open too long. Nothing was "
        "changed. Go back, reload the page and try again.",
    ),
    413: (
        "This form is too large",
        "The form sent more data than this site accepts. Nothing was changed.",
    ),
    503: (
        "Temporarily unavailable",
        "The session store cannot be reached right now, so nobody can be signed in. "
        "This usually clears up within seconds.",
    ),
}

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
)
#: One year, and the subdomains (RFC 6797 §6.1); no ``preload``: that is a site's own call.
HSTS = ("strict-transport-security", "max-age=31536000; includeSubDomains")

USERNAME = re.compile(r"[A-Za-z0-9._-]{3,32}")
BAD_LOGIN = "Wrong username or password."
#: The sign-in and registration forms have at most five fields (with ``_csrf``); a body
#: with more is a 400 before it is parsed further, and no form takes a file.
MAX_FIELDS = 8


def registration_problem(policy: PasswordPolicy, username: str, password: str) -> str | None:
    """What is wrong with a registration form (shown to the user), or None: the same
    rules, in the same words, on both demo apps."""
    if not USERNAME.fullmatch(username):
        return "Choose a username of 3 to 32 letters, digits, dots, dashes or underscores."
    problems = policy.problems(password, user_inputs=[username])
    return " ".join(problems) if problems else None


def security_headers(https: bool) -> tuple[tuple[str, str], ...]:
    """The headers every demo response carries; HSTS only on https."""
    return (*SECURITY_HEADERS, HSTS) if https else SECURITY_HEADERS


def tied_to_session(session: Any) -> bool:
    """Whether a response shows or changes a session (so: no-store, Vary: Cookie)."""
    return isinstance(session, BaseSession) and bool(
        not session.is_new or session.destroyed or session.get_meta("uid")
    )
