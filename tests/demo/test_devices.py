"""The demo's sensitive actions: your devices, revoking, password change, remember-me
and login throttling, each through the HTTP contract."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import pytest
from starlette.applications import Starlette

from tests.demo.conftest import PASSWORD, Client

pytestmark = pytest.mark.anyio

NEW_PASSWORD = "a whole new passphrase"


def _handles(page: str) -> list[str]:
    return re.findall(r'data-handle="([^"]+)"', page)


async def _two_devices(new_client: Callable[[], Client], name: str) -> tuple[Client, Client]:
    laptop, phone = new_client(), new_client()
    await laptop.register(name)
    await phone.login(name)
    return laptop, phone


async def test_sessions_page_lists_devices_and_marks_this_one(
    new_client: Callable[[], Client],
) -> None:
    """/sessions lists both devices with IP and user agent, this one marked."""
    laptop, _ = await _two_devices(new_client, "nina")
    page = await laptop.get("/sessions")
    assert page.status_code == 200
    assert len(_handles(page.text)) == 2
    assert page.text.count('data-testid="this-device"') == 1
    assert "127.0.0.1" in page.text and "demo-test" in page.text


async def test_sessions_json_has_the_same_data_and_a_token(
    new_client: Callable[[], Client],
) -> None:
    """?format=json gives the devices (no ids, no keys) and a CSRF token that works."""
    laptop, phone = await _two_devices(new_client, "omar")
    data = (await laptop.get("/sessions?format=json")).json()
    assert len(data["sessions"]) == 2
    assert [s["current"] for s in data["sessions"]].count(True) == 1
    assert set(data["sessions"][0]) == {
        "handle",
        "created",
        "last_seen",
        "ip",
        "user_agent",
        "current",
        "remembered",
        "session_active",
        "remembered_until",
    }
    other = next(s["handle"] for s in data["sessions"] if not s["current"])
    revoked = await laptop.post(
        f"/sessions/{other}/revoke",
        {"password": PASSWORD},
        headers={"x-csrf-token": data["csrf_token"]},
    )
    assert revoked.status_code == 303
    assert (await phone.get("/me")).status_code == 401


async def test_revoke_needs_the_password(new_client: Callable[[], Client]) -> None:
    """A wrong password revokes nothing; the right one signs the other device out."""
    laptop, phone = await _two_devices(new_client, "pia")
    data = (await laptop.get("/sessions?format=json")).json()
    other = next(s["handle"] for s in data["sessions"] if not s["current"])
    wrong = await laptop.submit("/sessions", f"/sessions/{other}/revoke", {"password": "nope nope"})
    assert wrong.status_code == 303
    assert (await phone.get("/me")).status_code == 200
    missing = await laptop.submit("/sessions", f"/sessions/{other}/revoke", {})
    assert missing.status_code == 303
    assert (await phone.get("/me")).status_code == 200
    right = await laptop.submit("/sessions", f"/sessions/{other}/revoke", {"password": PASSWORD})
    assert right.status_code == 303 and right.headers["location"] == "/sessions"
    assert (await phone.get("/me")).status_code == 401
    assert (await laptop.get("/me")).status_code == 200


async def test_cannot_revoke_another_users_session(new_client: Callable[[], Client]) -> None:
    """A handle of someone else's session is a 404 and their session lives on."""
    mallory, victim = new_client(), new_client()
    await mallory.register("mallory")
    await victim.register("victim")
    handle = (await victim.get("/sessions?format=json")).json()["sessions"][0]["handle"]
    response = await mallory.submit(
        "/sessions", f"/sessions/{handle}/revoke", {"password": PASSWORD}
    )
    assert response.status_code == 404
    assert (await victim.get("/me")).status_code == 200


async def test_revoke_others_keeps_only_this_device(new_client: Callable[[], Client]) -> None:
    """Sign out all other devices: both others are out, this one stays in."""
    laptop, phone = await _two_devices(new_client, "quinn")
    tablet = new_client()
    await tablet.login("quinn")
    response = await laptop.submit("/sessions", "/sessions/revoke-others", {"password": PASSWORD})
    assert response.status_code == 303
    assert (await phone.get("/me")).status_code == 401
    assert (await tablet.get("/me")).status_code == 401
    page = await laptop.get("/sessions")
    assert "Signed out 2 other devices." in page.text
    assert len(_handles(page.text)) == 1


async def test_revoke_actions_need_a_signed_in_user(client: Client) -> None:
    """An anonymous revoke post is a 401 page and sets no cookie."""
    response = await client.post(
        "/sessions/revoke-others", {"password": PASSWORD}, headers={"accept": "text/html"}
    )
    assert response.status_code == 401
    assert "Please sign in" in response.text
    assert "set-cookie" not in response.headers


async def test_password_change_signs_out_other_devices(new_client: Callable[[], Client]) -> None:
    """A password change needs the current one, signs the other device out, keeps this one."""
    laptop, phone = await _two_devices(new_client, "rosa")
    before = laptop.jar["sid"]
    wrong = await laptop.submit(
        "/password", "/password", {"current_password": "nope nope", "new_password": NEW_PASSWORD}
    )
    assert wrong.status_code == 400
    assert (await phone.get("/me")).status_code == 200
    ok = await laptop.submit(
        "/password", "/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 303
    assert laptop.jar["sid"] != before  # a fresh id for this device
    assert (await laptop.get("/me")).status_code == 200
    assert (await phone.get("/me")).status_code == 401
    stranger = new_client()
    assert (await stranger.login("rosa")).status_code == 401
    assert (await stranger.login("rosa", NEW_PASSWORD)).status_code == 303


async def test_weak_new_password_is_refused(client: Client) -> None:
    """The new password must pass the policy."""
    await client.register("sam")
    response = await client.submit(
        "/password", "/password", {"current_password": PASSWORD, "new_password": "short"}
    )
    assert response.status_code == 400 and "at least" in response.text


async def test_remember_me_restores_a_session_that_is_not_fresh(
    new_client: Callable[[], Client],
) -> None:
    """A browser with only the remember-me cookie is signed back in, but must confirm the
    password for sensitive actions."""
    first = new_client()
    await first.register("tess")
    await first.submit("/dashboard", "/logout", {})
    response = await first.login("tess", remember=True)
    remember = next(h for h in response.headers.get_list("set-cookie") if h.startswith("remember="))
    assert "Max-Age=" in remember and "httponly" in remember.lower().split("; ")
    restarted = new_client()
    restarted.jar["remember"] = first.jar["remember"]
    me = await restarted.get("/me")
    assert me.status_code == 200 and me.json()["username"] == "tess"
    assert "sid" in restarted.jar
    assert restarted.jar["remember"] != first.jar["remember"]  # rotated on use
    page = await restarted.get("/password")
    assert "remember me" in page.text.lower()
    dashboard = await restarted.get("/dashboard")
    assert "remember-me cookie</span>" in dashboard.text
    wrong = await restarted.submit(
        "/sessions", "/sessions/revoke-others", {"password": "not it at all"}
    )
    assert wrong.status_code == 303
    assert (await first.get("/me")).status_code == 200


async def test_a_restored_browser_is_one_device(new_client: Callable[[], Client]) -> None:
    """After a restart with "remember me" the browser is one row (its lost session and the
    restored one are the same device), remembered until the token's expiry; signing
    that row out from elsewhere ends both sessions and the token."""
    laptop = new_client()
    await laptop.register("ravi")
    browser = new_client()
    await browser.login("ravi", remember=True)
    restarted = new_client()
    restarted.jar["remember"] = browser.jar["remember"]
    assert (await restarted.get("/me")).status_code == 200
    mine = (await restarted.get("/sessions?format=json")).json()["sessions"]
    assert len(mine) == 2  # the laptop, and this browser once
    this = next(s for s in mine if s["current"])
    assert this["remembered_until"] > this["created"]
    assert next(s for s in mine if not s["current"])["remembered_until"] is None
    listed = (await laptop.get("/sessions?format=json")).json()["sessions"]
    assert [s["handle"] for s in listed if not s["current"]] == [this["handle"]]
    page = (await laptop.get("/sessions")).text
    assert page.count("remembered until") == 1
    done = await laptop.submit(
        "/sessions", f"/sessions/{this['handle']}/revoke", {"password": PASSWORD}
    )
    assert done.status_code == 303
    assert (await restarted.get("/me")).status_code == 401
    assert (await browser.get("/me")).status_code == 401
    assert len((await laptop.get("/sessions?format=json")).json()["sessions"]) == 1


async def test_plain_login_sets_no_remember_cookie(client: Client) -> None:
    """Without the box ticked there is no remember-me cookie (the device cookie only marks
    a browser the login throttle trusts)."""
    await client.register("uma")
    await client.submit("/dashboard", "/logout", {})
    response = await client.login("uma")
    names = [h.split("=")[0] for h in response.headers.get_list("set-cookie")]
    assert names == ["sid", "device"]


async def test_logout_clears_remember_me(new_client: Callable[[], Client]) -> None:
    """Logout revokes the remember-me token: replaying it restores nothing."""
    c = new_client()
    await c.register("vera")
    await c.submit("/dashboard", "/logout", {})
    await c.login("vera", remember=True)
    token = c.jar["remember"]
    out = await c.submit("/dashboard", "/logout", {})
    assert any(h.startswith("remember=;") for h in out.headers.get_list("set-cookie"))
    thief = new_client()
    thief.jar["remember"] = token
    assert (await thief.get("/me")).status_code == 401


@pytest.fixture
async def throttled(make_app: Callable[..., Starlette]) -> AsyncIterator[Starlette]:
    """The demo with LOGIN_MAX_ATTEMPTS=3."""
    app = make_app({"LOGIN_MAX_ATTEMPTS": "3", "LOGIN_WINDOW": "60"})
    yield app
    await app.state.demo.store.close()


async def test_login_throttle_answers_429_with_retry_after(throttled: Starlette) -> None:
    """After the allowed failures the login form answers 429 with Retry-After, no cookie."""
    c = Client(throttled)
    try:
        await c.register("walt")
        await c.submit("/dashboard", "/logout", {})
        statuses = [(await c.login("walt", "wrong password!")).status_code for _ in range(3)]
        blocked = await c.submit("/login", "/login", {"username": "walt", "password": PASSWORD})
        page = await c.post(
            "/login",
            {"username": "walt", "password": PASSWORD, "_csrf": await c.token("/login")},
            headers={"accept": "text/html"},
        )
    finally:
        await c.aclose()
    assert statuses == [401, 401, 401]  # each checked; the next one is not
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "set-cookie" not in blocked.headers
    assert 'data-testid="retry-after"' in page.text and "Too many attempts" in page.text
