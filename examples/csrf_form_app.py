"""A tiny note-taking app: HTML forms and a JSON API, both behind sessionware's CSRF check.

Run it with ``SESSION_SECRET=$(sessionware secret) uvicorn examples.csrf_form_app:app``
and open http://127.0.0.1:8000. It shows:

- a login form that sets no cookie until you log in (the form still carries an
  anonymous token, for browsers that send neither ``Origin`` nor ``Sec-Fetch-Site``);
- forms with ``{{ csrf_input(request) }}``, checked on every POST;
- a JSON API: ``GET /api/csrf`` hands out the token, ``POST /api/notes`` wants it in
  the ``X-CSRF-Token`` header;
- a webhook marked ``@csrf_exempt``.
"""

from __future__ import annotations

import os
import secrets

from jinja2 import DictLoader, Environment, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware.csrf import CSRFMiddleware, csrf_exempt, csrf_token, install_jinja
from sessionware.stores import MemoryStore
from sessionware.stores.base import Store

PAGE = """<!doctype html>
<title>Notes</title>
{% if user %}
  <p>Signed in as {{ user }}.</p>
  <ul>{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
  <form method="post" action="/notes">
    {{ csrf_input(request) }}
    <input name="text" required> <button>Add note</button>
  </form>
  <form method="post" action="/logout">{{ csrf_input(request) }}<button>Log out</button></form>
{% else %}
  <form method="post" action="/login">
    {{ csrf_input(request) }}
    <input name="user" required placeholder="name"> <button>Log in</button>
  </form>
{% endif %}
"""

env = Environment(loader=DictLoader({"page.html": PAGE}), autoescape=select_autoescape())
install_jinja(env)


async def index(request: Request) -> HTMLResponse:
    session = request.session
    html = env.get_template("page.html").render(
        request=request, user=session.get("user"), notes=session.get("notes", [])
    )
    return HTMLResponse(html)


async def login(request: Request) -> RedirectResponse:
    form = await request.form()
    name = str(form.get("user", "")).strip()[:40]
    if name:
        # A demo without passwords; a real app checks them (sessionware.auth.login).
        await request.session.regenerate()  # new id and a new CSRF secret at login
        request.session["user"] = name
    return RedirectResponse("/", status_code=303)


async def add_note(request: Request) -> RedirectResponse:
    form = await request.form()
    if "user" in request.session:
        request.session.setdefault("notes", []).append(str(form.get("text", ""))[:200])
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> RedirectResponse:
    await request.session.destroy()
    return RedirectResponse("/", status_code=303)


async def api_csrf(request: Request) -> JSONResponse:
    return JSONResponse({"token": csrf_token(request)})


async def api_notes(request: Request) -> JSONResponse:
    if "user" not in request.session:
        return JSONResponse({"error": "log in first"}, status_code=401)
    body = await request.json()
    notes = request.session.setdefault("notes", [])
    notes.append(str(body.get("text", ""))[:200])
    return JSONResponse({"notes": notes})


@csrf_exempt
async def ping_hook(request: Request) -> PlainTextResponse:
    # A webhook authenticates its sender some other way (a signature header).
    return PlainTextResponse("pong")


def create_app(store: Store | None = None, secret: str | None = None) -> Starlette:
    """Build the app; tests pass their own store and secret."""
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/login", login, methods=["POST"]),
            Route("/notes", add_note, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/api/csrf", api_csrf),
            Route("/api/notes", api_notes, methods=["POST"]),
            Route("/hooks/ping", ping_hook, methods=["POST"]),
        ]
    )
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(
        SessionMiddleware,
        store=store or MemoryStore(development=True),
        secrets=[secret or os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(48)],
        cookie_name="sid",  # plain-http development; keep the __Host-sid default in production
    )
    return app


app = create_app()
