"""Sensitive pages: your devices (list, sign out one or all others) and your password.

Each action asks for the password again, under the login throttle, and counts it as
a re-authentication (a new session id). So a session restored from a remember-me
cookie can browse but cannot take these actions without the password.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from sessionware import auth
from sessionware.csrf import csrf_token
from sessionware.demo.config import RECENT_LOGIN
from sessionware.demo.pages import device_order, field_text, password_errors
from sessionware.demo.render import flash
from sessionware.demo.state import check_password, demo, who
from sessionware.demo.users import User
from sessionware.demo.views import login_redirect
from sessionware.throttle import TooManyAttemptsError

__all__ = ["password_form", "password_submit", "revoke_one", "revoke_others", "sessions_page"]


def _user(request: Request) -> User:
    user = who(request)
    if user is None:
        raise auth.LoginRequiredError()
    return user


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _confirm(request: Request, user: User, password: str) -> bool:
    """Check the password again (throttled like a login); on success it counts as fresh."""
    throttle = demo(request).config.throttle
    await throttle.check(request, user.username)
    if not await check_password(request, user, password):
        wait = await throttle.failed(request, user.username)
        if wait:
            raise TooManyAttemptsError(wait)
        return False
    await throttle.succeeded(request, user.username)
    return True


async def _form(request: Request) -> Any:
    return await request.form()


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# -- devices ----------------------------------------------------------------------


async def sessions_page(request: Request) -> Response:
    """Every live session of the user; ``?format=json`` for scripts (with a CSRF token)."""
    user = who(request)
    wants_json = request.query_params.get("format") == "json"
    if user is None:
        if wants_json:
            return JSONResponse({"error": "not authenticated"}, status_code=401)
        return login_redirect(request)
    devices = await auth.sessions_of(request, str(user.id))
    if wants_json:
        return JSONResponse(
            {
                "user_id": user.id,
                "sessions": [
                    {k: v for k, v in asdict(d).items() if k != "authenticated_at"} for d in devices
                ],
                "csrf_token": csrf_token(request),
            }
        )
    fresh = auth.is_recent_login(request, RECENT_LOGIN)
    return demo(request).renderer.page(
        request, "sessions.html", {"sessions": device_order(devices), "fresh": fresh}
    )


async def revoke_one(request: Request) -> Response:
    """Sign out one of the user's own sessions, by its handle, after the password."""
    user = _user(request)
    handle = request.path_params["handle"]
    form = await _form(request)
    if not await _confirm(request, user, _text(form, "password")):
        flash(request, "error", "That password is not right: no device was signed out.")
        return _see_other("/sessions")
    await auth.reauthenticate(request)
    mine = {d.handle: d for d in await auth.sessions_of(request, str(user.id))}
    target = mine.get(handle)
    if target is None:
        # Someone else's handle, or one already gone: nothing of yours has it.
        raise HTTPException(404, "You have no device with that handle.")
    await auth.revoke(request, str(user.id), handle)
    if target.current:
        return _see_other("/?m=signed-out")
    flash(request, "ok", "That device is signed out.")
    return _see_other("/sessions")


async def revoke_others(request: Request) -> Response:
    """Sign out every other session of the user, after the password."""
    user = _user(request)
    form = await _form(request)
    if not await _confirm(request, user, _text(form, "password")):
        flash(request, "error", "That password is not right: no device was signed out.")
        return _see_other("/sessions")
    await auth.reauthenticate(request)
    n = await auth.logout_everywhere(request, str(user.id), keep=request)
    flash(request, "ok", f"Signed out {n} other device{'' if n == 1 else 's'}.")
    return _see_other("/sessions")


# -- password ---------------------------------------------------------------------


def _password_page(
    request: Request, errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    state = demo(request)
    hint = f"At least {state.policy.min_length} characters; not a common password."
    return state.renderer.page(
        request,
        "password.html",
        {
            "errors": errors or {},
            "password_hint": hint,
            "fresh": auth.is_recent_login(request, RECENT_LOGIN),
        },
        status=status,
    )


async def password_form(request: Request) -> Response:
    """The change-password form."""
    if who(request) is None:
        return login_redirect(request)
    return _password_page(request)


async def password_submit(request: Request) -> Response:
    """Change the password; every other device is signed out, this one gets a new id."""
    user = _user(request)
    state = demo(request)
    form = await _form(request)
    current, new = _text(form, "current_password"), _text(form, "new_password")
    errors = password_errors(
        state.policy, user.username, current, new, field_text(form, "confirm_password")
    )
    if not await _confirm(request, user, current):
        errors["current_password"] = "Your current password is not right."
    if errors:
        return _password_page(request, errors, 400)
    digest = await state.hasher.offload(state.hasher.hash, new)
    state.users.set_password_hash(user.id, digest)
    n = await auth.password_changed(request, str(user.id))
    flash(
        request,
        "ok",
        f"Password changed. {n} other device{'' if n == 1 else 's'} signed out."
        if n
        else "Password changed.",
    )
    return _see_other("/dashboard")
