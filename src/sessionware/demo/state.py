"""What every demo view needs: the users, the hasher, the renderer, the settings."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from sessionware.auth import current_user_id
from sessionware.demo.config import DemoConfig, build
from sessionware.demo.links import safe_next
from sessionware.demo.render import Renderer
from sessionware.demo.settings import DemoSettings
from sessionware.demo.users import User, UserDB
from sessionware.passwords import PasswordHasher, PasswordPolicy
from sessionware.stores.base import Store

__all__ = ["DemoState", "check_password", "demo", "prepare", "safe_next", "who"]


@dataclass(frozen=True, slots=True)
class DemoState:
    """The app's long-lived parts, kept on ``app.state.demo``."""

    users: UserDB
    hasher: PasswordHasher
    policy: PasswordPolicy
    renderer: Renderer
    config: DemoConfig
    store: Store
    #: Served over https: ``__Host-`` cookie names and ``Secure``.
    tls: bool = False


def prepare(settings: DemoSettings, store: Store | None, host: str | None) -> DemoState:
    """The parts both demo apps (Starlette and Flask) are built from; every setting is
    checked here, before serving."""
    from sessionware.stores import from_url

    cfg = build(settings, host=host)
    store = store if store is not None else from_url(settings.store_url)
    renderer = Renderer(
        store_kind=str(getattr(store, "kind", type(store).__name__)),
        tls=settings.tls,
        idle=cfg.session.idle,
        absolute=cfg.session.absolute,
    )
    return DemoState(
        users=UserDB(settings.users_db),
        hasher=PasswordHasher(),
        policy=PasswordPolicy(),
        renderer=renderer,
        config=cfg,
        store=store,
        tls=settings.tls,
    )


def demo(request: Request) -> DemoState:
    """The demo state of the app serving ``request``."""
    state: DemoState = request.app.state.demo
    return state


def who(request: Request) -> User | None:
    """The signed-in user (cached on the request), or None."""
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    uid = current_user_id(request)
    user = demo(request).users.by_id(uid) if uid is not None else None
    request.state.user = user
    return user


async def check_password(request: Request, user: User | None, password: str) -> bool:
    """Argon2 verification on the hasher's own bounded pool; unknown users cost the same.

    Waiting there holds no thread of Starlette's pool; past the hasher's ``max_wait`` it
    raises :class:`~sessionware.exceptions.HasherBusyError`, which the app answers 503.
    """
    hasher = demo(request).hasher
    stored = user.password_hash if user else None
    return await hasher.offload(hasher.verify_or_dummy, stored, password)
