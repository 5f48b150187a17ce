"""The demo's words and headers, shared by the Starlette app and the Flask app.

Framework-free: the error pages' titles and texts, the security headers every
response carries, and the rule for which responses are tied to a session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sessionware.csrf.check import STALE
from sessionware.demo.links import safe_next
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
    "Refused",
    "device_order",
    "field_text",
    "password_errors",
    "refused",
    "registration_errors",
    "registration_problem",
    "reload_target",
    "security_headers",
    "stale_redirect",
    "tied_to_session",
    "with_notice",
]

#: Titles and texts of the error pages the app answers itself.
TITLES = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Please sign in", "Please sign in to see that page."),
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
        "The form did not come from this site, so nothing was changed. If you sent it "
        "yourself, go back to the page, reload it and try again.",
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

#: A 403 whose token, not its origin, failed: the form came from this site (the origin
#: check passed) but was rendered for another session, so the page is out of date.
STALE_PAGE = (
    "This page was out of date",
    "You signed in or out in another tab (or the page was open a long time) after this "
    "page was shown, so its form was not sent. Nothing was changed. Reload the page and "
    "try again.",
)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; "
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


def registration_errors(
    policy: PasswordPolicy, username: str, password: str, confirm: str | None
) -> dict[str, str]:
    """Every problem of a registration form at once, by field (shown next to each).

    ``confirm`` is None when the form had no confirmation field (a script posting
    the two fields the API documents); a browser's form always has it.
    """
    errors: dict[str, str] = {}
    if not USERNAME.fullmatch(username):
        errors["username"] = (
            "Choose a username of 3 to 32 letters, digits, dots, dashes or underscores."
        )
    problems = policy.problems(password, user_inputs=[username])
    if problems:
        errors["password"] = " ".join(problems)
    if confirm is not None and confirm != password:
        errors["confirm_password"] = "The two passwords are not the same."
    return errors


def password_errors(
    policy: PasswordPolicy, username: str, current: str, new: str, confirm: str | None
) -> dict[str, str]:
    """The new password's problems, by field (the current one is checked separately,
    under the throttle)."""
    errors: dict[str, str] = {}
    problems = policy.problems(new, user_inputs=[username])
    if new and new == current:
        problems.append("Choose a password different from the current one.")
    if problems:
        errors["new_password"] = " ".join(problems)
    if confirm is not None and confirm != new:
        errors["confirm_password"] = "The two new passwords are not the same."
    return errors


Refused = tuple[str, str, bool]


def refused(status: int, body: str) -> Refused:
    """Title, text and "out of date" for a library refusal (``"Forbidden: <reason>"``).

    A CSRF *token* refusal comes after the origin check passed: the form is this
    site's, rendered for a session that has since changed (another tab signed in or
    out), so the page says that instead of "the form did not come from this site".
    """
    reason = body.partition(":")[2].strip()
    if status == 403 and reason.startswith("CSRF token"):
        return (*STALE_PAGE, True)
    title, text = MESSAGES[status]
    return title, text, False


def stale_redirect(path: str, reason: str, signed_in: bool, nxt: str | None) -> str | None:
    """Where a stale sign-in or registration form goes when its sender is already signed
    in (they are where they meant to be), or None."""
    if signed_in and reason.endswith(STALE) and path in ("/login", "/register"):
        return safe_next(nxt) if path == "/login" else "/dashboard"
    return None


def reload_target(referer: str | None) -> str:
    """The page a form was sent from (its path on this site), for a Reload button."""
    if not referer:
        return "/"
    parts = urlsplit(referer)
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""), "/")


D = TypeVar("D")


def device_order(devices: Iterable[D]) -> list[D]:
    """This device first, then by sign-in time, newest first: an order that does not
    move while the list is being read (last-seen times change with every request)."""

    def key(d: Any) -> tuple[bool, float, str]:
        return (not d.current, -(d.created or 0), d.handle)

    return sorted(devices, key=key)


def field_text(form: Mapping[str, Any], name: str) -> str | None:
    """A text field of a form, or None when the form did not have it."""
    value = form.get(name)
    return value if isinstance(value, str) else None


def with_notice(path: str, code: str) -> str:
    """``path`` with ``?m=code`` (any earlier notice replaced): a message for the next
    page that needs no session, so no cookie."""
    parts = urlsplit(path)
    query = [q for q in parts.query.split("&") if q and not q.startswith("m=")]
    query.append(f"m={code}")
    return f"{parts.path}?{'&'.join(query)}"


def security_headers(https: bool) -> tuple[tuple[str, str], ...]:
    """The headers every demo response carries; HSTS only on https."""
    return (*SECURITY_HEADERS, HSTS) if https else SECURITY_HEADERS


def tied_to_session(session: Any) -> bool:
    """Whether a response shows or changes a session (so: no-store, Vary: Cookie)."""
    return isinstance(session, BaseSession) and bool(
        not session.is_new or session.destroyed or session.get_meta("uid")
    )
