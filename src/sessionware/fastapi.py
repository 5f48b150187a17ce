"""FastAPI dependencies: ``CurrentUser`` (401 when nobody is logged in) and ``OptionalUser``.

They are declared through :class:`fastapi.security.APIKeyCookie`, so every route that
uses them shows the session cookie as its security scheme in the OpenAPI docs. The
cookie value itself is never trusted here: the user comes from the server-side
session that ``SessionMiddleware`` loaded. Only this module imports FastAPI.

sessionware's own errors (:class:`~sessionware.exceptions.HTTPError`: 401s, 429s)
are raised here as FastAPI's ``HTTPException`` (:func:`http_exception`), so FastAPI's
handler, and any the app registered for it, answers them like its own.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency
# annotations at run time, and those of the closures below name local variables
# that a string annotation could not be resolved against.

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie

from sessionware.auth import current_user_id
from sessionware.exceptions import HTTPError, LoginRequiredError
from sessionware.users import UserLoader

__all__ = ["CurrentUser", "OptionalUser", "http_exception", "user_dependencies"]


class _LoginRequired(LoginRequiredError, HTTPException):  # type: ignore[misc]
    """Nobody is signed in: FastAPI's own 401 (its handler answers it, with
    ``WWW-Authenticate``), unless the app registered a handler for
    :class:`~sessionware.exceptions.LoginRequiredError`, such as
    :func:`sessionware.redirects.login_redirect`, which then answers pages with a
    redirect to the login page."""

    def __init__(self) -> None:
        LoginRequiredError.__init__(self)
        # RFC 9110 §15.5.2: a 401 names a scheme; FastAPI's APIKey schemes say "APIKey".
        HTTPException.__init__(
            self, self.status_code, self.detail, headers={"WWW-Authenticate": "APIKey"}
        )


def http_exception(exc: HTTPError, headers: Mapping[str, str] | None = None) -> HTTPException:
    """FastAPI's ``HTTPException`` for one of sessionware's errors: its status, detail and
    headers, plus ``headers``."""
    merged = {**exc.headers, **(headers or {})}
    return HTTPException(exc.status_code, exc.detail, headers=merged or None)


def _build(cookie_name: str, loader: UserLoader[Any] | None = None) -> tuple[Any, Any]:
    scheme = APIKeyCookie(
        name=cookie_name,
        scheme_name="session",
        description="Server-side session cookie set at login (HttpOnly).",
        auto_error=False,
    )

    async def optional_user(
        request: Request, _cookie: Annotated[str | None, Security(scheme)]
    ) -> Any:
        if loader is None:
            return current_user_id(request)
        return await loader.get(request)  # once per request, however many ask

    async def current_user(user: Annotated[Any, Depends(optional_user)]) -> Any:
        if user is None:
            raise _LoginRequired()
        return user

    return current_user, optional_user


def user_dependencies(
    cookie_name: str = "__Host-sid", *, loader: UserLoader[Any] | None = None
) -> tuple[Any, Any]:
    """``(CurrentUser, OptionalUser)`` for a session cookie with another name, or handing
    out the app's user objects.

    ``CurrentUser, OptionalUser = user_dependencies("sid")`` when the middleware was
    given ``cookie_name="sid"`` (the name only matters for the OpenAPI docs). With
    ``loader=UserLoader(load)`` they give ``load(user_id)``'s object instead of the id,
    loaded once per request; a ``None`` from ``load`` (a deleted user) is nobody.
    """
    current, optional = _build(cookie_name, loader)
    if loader is None:
        return Annotated[str, Depends(current)], Annotated[str | None, Depends(optional)]
    return Annotated[Any, Depends(current)], Annotated[Any, Depends(optional)]


_current, _optional = _build("__Host-sid")

#: The logged-in user's id; 401 when nobody is logged in: ``async def me(user: CurrentUser)``.
CurrentUser = Annotated[str, Depends(_current)]
#: The logged-in user's id, or None.
OptionalUser = Annotated[str | None, Depends(_optional)]
