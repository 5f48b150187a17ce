"""One HTTP contract, two frameworks: ``sessionware demo --tls`` served by uvicorn
(Starlette) and by gunicorn (``--framework flask``) answer the same sequence of
requests with the same status codes, Set-Cookie names and attributes, and key headers.

Both servers are real subprocesses on free ports, each on its own SQLite file; this
module starts them and stops exactly those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import start_demo, stop

PASSWORD = "correct horse battery"
SECRET = "contract-test-secret-" + "c" * 40
ENV = {
    "SESSION_SECRET": SECRET,
    "SESSION_IDLE_TIMEOUT": "300",
    "SESSION_ABSOLUTE_TIMEOUT": "900",
    "REMEMBER_ME_TTL": "900",
    "LOGIN_MAX_ATTEMPTS": "3",
    "LOGIN_WINDOW": "120",
}
FRAMEWORKS = ("starlette", "flask")
_CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
#: Compared as they are (lower-cased); ``server`` must be absent from both.
_KEY_HEADERS = (
    "content-type",
    "location",
    "cache-control",
    "allow",
    "server",
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "strict-transport-security",
)
#: Cookie attributes whose value is compared (Expires is compared by presence only).
_VALUED = ("path", "samesite", "max-age", "domain")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Both demos, running side by side."""
    urls: dict[str, str] = {}
    procs: list[Any] = []
    try:
        for framework in FRAMEWORKS:
            url, proc = start_demo(tmp_path_factory.mktemp(framework), framework, ENV)
            procs.append(proc)
            urls[framework] = url
        yield urls
    finally:
        for proc in procs:
            stop(proc)


class Browser:
    """A cookie-keeping client that records what the contract compares."""

    def __init__(self, base: str, record: list[tuple[Any, ...]]) -> None:
        self.http = httpx.Client(base_url=base, verify=False, timeout=10)  # noqa: S501 - own cert
        self.base = base
        self.jar: dict[str, str] = {}
        self.record = record

    def close(self) -> None:
        self.http.close()

    def send(
        self, method: str, path: str, data: dict[str, str] | None = None, **headers: str
    ) -> httpx.Response:
        h = {k.replace("_", "-"): v for k, v in headers.items()}
        h.setdefault("accept", "text/html")
        h["user-agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 contract-test"
        if method == "POST":
            h.setdefault("origin", self.base)
            h.setdefault("sec-fetch-site", "same-origin")
        if self.jar:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        response = self.http.request(method, path, data=data, headers=h)
        cookies = []
        for header in response.headers.get_list("set-cookie"):
            cookies.append(_cookie_shape(header))
            name, _, value = header.split(";")[0].partition("=")
            if not value or "max-age=0" in header.lower():
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        self.record.append(
            (
                f"{method} {_label(path)}",
                response.status_code,
                sorted(cookies),
                _key_headers(response),
            )
        )
        return response

    def token(self, path: str) -> str:
        found = _CSRF.search(self.send("GET", path).text)
        assert found, f"no _csrf on {path}"
        return found.group(1)

    def submit(self, page: str, action: str, data: dict[str, str]) -> httpx.Response:
        return self.send("POST", action, {**data, "_csrf": self.token(page)})


def _label(path: str) -> str:
    return re.sub(r"/sessions/[^/]+/revoke", "/sessions/<handle>/revoke", path)


def _cookie_shape(header: str) -> tuple[str, tuple[str, ...]]:
    """A Set-Cookie header without its value and date: name and attributes."""
    parts = [p.strip() for p in header.split(";")]
    name = parts[0].partition("=")[0]
    attrs = []
    for part in parts[1:]:
        key, _, value = part.partition("=")
        key = key.lower()
        attrs.append(f"{key}={value.lower()}" if key in _VALUED else key)
    if not parts[0].partition("=")[2]:
        attrs.append("<empty>")
    return name, tuple(sorted(attrs))


def _key_headers(response: httpx.Response) -> dict[str, str]:
    out = {n: response.headers[n].lower() for n in _KEY_HEADERS if n in response.headers}
    vary = {v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()}
    out["vary"] = ",".join(sorted(vary))
    if "allow" in out:  # a set: Starlette's own order varies from run to run
        out["allow"] = ",".join(sorted(m.strip() for m in out["allow"].split(",")))
    for name in ("retry-after", "etag", "last-modified"):
        if name in response.headers:
            out[name] = "<set>"  # compared by presence: the values are the server's own
    kind = out.get("content-type", "")
    if kind.startswith("application/json"):
        out["json-keys"] = ",".join(sorted(response.json()))
    return out


def run_sequence(base: str) -> list[tuple[Any, ...]]:
    """Register, login with remember-me, dashboard, devices, revoke, logout, a CSRF
    refusal, the login throttle, and a few error pages: everything recorded."""
    record: list[tuple[Any, ...]] = []
    a, b, c = (Browser(base, record) for _ in range(3))
    try:
        a.send("GET", "/")
        a.send("GET", "/healthz")
        a.send("GET", "/me", accept="application/json")
        a.send("GET", "/dashboard")
        assert a.submit("/register", "/register", {"username": "carol", "password": PASSWORD})
        a.send("GET", "/dashboard")
        a.submit("/dashboard", "/logout", {})
        a.submit(
            "/login",
            "/login",
            {"username": "carol", "password": PASSWORD, "next": "", "remember_me": "1"},
        )
        a.send("GET", "/dashboard")
        a.send("GET", "/me")
        b.submit("/login", "/login", {"username": "carol", "password": PASSWORD, "next": ""})
        devices = a.send("GET", "/sessions?format=json", accept="application/json").json()
        other = next(d["handle"] for d in devices["sessions"] if not d["current"])
        a.send("GET", "/sessions")
        a.submit("/sessions", f"/sessions/{other}/revoke", {"password": PASSWORD})
        b.send("GET", "/dashboard")
        a.send("POST", "/logout")  # no token: 403
        a.send("POST", "/logout", accept="application/json")
        a.send("GET", "/logout")  # 405
        a.send("GET", "/nope")
        a.send("GET", "/cookies")
        a.send("GET", "/static/style.css")
        a.send("GET", "/dashboard/")
        a.send("GET", "/sessions/x/revoke")
        a.send("POST", "/healthz", {"_csrf": a.token("/dashboard")})
        a.send("GET", "/password")
        a.submit(
            "/password",
            "/password",
            {"current_password": PASSWORD, "new_password": "short"},
        )
        a.submit(
            "/password",
            "/password",
            {"current_password": PASSWORD, "new_password": PASSWORD + " again"},
        )
        a.submit("/sessions", "/sessions/nosuchhandle/revoke", {"password": PASSWORD + " again"})
        a.submit("/dashboard", "/logout", {})
        for _ in range(5):
            c.submit("/login", "/login", {"username": "carol", "password": "wrong password"})
        c.send("GET", "/login")
    finally:
        for browser in (a, b, c):
            browser.close()
    return record


def test_both_frameworks_answer_the_same(servers: dict[str, str]) -> None:
    """Every step: the same status, cookies (names, attributes) and key headers."""
    seen = {framework: run_sequence(url) for framework, url in servers.items()}
    starlette, flask = seen["starlette"], seen["flask"]
    statuses = {step[1] for step in starlette}
    assert {200, 303, 400, 401, 403, 404, 405, 429} <= statuses
    assert any(name == "__Host-remember" for step in starlette for name, _ in step[2])
    differences = [
        f"{s[0]}:\n  starlette {s[1:]}\n  flask     {f[1:]}"
        for s, f in zip(starlette, flask, strict=True)
        if s != f
    ]
    assert not differences, "\n".join(differences)


def test_demo_command_takes_the_framework() -> None:
    """``sessionware demo`` serves Starlette by default, Flask with ``--framework flask``,
    and refuses any other framework as a usage error."""
    from sessionware.cli import _parser

    parser = _parser()
    assert parser.parse_args(["demo"]).framework == "starlette"
    assert parser.parse_args(["demo", "--framework", "flask"]).framework == "flask"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["demo", "--framework", "django"])
    assert exit_info.value.code == 2
