"""The default session clock ignores a stepped system clock, and sessions keep their
timeouts by elapsed time across such a step (forward: nobody is logged out; back: no
session outlives its absolute timeout)."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware
from sessionware._clock import SteadyClock
from sessionware.stores import MemoryStore
from tests.helpers import SECRET


class Machine:
    """A wall clock an operator can step, and the kernel's elapsed-time clock."""

    def __init__(self) -> None:
        self.elapsed = 1000.0
        self.step = 0.0

    def wall(self) -> float:
        return 1_800_000_000.0 + self.elapsed + self.step

    def mono(self) -> float:
        return self.elapsed


def test_follows_the_wall_clock_while_it_agrees() -> None:
    m = Machine()
    clock = SteadyClock(m.wall, elapsed=m.mono)
    assert clock() == m.wall()
    m.elapsed += 30
    assert clock() == m.wall()
    m.step += 5  # an NTP correction of a few seconds is followed
    assert clock() == m.wall()


@pytest.mark.parametrize("step", [3600.0, -3600.0])
def test_a_step_is_refused_and_logged_once(step: float, caplog: pytest.LogCaptureFixture) -> None:
    m = Machine()
    clock = SteadyClock(m.wall, elapsed=m.mono)
    before = clock()
    m.step += step
    m.elapsed += 10
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert clock() == before + 10
        m.elapsed += 10
        assert clock() == before + 20
    lines = [r for r in caplog.records if "clock stepped" in r.getMessage()]
    assert len(lines) == 1
    assert f"{step:+.0f}" in lines[0].getMessage()


def test_max_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_step"):
        SteadyClock(max_step=0)


def _app(clock: SteadyClock) -> Starlette:
    async def login(request: Request) -> JSONResponse:
        request.session["user"] = "ada"
        return JSONResponse({})

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.session.get("user")})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/me", me)])
    app.add_middleware(
        SessionMiddleware,
        store=MemoryStore(),
        secrets=[SECRET],
        cookie_name="sid",
        idle_timeout=1200,
        absolute_timeout=3000,
        clock=clock,
    )
    return app


async def _user(client: httpx.AsyncClient) -> str | None:
    answer = await client.get("/me")
    user: str | None = answer.json()["user"]
    return user


@pytest.mark.anyio
async def test_a_step_forward_logs_nobody_out() -> None:
    m = Machine()
    app = _app(SteadyClock(m.wall, elapsed=m.mono))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        await client.post("/login")
        m.step += 3600  # past the 20-minute idle timeout, by the wall clock
        m.elapsed += 60
        assert await _user(client) == "ada"


@pytest.mark.anyio
async def test_a_step_back_does_not_stretch_the_absolute_timeout() -> None:
    m = Machine()
    app = _app(SteadyClock(m.wall, elapsed=m.mono))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        await client.post("/login")
        m.step -= 3600
        for _ in range(5):  # active every 10 minutes: the idle timeout never bites
            m.elapsed += 590
            assert await _user(client) == "ada"
        m.elapsed += 590  # 3540 s of real time: past the 3000 s absolute timeout
        assert await _user(client) is None
