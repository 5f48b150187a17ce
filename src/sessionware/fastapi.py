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

__all__ = ["CurrentUser", "OptionalUser", "http_exception", "user_dependencies"]


def http_exception(exc: HTTPError, headers: Mapping[str, str] | None = None) -> HTTPException:
    """FastAPI's ``HTTPException`` for one of sessionware's errors: its status, detail and
    headers, plus ``headers``."""
    merged = {**exc.headers, **(headers or {})}
    return HTTPException(exc.status_code, exc.detail, headers=merged or None)


def _build(cookie_name: str) -> tuple[Any, Any]:
    scheme = APIKeyCookie(
        name=cookie_name,
        scheme_name="session",
        description="Server-side session cookie set at login (HttpOnly).",
        auto_error=False,
    )

    async def optional_user(
        request: Request, _cookie: Annotated[str | None, Security(scheme)]
    ) -> str | None:
        return current_user_id(request)

    async def current_user(user: Annotated[str | None, Depends(optional_user)]) -> str:
        if user is None:
            # RFC 9110 §15.5.2: a 401 names a scheme; FastAPI's APIKey schemes say "APIKey".
            raise http_exception(LoginRequiredError(), {"WWW-Authenticate": "APIKey"})
        return user

    return current_user, optional_user


def user_dependencies(cookie_name: str = "__Host-sid") -> tuple[Any, Any]:
    """``(CurrentUser, OptionalUser)`` for a session cookie with another name.

    ``CurrentUser, OptionalUser = user_dependencies("sid")`` when the middleware was
    given ``cookie_name="sid"`` (the name only matters for the OpenAPI docs).
    """
    current, optional = _build(cookie_name)
    return Annotated[str, Depends(current)], Annotated[str | None, Depends(optional)]


_current, _optional = _build("__Host-sid")

#: The logged-in user's id; 401 when nobody is logged in: ``async def me(user: CurrentUser)``.
CurrentUser = Annotated[str, Depends(_current)]
#: The logged-in user's id, or None.
OptionalUser = Annotated[str | None, Depends(_optional)]
