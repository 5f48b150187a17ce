"""The library settings the demo runs with, built once from :class:`DemoSettings`.

Over plain http the demo uses unprefixed cookie names (``sid``, ``remember``) and no
``Secure``, because browsers drop ``__Host-`` cookies without https; it says so at
start-up. With ``--tls`` it uses the production set-up: ``__Host-`` names and
``Secure``.

The host names it answers to come from ``ALLOWED_HOSTS`` (comma-separated, ``*`` for
any), else 127.0.0.1, localhost and the address it was told to bind; a request for
any other ``Host`` gets 400 (DNS rebinding, forged absolute URLs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sessionware.config import SessionConfig
from sessionware.csrf.host import AllowedHosts
from sessionware.declaration import CookieDeclaration, declare
from sessionware.demo.settings import DemoSettings
from sessionware.remember import RememberConfig
from sessionware.throttle import LoginThrottle, RegistrationThrottle

__all__ = ["DemoConfig", "allowed_hosts", "build", "cookie_table", "declaration"]

#: How long a typed password counts as "recent" for sensitive actions.
RECENT_LOGIN = 10 * 60


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Session, remember-me and throttle settings, all validated at start-up."""

    session: SessionConfig
    remember: RememberConfig
    throttle: LoginThrottle
    registration: RegistrationThrottle = field(default_factory=RegistrationThrottle)
    #: For ``CSRFMiddleware(allowed_hosts=...)``; None: every host (no bound address known).
    allowed_hosts: tuple[str, ...] | None = None


def allowed_hosts(environ: Mapping[str, str], host: str | None) -> tuple[str, ...] | None:
    """The demo's host names: ``ALLOWED_HOSTS``, else loopback plus the bound ``host``.

    Without either (the app built in-process, not served) nothing is checked. A
    wildcard bind (``0.0.0.0``, ``::``) adds no name: list yours in ``ALLOWED_HOSTS``.
    """
    raw = environ.get("ALLOWED_HOSTS", "").strip()
    if raw:
        names = tuple(name.strip() for name in raw.split(",") if name.strip())
    elif host is None:
        return None
    else:
        names = ("127.0.0.1", "localhost")
        if host not in ("", "0.0.0.0", "::") and host not in names:  # noqa: S104 - compared
            names += (f"[{host}]" if ":" in host else host,)
    AllowedHosts(names)  # a bad entry fails here, at start-up
    return names


def build(settings: DemoSettings, *, host: str | None = None) -> DemoConfig:
    """Read the library's own ``from_env`` settings, with the demo's cookie names.

    ``host`` is the address the server binds, allowed as a ``Host`` name.
    """
    env = dict(settings.environ)
    prefix = "__Host-" if settings.tls else ""
    session = SessionConfig.from_env(
        env,
        secrets=list(settings.secrets),
        cookie_name=prefix + "sid",
        secure=settings.tls,
    )
    remember = RememberConfig.from_env(env, cookie_name=prefix + "remember")
    throttle = LoginThrottle.from_env(env)
    registration = RegistrationThrottle.from_env(env)
    return DemoConfig(
        session=session,
        remember=remember,
        throttle=throttle,
        registration=registration,
        allowed_hosts=allowed_hosts(env, host),
    )


def cookie_table(cfg: DemoConfig, tls: bool) -> list[CookieDeclaration]:
    """Every cookie the demo can set: the library's, then the consent and theme cookies."""
    from sessionware.demo import prefs

    table = declare(cfg.session, remember=cfg.remember, throttle=cfg.throttle, secure=tls)
    return [*table, *prefs.declarations(tls)]


def declaration(settings: DemoSettings) -> list[CookieDeclaration]:
    """The demo's cookie declaration, from the same settings the app runs with."""
    return cookie_table(build(settings), settings.tls)
