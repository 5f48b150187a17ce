"""A store error keeps its cause in the message, except text that may quote data."""

from __future__ import annotations

import psycopg
import redis.exceptions as rx

from sessionware.exceptions import StoreError, StoreUnavailableError
from sessionware.stores._redis_batch import store_error
from sessionware.stores.postgres import _store_error


def test_redis_error_keeps_a_runtime_cause() -> None:
    """'Event loop is closed' reaches the message of the StoreError it becomes."""
    err = store_error(RuntimeError("Event loop is closed"))
    assert type(err) is StoreError
    assert str(err) == "redis refused a command (RuntimeError: Event loop is closed)"


def test_redis_error_reply_keeps_only_its_first_word() -> None:
    """A server error reply may quote the command (and a value): only its code stays."""
    err = store_error(rx.ResponseError("ERR Error running script secret-value"))
    assert str(err) == "redis refused a command (ResponseError ERR)"
    foreign = store_error(rx.ResponseError("WRONGTYPE Operation against secret-value"))
    assert str(foreign) == "redis holds a value sessionware did not write (ResponseError)"


def test_redis_connection_error_is_unavailable_with_its_text() -> None:
    """A refused connection is an outage (503) and says where it failed."""
    err = store_error(rx.ConnectionError("Error 111 connecting to 127.0.0.1:1"))
    assert isinstance(err, StoreUnavailableError) and "127.0.0.1:1" in str(err)


def test_postgres_error_keeps_a_cause_that_is_not_the_servers() -> None:
    """A closed pool or loop shows its text; the server's own words (which may quote a
    value) stay out."""
    assert "Event loop is closed" in str(_store_error(RuntimeError("Event loop is closed"), "t"))
    quoted = _store_error(psycopg.errors.InvalidTextRepresentation('bad input "secret"'), "t")
    assert "secret" not in str(quoted) and "InvalidTextRepresentation" in str(quoted)
