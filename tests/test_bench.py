"""The bench runners' own logic: wrk parsing, statistics, the noise warning, the apps.

No server is started and nothing is timed: these pin what the tables are computed
from, so a figure printed by ``bench/run.py`` means what its header says.
"""

from __future__ import annotations

import argparse
import importlib.util

import httpx
import pytest
from bench import _common as c
from bench import apps as bench_apps
from bench import run as core_run
from bench.flask import run as flask_run
from bench.redis import run as redis_run

# Real wrk 4.1 output (a run against a local server), trimmed of nothing.
WRK_OK = """\
Running 1s test @ http://127.0.0.1:18765/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.53ms    2.86ms  25.19ms   89.17%
    Req/Sec     2.07k   658.81     3.07k    72.73%
  Latency Distribution
     50%    1.59ms
     75%    2.62ms
     90%    5.67ms
     99%   15.51ms
  2270 requests in 1.10s, 3.63MB read
Requests/sec:   2060.08
Transfer/sec:      3.29MB
"""
WRK_NON_2XX = WRK_OK.replace(
    "  2270 requests in 1.10s, 3.63MB read\n",
    "  2270 requests in 1.10s, 3.63MB read\n  Non-2xx or 3xx responses: 2247\n",
)
WRK_TIMEOUTS = WRK_OK.replace(
    "  2270 requests in 1.10s, 3.63MB read\n",
    "  2270 requests in 1.10s, 3.63MB read\n"
    "  Socket errors: connect 0, read 0, write 0, timeout 3\n",
)


def samples(*rps: float) -> list[c.Sample]:
    return [c.Sample(r, 1.0, float(i + 1)) for i, r in enumerate(rps)]


def test_parse_wrk_reads_rate_and_percentiles() -> None:
    """Requests/s, p50 and p99 come from wrk's summary and latency distribution."""
    got = c.parse_wrk(WRK_OK)
    assert got == c.Sample(2060.08, 1.59, 15.51)


def test_parse_wrk_converts_latency_units_to_milliseconds() -> None:
    """wrk prints us, ms or s per line; the sample is always in milliseconds."""
    out = WRK_OK.replace("1.59ms", "870.00us").replace("15.51ms", "1.20s")
    got = c.parse_wrk(out)
    assert got.p50_ms == pytest.approx(0.87)
    assert got.p99_ms == pytest.approx(1200.0)


def test_parse_wrk_refuses_failed_answers() -> None:
    """A run with non-2xx answers measured errors, not the app: it is refused."""
    with pytest.raises(ValueError, match="2247 failed responses"):
        c.parse_wrk(WRK_NON_2XX)


def test_parse_wrk_refuses_socket_errors() -> None:
    """Timeouts (or any socket error) make the run worthless: it is refused."""
    with pytest.raises(ValueError, match="timeout 3"):
        c.parse_wrk(WRK_TIMEOUTS)


def test_parse_wrk_refuses_output_without_a_rate() -> None:
    """Output that is not a finished wrk run (a crash, a usage message) is refused."""
    with pytest.raises(ValueError, match="Requests/sec"):
        c.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_summary_is_the_median_with_its_spread_not_the_best() -> None:
    """A cell is the median of its rounds, with min and max beside it."""
    s = c.summarize(samples(100, 300, 200))
    assert (s.median, s.low, s.high, s.rounds) == (200, 100, 300, 3)
    assert s.spread == "100-300"
    assert s.p99_ms == 2.0  # the median of the rounds' p99s (1, 2, 3)


def test_summary_of_an_even_number_of_rounds() -> None:
    """With an even number of rounds the median is the mean of the middle two."""
    assert c.summarize(samples(100, 400, 200, 300)).median == 250


def test_summary_of_nothing_is_an_error() -> None:
    """A cell without a single round has no figure to print."""
    with pytest.raises(ValueError, match="no samples"):
        c.summarize([])


def test_ratio_pairs_rounds_so_a_slow_spell_cancels() -> None:
    """A round where the machine slowed both apps by half gives the true ratio, where
    the ratio of medians would not."""
    kind = samples(90, 50, 100)
    bare = samples(100, 50, 100)
    assert c.paired_ratio(kind, bare) == 1.0  # per round: 0.9, 1.0, 1.0
    assert c.summarize(kind).median / c.summarize(bare).median == 0.9


def test_ratio_without_a_base_is_none() -> None:
    """No bare app in the run: no ratio, rather than a division by zero."""
    assert c.paired_ratio(samples(10), []) is None
    assert c.fmt_ratio(None) == "-"


@pytest.mark.parametrize("ratio", [0.97, 1.0, 1.03, None])
def test_no_noise_warning_inside_the_band(ratio: float | None) -> None:
    """A do-nothing middleware within 0.97-1.03 of bare: the run can be judged."""
    assert c.noise_warning(ratio) is None


@pytest.mark.parametrize("ratio", [0.96, 1.04, 0.5])
def test_noise_warning_outside_the_band(ratio: float) -> None:
    """Outside 0.97-1.03 the run says it is too noisy to judge, with the ratio."""
    warning = c.noise_warning(ratio)
    assert warning is not None
    assert warning.startswith("WARNING")
    assert f"{ratio:.3f}" in warning
    assert "too noisy" in warning


def test_interleave_rotates_the_app_order_each_round() -> None:
    """Every app runs once per scenario per round, and no app always runs first."""
    calls: list[tuple[int, str, str]] = []

    def run(rnd: int, scenario: str, app: str) -> c.Sample:
        calls.append((rnd, scenario, app))
        return c.Sample(1.0, 1.0, 1.0)

    c.interleave(2, ["read", "write"], ["a", "b", "c"], run)
    assert [app for rnd, scenario, app in calls if rnd == 0 and scenario == "read"] == list("abc")
    assert [app for rnd, scenario, app in calls if rnd == 1 and scenario == "write"] == list("bca")
    assert len(calls) == 12


def test_table_aligns_names_left_and_numbers_right() -> None:
    """Names line up on the left, numbers on the right, under their headers."""
    lines = c.table(["app", "req/s"], [["bare", "9"], ["sessionware", "12345"]], left=1)
    assert lines.splitlines() == [
        "app          req/s",
        "bare             9",
        "sessionware  12345",
    ]


def test_setup_names_resolve_to_uvicorn_options() -> None:
    """``loop-http`` becomes uvicorn's --loop and --http; auto resolves as uvicorn does."""
    assert c.resolve_setup("asyncio-h11") == ("asyncio", "h11")
    loop, http = c.resolve_setup("auto-auto")
    assert loop == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    assert http == ("httptools" if importlib.util.find_spec("httptools") else "h11")


def test_a_bad_setup_name_says_the_fix() -> None:
    """A misspelt set-up stops the runner with the accepted form."""
    with pytest.raises(SystemExit, match="asyncio-h11 or uvloop-httptools"):
        c.resolve_setup("uvloop")


def test_machine_facts_name_the_command_and_the_machine() -> None:
    """The report header carries the command, CPU, Python, versions and set-up."""
    facts = c.machine_facts("uvicorn --loop asyncio --http h11")
    for start in ("command: python ", "cpu: ", "os: ", "packages: uvicorn ", "placement: "):
        assert any(line.startswith(start) for line in facts.splitlines()), start
    assert facts.splitlines()[-1] == "set-up: uvicorn --loop asyncio --http h11"


def core_args(scenarios: str) -> argparse.Namespace:
    return argparse.Namespace(scenarios=scenarios)


def test_core_report_gives_ratios_to_bare_and_to_the_vary_floor() -> None:
    """Each row carries its ratio to bare and to the Vary-only middleware."""
    cells = {
        ("bare", "read"): samples(1000, 1000),
        ("passthrough", "read"): samples(1000, 1000),
        ("vary", "read"): samples(800, 800),
        ("memory", "read"): samples(600, 600),
    }
    out = core_run.report(["bare", "passthrough", "vary", "memory"], cells, "t", core_args("read"))
    memory = next(line for line in out.splitlines() if line.startswith("sessionware + Memory"))
    assert memory.split()[-2:] == ["0.60", "0.75"]
    assert "WARNING" not in out


def test_core_report_warns_when_the_do_nothing_middleware_drifts() -> None:
    """A do-nothing middleware at 0.90 of bare prints the noise warning for that scenario."""
    cells = {("bare", "write"): samples(1000), ("passthrough", "write"): samples(900)}
    out = core_run.report(["bare", "passthrough"], cells, "t", core_args("write"))
    assert "write: WARNING" in out
    assert "0.900" in out


def test_every_runner_knows_the_create_scenario() -> None:
    """read, write and create are the same routes in the three runners."""
    expected = {"read": "/read", "write": "/write", "create": "/login"}
    for runner in (core_run, redis_run, flask_run):
        assert expected == runner.SCENARIOS


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "vary"), [("bare", None), ("passthrough", None), ("vary", "Cookie")]
)
async def test_only_the_floor_app_adds_vary(
    kind: str, vary: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The floor adds ``Vary: Cookie`` and nothing else; bare and passthrough add nothing."""
    monkeypatch.setenv("BENCH_KIND", kind)
    transport = httpx.ASGITransport(app=bench_apps.make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        resp = await client.get("/read")
    assert resp.status_code == 200
    assert resp.headers.get("vary") == vary
    assert "set-cookie" not in resp.headers


@pytest.mark.anyio
async def test_memory_app_creates_a_session_on_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """The create scenario's route hands out a session cookie on the session apps."""
    monkeypatch.setenv("BENCH_KIND", "memory")
    transport = httpx.ASGITransport(app=bench_apps.make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        resp = await client.get("/login")
    assert resp.status_code == 200
    assert resp.headers["set-cookie"].startswith("sid=")


def test_flask_report_warns_when_the_do_nothing_middleware_drifts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The Flask bench's gauge at 0.90 of bare warns for that scenario; at 1.00 it is quiet."""
    apps = {a.kind: flask_run.App(a.kind, a.label, a.shared) for a in flask_run.APPS[:2]}
    apps["bare"].samples["read"] = samples(1000, 1000)
    apps["bare"].samples["write"] = samples(1000, 1000)
    apps["passthrough"].samples["read"] = samples(1000, 1000)
    apps["passthrough"].samples["write"] = samples(900, 900)
    args = argparse.Namespace(connections=8, seconds=1, rounds=2, redis_core=0,
                              lost_clients=32, lost_requests=40)  # fmt: skip
    flask_run.report(list(apps.values()), ["read", "write"], args)
    out = capsys.readouterr().out
    assert "write: WARNING" in out and "0.900" in out
    assert "read: WARNING" not in out
