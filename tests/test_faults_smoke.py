"""The fault harness's short runs: a real server under load while its store is killed,
restarted, flooded or its clock stepped, then every acknowledged write and logout
checked. Targets, not timings: nothing acknowledged is lost, no logged-out session
comes back, service returns without a restart, no record is half-written, and no
request is answered with a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from bench.faults.harness import Row
from bench.faults.redis_scenarios import sentinel_kill_ack
from bench.faults.scenarios import clock_step, flood, postgres_restart, sqlite_kill

Scenario = Callable[..., Awaitable[Row]]


def _run(scenario: Scenario, tmp_path: Path) -> Row:
    row = asyncio.run(scenario(tmp_path, quick=True))
    print(row.cells())
    return row


def _holds(row: Row, *, recovers: bool) -> None:
    assert row.served > 100, row.cells()
    assert row.acknowledged > 0, row.cells()
    assert row.lost == 0, row.cells()
    assert row.resurrected == 0, row.cells()
    assert row.facts.get("dropped") == 0, row.cells()
    assert not any(status[:1] == "5" and status != "503" for status in row.errors), row
    if recovers:
        assert row.recovery is not None, row.cells()


def test_sqlite_survives_the_server_killed_mid_write(tmp_path: Path) -> None:
    """Workers SIGKILLed mid-write leave an intact file, every record whole, nothing lost."""
    row = _run(sqlite_kill, tmp_path)
    _holds(row, recovers=True)
    assert row.facts["integrity_ok"], row.cells()
    assert row.facts["partial"] == 0, row.cells()


def test_postgres_restart_is_503s_then_service_without_an_app_restart(tmp_path: Path) -> None:
    """A crashed and restarted PostgreSQL is 503s meanwhile, then writes again through
    the same pool, with no record half-written."""
    row = _run(postgres_restart, tmp_path)
    _holds(row, recovers=True)
    assert row.errors["503"] > 0, row.cells()  # the outage was seen, as 503s
    assert row.facts["partial"] == 0, row.cells()


def test_a_flood_of_bad_cookies_is_never_a_500_and_good_users_go_on(tmp_path: Path) -> None:
    """Garbage, oversized, tampered and unknown signed cookies get answers, never a 500."""
    row = _run(flood, tmp_path)
    _holds(row, recovers=False)
    assert row.facts["flood_failed"] == 0, row.cells()


def test_a_stepped_clock_neither_signs_out_nor_stretches_a_session(tmp_path: Path) -> None:
    """Stepped an hour either way, the app's clock signs nobody out and every session
    is refused at its absolute timeout in real time."""
    row = _run(clock_step, tmp_path)
    assert row.facts["signed_out"] == 0, row.cells()
    assert row.facts["outlived"] == 0, row.cells()
    assert row.served > 0 and not row.errors, row.cells()


@pytest.mark.parametrize("scenario", [sentinel_kill_ack])
def test_a_sentinel_failover_with_replica_acks_loses_nothing(
    tmp_path: Path, scenario: Scenario
) -> None:
    """A Sentinel failover with replica acks loses no acknowledged write or logout."""
    row = _run(scenario, tmp_path)
    _holds(row, recovers=True)
    assert "new master named" in " ".join(row.notes)
