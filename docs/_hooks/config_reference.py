"""MkDocs hook: the configuration reference, generated from ``SessionConfig`` at build time.

The page ``configuration.md`` holds the marker ``<!-- session-config-table -->``; this
hook replaces it with one row per dataclass field of :class:`SessionConfig`: its type,
its default, the environment variable ``SessionConfig.from_env`` reads for it (found by
asking ``from_env`` itself, not from a list kept here) and the Flask ``app.config`` key.
An option without a description below fails the build, so a new option cannot ship
undocumented.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sessionware.config import SessionConfig

MARKER = "<!-- session-config-table -->"
_SECRET = "s" * 48

#: What each option means; the rest of each row is read from the code.
MEANING = {
    "secrets": "Signing keys, a list: **the first signs, all verify**. Put a new secret "
    "first to rotate; drop the old one after the longest session lifetime. Each at least "
    "32 characters (`sessionware secret` makes one).",
    "cookie_name": "The session cookie's name. `__Host-` binds it to this host over https "
    "(no Domain, Path=/, Secure); use a plain name such as `sid` for local http.",
    "genid": "A callable returning a new session id (checked for shape); the default is "
    "32 random bytes from `secrets`.",
    "resave": "Write unchanged sessions back on every request (express-session's option; "
    "rarely wanted: it costs a write per request).",
    "save_uninitialized": "Store sessions nothing was written to. Off: a visitor whose "
    "session is never written gets no cookie and costs no storage (lazy sessions).",
    "rolling": "Send the cookie again on every response (only useful with `max_age`).",
    "idle_timeout": "Seconds (or a `timedelta`) of inactivity after which the session "
    "ends; slides with activity, enforced on the server.",
    "absolute_timeout": "Seconds from creation after which the session ends whatever the "
    "activity; never extended (it wins when shorter than the idle timeout).",
    "touch_interval": "How often a read may refresh the idle expiry (reads are not "
    "writes). Default: min(60 s, idle_timeout / 10).",
    "trust_proxy": "`True` or a number of proxy hops: only then do `X-Forwarded-Proto` and "
    "`X-Forwarded-For` count. Leave off unless a proxy you run sets them.",
    "http_only": "`HttpOnly`: scripts cannot read the cookie.",
    "secure": "`True`, `False` or `\"auto\"` (Secure only on https requests). "
    "Prefixed names are always Secure.",
    "same_site": "`\"lax\"`, `\"strict\"`, `\"none\"` (needs `secure=True`) or `None`.",
    "domain": "The cookie's Domain. Leave unset: a Domain shares the cookie with every "
    "subdomain (and `__Host-` forbids it).",
    "path": "The cookie's Path (`__Host-` needs `/`).",
    "max_age": "The cookie's Max-Age in seconds (at most 400 days); `None` makes a "
    "browser-session cookie. The server-side timeouts apply either way.",
    "partitioned": "CHIPS `Partitioned` attribute, for an app embedded in other sites; "
    "needs `secure=True`.",
    "max_size": "Bytes a session's data may take; a larger one is refused with a clear "
    "error, not written.",
    "max_sessions_per_user": "Live sessions one user may hold; what a login past it does "
    "is `max_sessions_policy`. `None`: no cap.",
    "max_sessions_policy": "`\"oldest\"`: a login past the cap ends that device's older "
    "sessions, then the least recently seen; `\"refuse\"`: the new login is refused "
    "(`SessionLimitError`, a 409). Race-free on every store (see [Events](events.md)).",
    "events": "An `Events` object: the app's handlers for logins, failures, lockouts, "
    "revocations and more (see [Events and metrics](events.md)).",
    "max_lifetime": "The longest per-login idle or absolute timeout or cookie Max-Age a "
    "login may ask for (see [Lifetimes and id rotation](lifetimes.md)); at most 400 days.",
    "rotate_every": "Give a session in use a new id once its id is this old (seconds or "
    "`timedelta`); `None`: never. At least 60 s and twice `rotate_grace`.",
    "rotate_grace": "Seconds an old id keeps working after rotation, for requests in flight "
    "(at most 300).",
    "websocket_check_interval": "Seconds between an open WebSocket's looks at its "
    "session: pending writes saved, idle expiry refreshed when the socket was used, and "
    "the socket closed with code 1008 once the session is revoked or expired (see "
    "[WebSockets](websockets.md)).",
    "clock": "A callable returning the time (seconds since the epoch), for tests.",
    "legacy_cookies": "Old framework session cookies (readers from `sessionware.migrate`) "
    "exchanged for server-side sessions on a visitor's first request during a migration "
    "(see the [migration guides](migration/starlette.md)).",
    "store_url": "Where sessions live when no `store=` is given (see "
    "[Choosing a store](stores.md)). Never logged: it may hold a password.",
}

#: Variables whose names do not follow ``SESSION_<OPTION>``.
_ENV_ALIASES = {"secrets": "SESSION_SECRET", "store_url": "SESSION_STORE"}
_FLASK_KEYS = {"secrets": "`SECRET_KEY`, `SECRET_KEY_FALLBACKS`", "clock": "—", "genid": "—"}


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is dataclasses.MISSING:
        return "required"
    value = field.default
    if isinstance(value, bool) or value is None:
        return f"`{value}`"
    if isinstance(value, (int, float)) and field.name.endswith(("timeout", "interval")):
        return f"`{value}` ({_human(float(value))})"
    if isinstance(value, int) and field.name == "max_size":
        return f"`{value}` ({value // 1024} KiB)"
    return f"`{value!r}`"


def _human(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


def _type(field: dataclasses.Field[Any]) -> str:
    text = str(field.type).replace("Callable[[], str]", "callable")
    text = text.replace("Callable[[], float]", "callable")
    text = re.sub(r"Literal\[([^\]]*)\]", r"\1", text)
    return f"`{text}`".replace("|", "\\|")


def _env_var(name: str) -> str:
    """The variable ``from_env`` reads for ``name``, found by trying it, or ``""``."""
    var = _ENV_ALIASES.get(name, f"SESSION_{name.upper()}")
    base = SessionConfig.from_env({"SESSION_SECRET": _SECRET})
    probe = "sqlite:///probe.db" if name == "store_url" else "1234"
    env = {"SESSION_SECRET": _SECRET, var: probe}
    if name == "secrets":
        return f"`{var}` (comma-separated)"
    try:
        changed = SessionConfig.from_env(env)
    except ValueError:
        return f"`{var}`"  # it was read, and refused: still the variable
    return f"`{var}`" if getattr(changed, name) != getattr(base, name) else "—"


def table() -> str:
    """The Markdown table of every ``SessionConfig`` option."""
    rows = [
        "| option | type | default | environment | Flask `app.config` | meaning |",
        "|---|---|---|---|---|---|",
    ]
    missing = []
    for field in dataclasses.fields(SessionConfig):
        meaning = MEANING.get(field.name)
        if meaning is None:
            missing.append(field.name)
            continue
        flask = _FLASK_KEYS.get(field.name, f"`SESSIONWARE_{field.name.upper()}`")
        if field.name == "store_url":
            flask = "`SESSIONWARE_STORE`"
        rows.append(
            f"| `{field.name}` | {_type(field)} | {_default(field)} | {_env_var(field.name)} "
            f"| {flask} | {meaning} |"
        )
    if missing:
        raise RuntimeError(
            f"SessionConfig options without a description in docs/_hooks: {', '.join(missing)}"
        )
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Put the generated table where the configuration page asks for it."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, table())

