"""examples/events_app.py (quoted by the README) works as a new user would run it: the
audit log records logins, failures, lockouts and logouts, and a fourth device is refused."""

from __future__ import annotations

import runpy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import SECRET

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "events_app.py"

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def example(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[dict[str, Any]]:
    """The example loaded on the memory store, a SQLite file in tmp_path, or the real
    Redis (where each run signs in a user of its own, whose sessions it ends after)."""
    urls = {
        "memory": "memory://",
        "sqlite": f"sqlite:///{tmp_path}/sessions.sqlite3",
        "redis": "redis://127.0.0.1:6379/0",
    }
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_STORE", urls[request.param])
    mod = runpy.run_path(str(EXAMPLE))
    user = "ada-" + uuid.uuid4().hex[:8]
    mod["PASSWORDS"][user] = mod["PASSWORDS"].pop("ada")
    mod["user"] = user
    yield mod
    store = mod["store"]
    for key in await store.keys_of(user):
        await store.delete(key)
        await store.unlink(user, key)
    await store.close()


def browser(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_audit_log_and_session_cap(example: dict[str, Any]) -> None:
    """Three devices sign in, the fourth gets a 409 saying what to do; a wrong password and
    the lockout after it land in the audit log with the client address and a reason."""
    app, user = example["app"], example["user"]
    good = {"name": user, "password": "correct horse"}
    devices = [browser(app) for _ in range(4)]
    try:
        for d in devices[:3]:
            assert (await d.post("/login", data=good)).status_code == 200
        refused = await devices[3].post("/login", data=good)
        assert refused.status_code == 409 and "sign out of one" in refused.text
        assert (await devices[0].post("/logout")).status_code == 200
        assert (await devices[3].post("/login", data=good)).status_code == 200
        codes = [
            (await devices[1].post("/login", data={**good, "password": "guess"})).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 5 + [429]
        audit = (await devices[1].get("/audit")).json()
    finally:
        for d in devices:
            await d.aclose()
    names = [entry["event"] for entry in audit]
    assert names == ["login"] * 3 + ["login_failed", "logout", "login"] + ["login_failed"] * 5 + [
        "throttled"
    ]
    assert audit[3] == {
        "event": "login_failed",
        "user": user,
        "from": "127.0.0.1",
        "why": "session_cap",
    }
    assert audit[-1]["user"] == user and "locked out" in (audit[-1]["why"] or "")
