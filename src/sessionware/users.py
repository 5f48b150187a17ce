"""The app's user object for this request, loaded once: ``UserLoader``.

The session holds only the user's id (see :mod:`sessionware.auth`); handlers want the
user: name, roles, the row. ``UserLoader(load)`` wraps the app's own function from an
id to a user (sync or async, returning ``None`` for an id that no longer names a user,
e.g. a deleted account) and calls it at most once per request, however many
handlers, dependencies and templates ask. A ``None`` counts as nobody signed in.

Starlette: ``user = await users.get(request)`` or ``await users.require(request)``
(a 401, or a redirect to login with :func:`sessionware.redirects.login_redirect`).
FastAPI: ``CurrentUser, OptionalUser = user_dependencies(loader=users)``. Sync code
(WSGI): ``users.get_sync(request)`` with a sync ``load``. Flask keeps Flask-Login's
``@user_loader`` (:mod:`sessionware.flask`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

from sessionware.auth.current import current_user_id
from sessionware.exceptions import ConfigurationError, LoginRequiredError
from sessionware.request import view_of

__all__ = ["UserLoader"]

U = TypeVar("U")


class UserLoader(Generic[U]):
    """Load the signed-in user's object once per request, with the app's ``load(user_id)``."""

    def __init__(self, load: Callable[[str], U | None] | Callable[[str], Awaitable[U | None]]):
        if not callable(load):
            raise ConfigurationError("UserLoader(load): load must be a function of a user id")
        self._load = load
        self._is_async = inspect.iscoroutinefunction(load) or inspect.iscoroutinefunction(
            getattr(load, "__call__", None)  # noqa: B004 - a callable object's own method
        )
        # One state key per loader: two loaders in one app (users, admins) never mix.
        self._key = f"sessionware.user.{id(self):x}"

    async def get(self, request: Any) -> U | None:
        """The signed-in user's object, or None (nobody, or ``load`` found no such user)."""
        state = view_of(request).state
        user_id = current_user_id(request)
        cached = state.get(self._key)
        if cached is not None and cached[0] == user_id:
            return cast("U | None", cached[1])
        user: Any = None
        if user_id is not None:
            user = self._load(user_id)
            if inspect.isawaitable(user):
                user = await user
        state[self._key] = (user_id, user)  # keyed by id: a login in this request reloads
        return cast("U | None", user)

    async def require(self, request: Any) -> U:
        """The signed-in user's object; :class:`LoginRequiredError` (a 401) if none."""
        user = await self.get(request)
        if user is None:
            raise LoginRequiredError()
        return user

    def get_sync(self, request: Any) -> U | None:
        """:meth:`get` for sync code (a WSGI app); ``load`` must then be a sync function."""
        if self._is_async:
            raise ConfigurationError(
                "this UserLoader's load is async: use `await users.get(request)`, or give "
                "sync code a sync load function"
            )
        state = view_of(request).state
        user_id = current_user_id(request)
        cached = state.get(self._key)
        if cached is not None and cached[0] == user_id:
            return cast("U | None", cached[1])
        user: Any = None if user_id is None else self._load(user_id)
        if inspect.isawaitable(user):
            raise ConfigurationError("this UserLoader's load returned an awaitable: use get()")
        state[self._key] = (user_id, user)
        return cast("U | None", user)
