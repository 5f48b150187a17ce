"""Periodic id rotation under real parallel requests: uvicorn with two workers on SQLite
and Redis, 40 requests carrying the old cookie at the rotation moment. None is logged
out, no write is lost, exactly one new id is handed out, the old id dies after the
grace window; and signing out everywhere during a rotation leaves no live session."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from sessionware.auth import sessions_of
from sessionware.stores import Store, from_url
from tests.servers import free_port, stop, wait_ready

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
REDIS = "redis://127.0.0.1:6379/0"
GRACE = 2.0
PARALLEL = 40


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file, or a fresh Redis key prefix (removed afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
        return
    tag = "swrot" + uuid.uuid4().hex[:10]
    yield f"{REDIS}?prefix={tag}:"
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{tag}:*", count=1000):
        client.delete(key)
    client.close()


class Server:
    """The rotation app under uvicorn, and the file its clock offset is read from."""

    def __init__(self, url: str, offset: Path) -> None:
        self.url = url
        self.offset = offset

    def advance(self, seconds: float) -> None:
        """Move every worker's clock forward."""
        self.offset.write_text(str(float(self.offset.read_text() or 0) + seconds))


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[Server]:
    """uvicorn, two workers, serving tests/attack/rotation_app.py on ``store_url``."""
    offset = tmp_path / "offset"
    offset.write_text("0")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_")}
    env |= {"SESSION_STORE": store_url, "CLOCK_FILE": str(offset), "ROTATE_GRACE": str(GRACE)}
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.attack.rotation_app:from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, seconds=20)
        yield Server(url, offset)
    finally:
        stop(proc)
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"server log:\n{text[-6000:]}")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """The same store, opened by the test to look at the user index."""
    s = from_url(store_url)
    yield s
    await s.close()


def _sid(response: httpx.Response) -> str | None:
    """The session cookie value a response sets ('' when it clears it), or None."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("sid="):
            return header.split(";")[0][4:]
    return None


async def _login(client: httpx.AsyncClient, user: str) -> str:
    r = await client.post(f"/login/{user}")
    assert r.status_code == 200
    sid = _sid(r)
    assert sid
    return sid


async def test_parallel_requests_at_the_rotation_moment(server: Server, store: Store) -> None:
    """40 parallel writes with the old cookie as the id comes due: all signed in, one new
    id, every write on the new record, one index entry; the old id dead after the grace."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        old = await _login(c, "ada")
        server.advance(61)
        jar = {"cookie": f"sid={old}"}
        responses = await asyncio.gather(
            *(c.post(f"/add/k{i}", headers=jar) for i in range(PARALLEL))
        )
        assert [r.status_code for r in responses] == [200] * PARALLEL
        assert all(r.json()["user"] == "ada" for r in responses), "someone was logged out"
        issued = {_sid(r) for r in responses} - {None}
        assert len(issued) == 1, f"{len(issued)} different cookies were handed out"
        (new,) = issued
        assert new and new != old
        r = await c.get("/read", headers={"cookie": f"sid={new}"})
        assert r.json()["user"] == "ada"
        assert sorted(r.json()["data"]) == sorted(f"k{i}" for i in range(PARALLEL))
        assert len(await sessions_of(store, "ada")) == 1
        r = await c.get("/read", headers=jar)  # in the grace window: still works
        assert r.json()["user"] == "ada" and _sid(r) is None
        time.sleep(GRACE + 1.5)
        r = await c.get("/read", headers=jar)
        assert r.json()["user"] is None
        r = await c.get("/read", headers={"cookie": f"sid={new}"})
        assert r.json()["user"] == "ada"


async def test_signing_out_everywhere_during_rotation_leaves_no_live_session(
    server: Server, store: Store
) -> None:
    """Each round: 30 parallel requests rotate a session while logout_everywhere runs in
    the middle of them. Afterwards no cookie seen (old or new) is signed in, and the user
    has no session left in the index."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        for round_ in range(5):
            user = f"bob{round_}"
            old = await _login(c, user)
            server.advance(61)
            jar = {"cookie": f"sid={old}"}
            writes = [c.post(f"/add/k{i}", headers=jar) for i in range(30)]
            sweep = c.post(f"/everywhere/{user}")
            responses = await asyncio.gather(*writes[:10], sweep, *writes[10:])
            assert all(r.status_code == 200 for r in responses)
            seen = {old} | {_sid(r) for r in responses} - {None, ""}
            for sid in seen:
                r = await c.get("/read", headers={"cookie": f"sid={sid}"})
                assert r.json()["user"] is None, "a session survived logout_everywhere"
            assert await sessions_of(store, user) == []
