"""OpenTelemetry metrics, read back through the real SDK's in-memory reader: one count per
event by name, each store call's latency by operation on both faces; and without
OpenTelemetry nothing imports it and sessionware.metrics names the extra."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sessionware.events import Events
from sessionware.metrics import Metrics
from sessionware.stores import Store
from tests.test_auth_support import Clock, client, make_app

pytestmark = pytest.mark.anyio


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """The data points of metric ``name`` collected so far."""
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def test_events_are_counted_and_store_calls_timed(store: Store, clock: Clock) -> None:
    """A login and a logout count one ``login`` and one ``logout``; the store's loads and
    writes show up in the latency histogram under their operation names."""
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader]))
    app = make_app(store=metrics.timed(store), clock=clock, events=Events({"*": metrics}))
    async with client(app) as c:
        await c.post("/login", json={"user": "gus"})
        assert (await c.get("/me")).json()["user"] == "gus"
        await c.post("/logout")
    counts = {p.attributes["event"]: p.value for p in points(reader, "sessionware.events")}
    assert counts == {"session_created": 1, "login": 1, "session_destroyed": 1, "logout": 1}
    timed = {p.attributes["operation"]: p for p in points(reader, "sessionware.store.duration")}
    assert {"load", "create", "link", "delete", "unlink"} <= set(timed)
    assert timed["load"].count >= 1 and timed["load"].sum > 0


def test_sync_face_is_timed(tmp_path: Any) -> None:
    """The wrapped store's sync face (what WSGI apps use) is timed too."""
    from sessionware.stores import SQLiteStore

    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider(metric_readers=[reader]))
    store = metrics.timed(SQLiteStore(tmp_path / "s.db"))
    assert store.sync.load("0" * 64) is None
    store.sync.create("1" * 64, {"x": "1"}, 60.0)
    ops = {p.attributes["operation"]: p.count for p in points(reader, "sessionware.store.duration")}
    assert ops == {"load": 1, "create": 1}


def test_without_opentelemetry_nothing_changes() -> None:
    """With OpenTelemetry missing, sessionware and its events import and never touch it,
    and sessionware.metrics names the extra to install."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import sessionware, sessionware.events, sessionware.asgi, sessionware.auth\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry') and sys.modules[m]]\n"
        "try:\n"
        "    import sessionware.metrics\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'sessionware[otel]'" in out.stdout, out.stdout + out.stderr
