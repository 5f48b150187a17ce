"""The demo on the Redis store (``sessionware demo --store redis://...``): the same
contract, with the real Redis on 127.0.0.1:6379 under a throw-away key prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from starlette.applications import Starlette

from sessionware.stores import RedisStore
from tests.demo.conftest import PASSWORD, Client

pytestmark = pytest.mark.anyio

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_app(make_app: Callable[..., Starlette]) -> AsyncIterator[Starlette]:
    """The demo with sessions in Redis; its keys are deleted afterwards."""
    prefix = f"swtdemo{uuid.uuid4().hex[:8]}:"
    store = RedisStore.from_url(f"{REDIS}?prefix={prefix}")
    app = make_app(store=store)
    yield app
    await store.close()
    client = redis.Redis.from_url(REDIS)
    try:
        for key in client.scan_iter(match=prefix + "*"):
            client.unlink(key)
    finally:
        client.close()


async def test_sign_in_revoke_and_remember_on_redis(redis_app: Starlette) -> None:
    """Register, a second device, remember-me restore, revoke: all through Redis."""
    laptop, phone, restarted = Client(redis_app), Client(redis_app), Client(redis_app)
    try:
        await laptop.register("ruth")
        await phone.login("ruth", remember=True)
        restarted.jar["remember"] = phone.jar["remember"]
        assert (await restarted.get("/me")).json()["username"] == "ruth"
        assert (await laptop.get("/healthz")).json() == {"status": "ok", "store": "redis"}
        revoked = await laptop.submit(
            "/sessions", "/sessions/revoke-others", {"password": PASSWORD}
        )
        assert revoked.status_code == 303
        assert (await phone.get("/me")).status_code == 401
        assert (await restarted.get("/me")).status_code == 401
        assert (await laptop.get("/me")).status_code == 200
    finally:
        for c in (laptop, phone, restarted):
            await c.aclose()
