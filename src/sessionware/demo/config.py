"""The library settings the demo runs with, built once from :class:`DemoSettings`.

Over plain http the demo uses unprefixed cookie names (``sid``, ``remember``) and no
``Secure``, because browsers drop ``__Host-`` cookies without https; it says so at
start-up. With ``--tls`` it uses the production set-up: ``__Host-`` names and
``Secure``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sessionware.config import SessionConfig
from sessionware.declaration import CookieDeclaration, declare
from sessionware.demo.settings import DemoSettings
from sessionware.remember import RememberConfig
from sessionware.throttle import LoginThrottle, RegistrationThrottle

__all__ = ["DemoConfig", "build", "declaration"]

#: How long a typed password counts as "recent" for sensitive actions.
RECENT_LOGIN = 10 * 60


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Session, remember-me and throttle settings, all validated at start-up."""

    session: SessionConfig
    remember: RememberConfig
    throttle: LoginThrottle
    registration: RegistrationThrottle = field(default_factory=RegistrationThrottle)


def build(settings: DemoSettings) -> DemoConfig:
    """Read the library's own ``from_env`` settings, with the demo's cookie names."""
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
        session=session, remember=remember, throttle=throttle, registration=registration
    )


def declaration(settings: DemoSettings) -> list[CookieDeclaration]:
    """The demo's cookie declaration, from the same settings the app runs with."""
    cfg = build(settings)
    return declare(cfg.session, remember=cfg.remember, secure=settings.tls)
