"""Revocation races against the live demo: a thief replays a stolen remember-me cookie
in sixteen parallel loops, over real sockets, against two worker processes sharing one
real store (the Starlette and the Flask demo), while the owner changes the password or
signs out every other device.
After the owner's request returns, nothing the thief holds may sign in."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest

from tests.attack.conftest import PASSWORD, LiveDemo

pytestmark = pytest.mark.anyio

LOOPS = 16
ROUNDS = 25
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def issued(response: httpx.Response) -> dict[str, str]:
    """Cookie values a response sets, by name ("" for a cleared cookie)."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        out[name] = rest.split(";")[0]
    return out


async def post(
    c: httpx.AsyncClient, path: str, data: dict[str, str], cookie: str = ""
) -> httpx.Response:
    """A same-origin form post carrying only the given cookies."""
    headers = {"origin": str(c.base_url).rstrip("/"), "sec-fetch-site": "same-origin"}
    if cookie:
        headers["cookie"] = cookie
    return await c.post(path, data=data, headers=headers)


async def get(c: httpx.AsyncClient, path: str, cookie: str) -> httpx.Response:
    """A GET carrying only the given cookies."""
    return await c.get(path, headers={"cookie": cookie})


@pytest.mark.parametrize("sweep", ["password", "revoke-others"])
async def test_sweep_ends_every_session_a_restore_loop_mints(
    live_demo: LiveDemo, store_url: str, sweep: str
) -> None:
    """Sixteen loops restoring from a stolen remember-me cookie while the owner changes the
    password (or signs out other devices): afterwards every session the thief obtained is
    dead, the stolen cookie and every validator it was rotated to are refused, and the
    owner's own device list holds only the owner's session (before the fix 2-9 of the
    thief's sessions survived)."""
    user = "owner" + uuid.uuid4().hex[:6]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with live_demo(store_url, workers=2) as url:
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as c:
            c.cookies.clear()
            r = await post(c, "/register", {"username": user, "password": PASSWORD})
            assert r.status_code == 303
            c.cookies.clear()
            r = await post(
                c, "/login", {"username": user, "password": PASSWORD, "remember_me": "on"}
            )
            stolen = issued(r)["remember"]
            c.cookies.clear()
            r = await post(c, "/login", {"username": user, "password": PASSWORD})
            owner = f"sid={issued(r)['sid']}"
            c.cookies.clear()

            got: list[str] = []
            remembers = [stolen]
            swept = asyncio.Event()

            async def thief() -> None:
                for _ in range(ROUNDS):
                    r = await get(c, "/me", f"remember={remembers[-1]}")
                    values = issued(r)
                    if r.status_code == 200 and values.get("sid"):
                        got.append(values["sid"])
                    if values.get("remember"):
                        remembers.append(values["remember"])
                    if swept.is_set() and r.status_code != 200:
                        return

            async def owner_sweeps() -> str:
                while len(got) < LOOPS:  # the loops are well under way
                    await asyncio.sleep(0.005)
                if sweep == "password":
                    page = await get(c, "/password", owner)
                    token = _CSRF.search(page.text)
                    assert token is not None
                    data = {
                        "current_password": PASSWORD,
                        "new_password": PASSWORD + " changed",
                        "_csrf": token.group(1),
                    }
                    r = await post(c, "/password", data, owner)
                else:
                    token_json = (await get(c, "/sessions?format=json", owner)).json()
                    data = {"password": PASSWORD, "_csrf": token_json["csrf_token"]}
                    r = await post(c, "/sessions/revoke-others", data, owner)
                assert r.status_code == 303, r.text
                swept.set()
                return f"sid={issued(r)['sid']}"

            async with asyncio.timeout(60):
                results = await asyncio.gather(owner_sweeps(), *(thief() for _ in range(LOOPS)))
            owner = results[0]
            survivors = 0
            for sid in got:
                if (await get(c, "/me", f"sid={sid}")).status_code == 200:
                    survivors += 1
            refused = [(await get(c, "/me", f"remember={v}")).status_code for v in remembers[-5:]]
            devices = (await get(c, "/sessions?format=json", owner)).json()["sessions"]
            print(f"{sweep}: {len(got)} thief sessions minted, {survivors} alive after the sweep")
    assert len(got) >= LOOPS
    assert survivors == 0
    assert refused == [401] * len(refused)
    assert [d["current"] for d in devices] == [True]
