"""The demo's HTTP contract for visitors and sign-in: no cookie for anonymous
visitors, sign-in and out, redirects, JSON, caching headers and error pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette

from sessionware.demo.state import safe_next
from tests.demo.conftest import ORIGIN, PASSWORD, SECRET, Client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/cookies", "/healthz", "/nope"])
async def test_anonymous_pages_set_no_cookie(client: Client, path: str) -> None:
    """An anonymous visitor gets no cookie from the public pages or a 404."""
    response = await client.get(path, headers={"accept": "text/html"})
    assert response.status_code == (404 if path == "/nope" else 200)
    assert "set-cookie" not in response.headers


async def test_failed_login_sets_no_cookie_and_says_nothing_specific(
    client: Client, new_client: Callable[[], Client]
) -> None:
    """A wrong password and an unknown user get the same 401 and message, and no cookie."""
    await client.register("alice")
    other = new_client()
    wrong = await other.login("alice", "not the password")
    unknown = await other.login("nobody-here", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong username or password." in response.text
        assert "set-cookie" not in response.headers


async def test_register_signs_in_with_a_safe_cookie(client: Client) -> None:
    """Registering signs in with an HttpOnly, SameSite=Lax, Path=/ cookie, then the dashboard."""
    response = await client.register("bob")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("sid=")
    assert {"httponly", "samesite=lax", "path=/"} <= set(cookie.lower().split("; "))
    assert "Max-Age" not in cookie  # a browser-session cookie
    page = await client.get("/dashboard")
    assert page.status_code == 200
    assert "Hello, bob" in page.text
    assert 'data-testid="session-facts"' in page.text


async def test_taken_username_and_weak_password_are_refused(
    client: Client, new_client: Callable[[], Client]
) -> None:
    """Registration refuses a taken name and a common password, without a cookie."""
    await client.register("carol")
    other = new_client()
    taken = await other.register("Carol")
    weak = await other.register("dave", "password")
    assert taken.status_code == 400 and "taken" in taken.text
    assert weak.status_code == 400 and "too common" in weak.text
    assert "set-cookie" not in taken.headers and "set-cookie" not in weak.headers


async def test_login_gives_a_new_session_id_each_time(client: Client) -> None:
    """Each sign-in gets a new id, and the id from before logout no longer works."""
    await client.register("erin")
    first = client.jar["sid"]
    out = await client.submit("/dashboard", "/logout", {})
    assert out.status_code == 303 and out.headers["location"] == "/?m=signed-out"
    assert "Max-Age=0" in out.headers["set-cookie"]
    await client.login("erin")
    assert client.jar["sid"] != first
    replay = await client.get("/me", headers={"cookie": f"sid={first}"})
    assert replay.status_code == 401


async def test_me_is_json(client: Client) -> None:
    """GET /me answers the user as JSON, or a 401 JSON error when nobody is signed in."""
    anonymous = await client.get("/me")
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "not authenticated"}
    await client.register("frank")
    me = (await client.get("/me")).json()
    assert me["username"] == "frank" and isinstance(me["user_id"], int)


async def test_dashboard_redirects_anonymous_to_login(client: Client) -> None:
    """An anonymous GET /dashboard goes to /login?next=/dashboard."""
    response = await client.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/dashboard"


async def test_login_follows_a_local_next_only(client: Client) -> None:
    """``next`` is followed when it is a local path, and ignored when it points elsewhere."""
    await client.register("gina")
    await client.submit("/dashboard", "/logout", {})
    local = await client.login("gina", nxt="/sessions")
    assert local.headers["location"] == "/sessions"
    await client.submit("/dashboard", "/logout", {})
    evil = await client.login("gina", nxt="//evil.example/steal")
    assert evil.headers["location"] == "/dashboard"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/sessions", "/sessions"),
        ("/dashboard?tab=1", "/dashboard?tab=1"),
        ("//evil.example", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
        ("javascript:alert(1)", "/dashboard"),
        ("/ok\r\nSet-Cookie: x=1", "/dashboard"),
        ("", "/dashboard"),
        (None, "/dashboard"),
    ],
)
def test_safe_next_keeps_only_local_paths(value: str | None, expected: str) -> None:
    """``safe_next`` refuses every form of off-site redirect."""
    assert safe_next(value) == expected


async def test_get_logout_asks_first(client: Client, new_client: Callable[[], Client]) -> None:
    """GET /logout is a page with a Sign-out button that signs nobody out; a visitor
    who is not signed in is told so, and gets no cookie."""
    await client.register("hank")
    response = await client.get("/logout", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "Sign out?" in response.text and 'action="/logout"' in response.text
    assert (await client.get("/me")).status_code == 200
    stranger = await new_client().get("/logout")
    assert stranger.status_code == 200 and "You are not signed in" in stranger.text
    assert "set-cookie" not in stranger.headers


async def test_signed_in_pages_are_not_cached(client: Client) -> None:
    """Pages of a signed-in user send Cache-Control: no-store and Vary: Cookie."""
    await client.register("ivy")
    for path in ("/dashboard", "/sessions", "/password", "/me", "/"):
        response = await client.get(path)
        assert response.headers["cache-control"] == "no-store", path
        assert "cookie" in response.headers["vary"].lower(), path


async def test_every_form_carries_a_csrf_token(
    client: Client, new_client: Callable[[], Client]
) -> None:
    """Every form on every page has a non-empty ``_csrf`` field."""
    for path in ("/login", "/register"):
        page = await client.get(path)
        assert page.text.count("<form") == page.text.count('name="_csrf" value="') >= 1
    await client.register("jane")
    await new_client().login("jane")  # a second device: /sessions shows its revoke forms
    for path in ("/dashboard", "/sessions", "/password"):
        page = await client.get(path)
        assert page.text.count("<form") == page.text.count('name="_csrf" value="') >= 1, path


async def test_cookie_declaration_comes_from_the_settings(
    make_app: Callable[..., Starlette],
) -> None:
    """/cookies lists the names and lifetimes the app runs with (REMEMBER_ME_TTL here)."""
    app = make_app({"REMEMBER_ME_TTL": "600", "SESSION_IDLE_TIMEOUT": "120"})
    c = Client(app)
    try:
        page = await c.get("/cookies")
    finally:
        await c.aclose()
        await app.state.demo.store.close()
    assert page.status_code == 200
    assert ">sid<" in page.text and ">remember<" in page.text
    assert "10 minutes" in page.text and "2 minutes idle" in page.text


async def test_tls_settings_use_host_prefixed_secure_cookies(
    make_app: Callable[..., Starlette],
) -> None:
    """With --tls the cookies are __Host-sid / __Host-remember and Secure."""
    app = make_app(tls=True)
    c = Client(app)
    try:
        await c.register("kim")
        await c.submit("/dashboard", "/logout", {})
        response = await c.login("kim", remember=True)
        declared = await c.get("/cookies")
    finally:
        await c.aclose()
        await app.state.demo.store.close()
    cookies = response.headers.get_list("set-cookie")
    names = {h.split("=")[0] for h in cookies}
    assert {"__Host-sid", "__Host-remember", "__Host-device"} <= names
    assert all("secure" in h.lower().split("; ") for h in cookies)
    # Every cookie a sign-in sets is declared on /cookies.
    assert all(name in declared.text for name in names)


async def test_not_found_is_a_page(client: Client) -> None:
    """A 404 is an HTML page that says so, with the header."""
    response = await client.get("/no/such/page", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "Page not found" in response.text and "<header" in response.text


async def test_security_headers_on_every_page(client: Client) -> None:
    """Pages forbid framing and sniffing and allow only our own styles and forms."""
    response = await client.get("/")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "form-action 'self'" in response.headers["content-security-policy"]


async def test_healthz_reports_the_store(client: Client) -> None:
    """/healthz is 200 with the store kind when the store answers."""
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "sqlite"}


async def test_store_outage_gives_503(make_app: Callable[..., Starlette]) -> None:
    """A store that cannot be reached: /healthz says 503, a signed-in page is a 503 page."""
    from sessionware.signing import Signer
    from sessionware.stores import RedisStore
    from sessionware.tokens import new_session_id

    signed = Signer([SECRET], salt="session").sign(new_session_id())
    store = RedisStore.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    app = make_app(store=store)
    c = Client(app)
    try:
        health = await c.get("/healthz")
        page = await c.get("/dashboard", headers={"cookie": f"sid={signed}", "accept": "text/html"})
        landing = await c.get("/")
    finally:
        await c.aclose()
        await store.close()
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert landing.status_code == 200  # no session needed, so no store needed
    assert page.status_code == 503
    assert "Temporarily unavailable" in page.text and page.headers["retry-after"]


async def test_origin_of_a_post_is_checked(
    client: Client, new_client: Callable[[], Client]
) -> None:
    """A login or logout posted from another origin is refused with a 403 page."""
    await client.register("lena")
    token = await client.token()
    cross = await client.post(
        "/logout", {"_csrf": token}, origin="https://evil.example", headers={"accept": "text/html"}
    )
    assert cross.status_code == 403
    assert "This request was refused" in cross.text
    assert (await client.get("/me")).status_code == 200
    login_csrf = await new_client().post(
        "/login",
        {"username": "lena", "password": PASSWORD, "_csrf": "x"},
        origin="https://evil.example",
    )
    assert login_csrf.status_code == 403
    assert "set-cookie" not in login_csrf.headers


async def test_unsafe_request_without_token_is_refused(client: Client) -> None:
    """A signed-in same-origin POST without the token is refused (403)."""
    await client.register("mona")
    response = await client.post("/logout", {})
    assert response.status_code == 403
    assert (await client.get("/me")).status_code == 200
    assert ORIGIN.startswith("http://")


async def test_idle_session_ends_on_the_server(make_app: Callable[..., Starlette]) -> None:
    """With SESSION_IDLE_TIMEOUT=1 a session unused for longer is gone, and the sign-in
    page says the session ended."""
    import anyio

    app = make_app({"SESSION_IDLE_TIMEOUT": "1"})
    c = Client(app)
    try:
        await c.register("olga")
        assert (await c.get("/me")).status_code == 200
        await anyio.sleep(1.3)
        gone = await c.get("/dashboard")
        page = await c.get(gone.headers["location"])
    finally:
        await c.aclose()
        await app.state.demo.store.close()
    assert gone.headers["location"] == "/login?next=/dashboard&m=expired"
    assert "Your session has ended" in page.text
    assert "sid" not in c.jar  # the dead cookie was cleared


async def test_login_gets_503_when_hashing_stays_busy(app: Starlette, client: Client) -> None:
    """A login that waits past the hasher's max_wait gets 503 with Retry-After, no cookie."""
    import asyncio
    import dataclasses
    import threading
    from typing import Any

    from sessionware.passwords import PasswordHasher

    loop = asyncio.get_running_loop()

    class Watched(PasswordHasher):
        """Says when a password check has been queued on the pool: from the event loop
        (Starlette's offload) or from a server thread (Flask's plain verify)."""

        queued = asyncio.Event()

        def _submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(fn, "__name__", "") in ("verify_or_dummy", "_check"):
                loop.call_soon_threadsafe(self.queued.set)  # just before the job is queued
            return super()._submit(fn, *args, **kwargs)

    hasher = Watched(time_cost=1, memory_cost=1024, max_concurrent=1, max_wait=0.05)
    app.state.demo = dataclasses.replace(app.state.demo, hasher=hasher)
    release = threading.Event()
    blocker = asyncio.ensure_future(hasher.offload(release.wait, 10))  # takes the only slot
    login = asyncio.ensure_future(client.login("nobody", "some password"))
    await asyncio.wait_for(hasher.queued.wait(), 10)
    await asyncio.sleep(0.2)  # well past the login's 0.05 s wait
    release.set()
    response = await login
    assert await blocker is True
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "set-cookie" not in response.headers
    assert "try again" in response.text
