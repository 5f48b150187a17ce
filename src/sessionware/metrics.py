"""OpenTelemetry metrics: a counter of security events and a histogram of store latency.

Optional (``pip install 'sessionware[otel]'``, which brings ``opentelemetry-api``): this
module is the only one that imports OpenTelemetry, and only when it is imported, so an
app that does not use it runs exactly as before. The app's configured meter provider
(an SDK, an exporter) receives the measurements; without one, the API's no-op meter
makes them free::

    from sessionware.metrics import Metrics

    metrics = Metrics()
    events = Events({"*": metrics})  # sessionware.events: one count per event
    store = metrics.timed(RedisStore.from_url(url))  # each store call timed

``sessionware.events`` counts events by their ``event`` attribute (``login``,
``login_failed``...); ``sessionware.store.duration`` records each store call in
seconds by its ``operation`` (``load``, ``apply``...), both faces alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

from sessionware._extras import requires
from sessionware.events import Event

with requires("otel"):
    from opentelemetry import metrics as _otel

__all__ = ["Metrics", "TimedStore"]

#: The store methods timed: the store protocol's face (others pass through untimed).
_TIMED = ("load", "create", "apply", "delete", "incr", "link", "unlink", "keys_of")


class Metrics:
    """The instruments: call it with an :class:`~sessionware.events.Event` to count it."""

    def __init__(self, meter_provider: Any = None) -> None:
        provider = meter_provider or _otel.get_meter_provider()
        meter = provider.get_meter("sessionware")
        self.events = meter.create_counter(
            "sessionware.events", unit="{event}", description="Security events by name"
        )
        self.store_duration = meter.create_histogram(
            "sessionware.store.duration", unit="s", description="Session store call latency"
        )

    def __call__(self, event: Event) -> None:
        """Count ``event`` (an :class:`~sessionware.events.Events` handler)."""
        self.events.add(1, {"event": event.name})

    def timed(self, store: Any) -> TimedStore:
        """``store`` with every call of its async and sync faces timed."""
        return TimedStore(store, self.store_duration.record)


class TimedStore:
    """A store that records how long each call of the store protocol takes.

    Everything else (``purge_expired``, ``close``...) passes through. The store's
    in-process fast paths are not taken through it, so every read is measured.
    """

    def __init__(self, store: Any, record: Callable[..., None]) -> None:
        self.inner = store
        self._record = record
        for name in _TIMED:
            setattr(self, name, self._async(name))

    def _async(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)
        record = self._record
        attributes = {"operation": name}

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                record(time.perf_counter() - start, attributes)

        return timed

    @cached_property
    def sync(self) -> _TimedSync:
        """The wrapped store's sync face, timed the same way."""
        return _TimedSync(self.inner.sync, self._record)

    async def close(self) -> None:
        """Close the wrapped store."""
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _TimedSync:
    def __init__(self, face: Any, record: Callable[..., None]) -> None:
        self.inner = face
        for name in _TIMED:
            setattr(self, name, _sync(getattr(face, name), name, record))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _sync(method: Callable[..., Any], name: str, record: Callable[..., None]) -> Callable[..., Any]:
    attributes = {"operation": name}

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            record(time.perf_counter() - start, attributes)

    return timed
