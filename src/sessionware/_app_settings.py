"""The cookie settings an app runs with, found from outside it (``sessionware cookies``).

A cookie declaration must describe the app that sets the cookies, not an example. The
command line finds the settings in one of three places: the app itself
(``--app module:attr``: a Starlette/FastAPI app, a Flask app, a factory returning one,
or a :class:`~sessionware.config.SessionConfig`), the environment (``SESSION_*``, as
:meth:`SessionConfig.from_env` reads it), or the demo's settings.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sessionware.auth.series import RememberConfig
from sessionware.auth.throttle import LoginThrottle
from sessionware.config import SessionConfig
from sessionware.exceptions import ConfigurationError

__all__ = ["AppSettings", "from_app", "from_environment"]


@dataclass(frozen=True, slots=True)
class AppSettings:
    """The settings that decide which cookies an app sets, and where they came from."""

    session: SessionConfig
    remember: RememberConfig | None
    throttle: LoginThrottle | None
    source: str


def from_environment(environ: Mapping[str, str] | None = None) -> AppSettings:
    """The session cookie as ``SessionConfig.from_env()`` builds it (``SESSION_*``)."""
    env = dict(os.environ if environ is None else environ)
    return AppSettings(SessionConfig.from_env(env), None, None, "the environment (SESSION_*)")


def _import(spec: str) -> tuple[ModuleType, Any]:
    module_name, _, attr = spec.partition(":")
    if not module_name:
        raise ConfigurationError(f"--app {spec!r}: use module:attribute, e.g. myapp.main:app")
    # As uvicorn and flask do: the current folder is where an app module is looked for.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"--app: cannot import {module_name!r} ({exc})") from None
    obj: Any = module
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(
                f"--app: module {module_name!r} has no attribute {attr or 'app'!r}"
            ) from None
    return module, obj


def _from_kwargs(kwargs: Mapping[str, Any], cls: type[Any]) -> Any:
    """The config a middleware's keyword arguments describe (``config=`` or options)."""
    if kwargs.get("config") is not None:
        return kwargs["config"]
    options = {k: v for k, v in kwargs.items() if k not in ("store", "config")}
    if cls is SessionConfig:
        options["secrets"] = options.get("secrets") or []
    return cls(**options)


def _found(obj: Any) -> tuple[SessionConfig | None, RememberConfig | None]:
    """The session and remember-me configs of an app object, if it is one we know."""
    from sessionware.asgi import SessionMiddleware
    from sessionware.remember import RememberMeMiddleware

    if isinstance(obj, SessionConfig):
        return obj, None
    ext = getattr(obj, "extensions", None)
    if isinstance(ext, dict) and "sessionware" in ext:  # Flask, after Sessionware(app)
        flask_ext = ext["sessionware"]
        return flask_ext.core.config, flask_ext.remember
    middleware = getattr(obj, "user_middleware", None)
    if isinstance(middleware, list):  # Starlette and FastAPI: app.add_middleware(...)
        session = remember = None
        for m in middleware:
            if m.cls is SessionMiddleware:
                session = _from_kwargs(m.kwargs, SessionConfig)
            elif m.cls is RememberMeMiddleware:
                remember = _from_kwargs(m.kwargs, RememberConfig)
        return session, remember
    session = remember = None
    seen = 0
    while obj is not None and seen < 50:  # an app wrapped by hand: SessionMiddleware(app, ...)
        if isinstance(obj, SessionMiddleware):
            session = obj.core.config
        elif isinstance(obj, RememberMeMiddleware):
            remember = obj.config
        obj, seen = getattr(obj, "app", None), seen + 1
    return session, remember


def from_app(spec: str) -> AppSettings:
    """The settings of the app named by ``module:attr`` (a factory is called once)."""
    module, obj = _import(spec)
    session, remember = _found(obj)
    if session is None and callable(obj) and not hasattr(obj, "user_middleware"):
        with contextlib.suppress(TypeError):  # not a factory that takes no arguments
            session, remember = _found(obj())
    if session is None:
        raise ConfigurationError(
            f"--app {spec}: found no sessionware session settings there: point it at the "
            "Starlette/FastAPI app (with SessionMiddleware added), the Flask app (with "
            "Sessionware(app)), a factory returning one, or a SessionConfig"
        )
    # The login throttle is usually a module-level object beside the app.
    throttle = next((v for v in vars(module).values() if isinstance(v, LoginThrottle)), None)
    return AppSettings(session, remember, throttle, f"the app {spec}")
