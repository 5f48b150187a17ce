"""The per-user session cap under real parallel logins: 20 logins of one user at once
against a live server (Starlette under uvicorn, Flask under gunicorn) with
``max_sessions_per_user=3``, under both policies, on the memory, SQLite, Redis and
PostgreSQL stores. Whatever the interleaving, never more than 3 live sessions remain.

The memory store lives in one process, so it is served by one worker (still many
requests at once: the event loop, or gunicorn's threads); the shared stores by two.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, stop, wait_ready

pytestmark = pytest.mark.anyio

CAP = 3
LOGINS = 20


def _command(framework: str, port: int, workers: int) -> list[str]:
    if framework == "flask":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.attack.cap_apps:flask_app()",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--log-level",
            "warning",
            "--no-control-socket",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.attack.cap_apps:starlette_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


@contextmanager
def served(framework: str, store_url: str, policy: str, folder: Path) -> Iterator[str]:
    """The cap app on a free port of 127.0.0.1; stops exactly the process it started."""
    port = free_port()
    workers = 1 if store_url.startswith("memory") else 2
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_", "CAP"))}
    env |= {"CAP_STORE": store_url, "CAP": str(CAP), "CAP_POLICY": policy}
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command(framework, port, workers),
            cwd=os.getcwd(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, seconds=20)
        yield url
    finally:
        stop(proc)
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"server log:\n{text[-6000:]}")  # shown when the test fails


async def _burst(url: str, user: str) -> tuple[list[int], list[str], int]:
    """``LOGINS`` logins of ``user`` at once, each from its own cookie-less client: the
    statuses, the session cookies that still work afterwards, the live sessions in the store."""

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            return await c.post("/login", params={"user": user})

    responses = await asyncio.gather(*(one() for _ in range(LOGINS)))
    sids = [r.cookies.get("sid") for r in responses if r.status_code == 200]
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        alive = [sid for sid in sids if sid and await _works(c, sid, user)]
        live = (await c.get("/live", params={"user": user})).json()["live"]
    return [r.status_code for r in responses], alive, int(live)


async def _works(c: httpx.AsyncClient, sid: str, user: str) -> bool:
    c.cookies.clear()  # only the cookie under test
    me = await c.get("/me", headers={"Cookie": f"sid={sid}"})
    return bool(me.json()["user"] == user)


async def _race(framework: str, policy: str, store_url: str, folder: Path) -> None:
    user = "u" + uuid.uuid4().hex[:8]
    with served(framework, store_url, policy, folder) as url:
        statuses, alive, live = await _burst(url, user)
        # A second burst on top of the survivors: the cap holds against sessions
        # that already exist too.
        statuses2, alive2, live2 = await _burst(url, user)
        async with httpx.AsyncClient(base_url=url) as c:
            kept = [sid for sid in alive if await _works(c, sid, user)]
    print(
        f"{framework}/{policy}: {statuses.count(200)} of {LOGINS} logins answered 200, "
        f"{len(alive)} sessions work, {live} live; second burst {live2} live"
    )
    allowed = {200, 409} if policy == "refuse" else {200}
    assert set(statuses) | set(statuses2) <= allowed, (statuses, statuses2)
    assert 1 <= live <= CAP and 1 <= live2 <= CAP, (live, live2)
    assert 1 <= len(alive) <= live and len(alive2) <= live2
    if policy == "refuse":
        assert statuses.count(200) >= 1
        assert kept == alive  # the second burst displaced none of the first's sessions
        assert statuses2.count(200) <= CAP - live


@pytest.mark.parametrize("framework", ["starlette", "flask"])
@pytest.mark.parametrize("policy", ["oldest", "refuse"])
async def test_parallel_logins_never_pass_the_cap(
    framework: str, policy: str, store_url: str, tmp_path: Path
) -> None:
    """20 logins of one user at once, twice, on SQLite, Redis and PostgreSQL served by two
    workers: never more than 3 live sessions; under "refuse" the rest answer 409 and the
    sessions admitted first are never displaced."""
    await _race(framework, policy, store_url, tmp_path)


@pytest.mark.parametrize("framework", ["starlette", "flask"])
@pytest.mark.parametrize("policy", ["oldest", "refuse"])
async def test_parallel_logins_never_pass_the_cap_in_memory(
    framework: str, policy: str, tmp_path: Path
) -> None:
    """The same burst on the memory store (one worker: the store lives in its process)."""
    await _race(framework, policy, "memory://", tmp_path)
