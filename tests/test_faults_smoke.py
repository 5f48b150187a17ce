"""The fault harness's short runs: a real server under load while its store is killed,
restarted or flooded, then every acknowledged write and logout checked. Targets, not
timings: nothing acknowledged is lost, no logged-out session comes back, service
returns without a restart, and no request is answered with a 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bench.faults.harness import Row
from bench.faults.redis_scenarios import sentinel_kill_ack
from bench.faults.scenarios import flood, postgres_restart, sqlite_kill


def _run(scenario: object, tmp_path: Path) -> Row:
    row: Row = asyncio.run(scenario(tmp_path, quick=True))  # type: ignore[operator]
    print(row.cells())
    return row


def _holds(row: Row, *, recovers: bool) -> None:
    assert row.served > 100, row.cells()
    assert row.acknowledged > 0, row.cells()
    assert row.lost == 0, row.cells()
    assert row.resurrected == 0, row.cells()
    assert not any(status[:1] == "5" and status != "503" for status in row.errors), row
    if recovers:
        assert row.recovery is not None, row.cells()


def test_sqlite_survives_the_server_killed_mid_write(tmp_path: Path) -> None:
    row = _run(sqlite_kill, tmp_path)
    _holds(row, recovers=True)
    assert "integrity_check: ok" in row.notes


def test_postgres_restart_is_503s_then_service_without_an_app_restart(tmp_path: Path) -> None:
    row = _run(postgres_restart, tmp_path)
    _holds(row, recovers=True)
    assert row.errors["503"] > 0  # the outage was seen, as 503s


def test_a_flood_of_bad_cookies_is_never_a_500_and_good_users_go_on(tmp_path: Path) -> None:
    row = _run(flood, tmp_path)
    _holds(row, recovers=False)
    assert row.errors["flood 5xx"] == 0


@pytest.mark.parametrize("scenario", [sentinel_kill_ack])
def test_a_sentinel_failover_with_replica_acks_loses_nothing(
    tmp_path: Path, scenario: object
) -> None:
    row = _run(scenario, tmp_path)
    _holds(row, recovers=True)
    assert "new master named" in " ".join(row.notes)
