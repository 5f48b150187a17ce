"""End-to-end fixtures: the demo served by a real server (``sessionware demo --tls``:
the Starlette app under uvicorn, then ``--framework flask`` under gunicorn; every test
runs against both) on a free port with a fresh SQLite file, an "evil" https page on
another port, and Debian's chromium driven by playwright's sync API.

Every test here is marked ``e2e``. The servers are subprocesses or threads this
module starts, and it stops exactly those.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.servers import free_port, start_demo, stop

CHROMIUM = "/usr/bin/chromium"
#: The demo's two apps, one contract: each e2e test runs against both.
FRAMEWORKS = ("starlette", "flask")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery"

#: Short limits, so the run stays quick; generous enough not to expire mid-test.
ENV = {
    "SESSION_IDLE_TIMEOUT": "300",
    "SESSION_ABSOLUTE_TIMEOUT": "900",
    "REMEMBER_ME_TTL": "900",
    "REMEMBER_ME_GRACE": "5",
    "LOGIN_MAX_ATTEMPTS": "3",
    "LOGIN_WINDOW": "120",
    # Every test registers its own users from 127.0.0.1: more than a person would.
    "REGISTER_MAX_ATTEMPTS": "500",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``e2e``."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Demo:
    """A running demo server."""

    url: str
    folder: Path
    log: Path
    framework: str = "starlette"

    @property
    def cert(self) -> Path:
        return self.folder / ".sessionware" / "demo-cert.pem"

    @property
    def key(self) -> Path:
        return self.folder / ".sessionware" / "demo-key.pem"


@pytest.fixture(scope="session", params=FRAMEWORKS)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """``sessionware demo --tls --framework F`` on a free port, in a fresh folder (no
    SESSION_SECRET: the demo makes its own)."""
    framework: str = request.param
    folder = tmp_path_factory.mktemp(f"demo-{framework}")
    url, proc = start_demo(folder, framework, ENV)
    log = folder / "server.log"
    try:
        _serving["framework"] = framework
        yield Demo(url=url, folder=folder, log=log, framework=framework)
    finally:
        stop(proc)


@dataclass
class Evil:
    """A page on another origin that posts a form to the demo as soon as it loads."""

    url: str


def _evil_handler(target: str) -> type[BaseHTTPRequestHandler]:
    page = f"""<!doctype html><html><body>
<h1>You won a prize!</h1>
<form id="f" method="post" action="{target}/logout">
  <input type="hidden" name="_csrf" value="guessed">
</form>
<script>document.getElementById("f").submit();</script>
</body></html>""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture(scope="session")
def evil(demo: Demo) -> Iterator[Evil]:
    """An https page on 127.0.0.1 but another port: same site, different origin, so the
    browser sends the SameSite=Lax cookie and only the CSRF check stands in the way."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _evil_handler(demo.url))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(demo.cert, demo.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Evil(url=f"https://127.0.0.1:{server.server_address[1]}/prize")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API, per module: while it runs it holds an event loop, so it
    must be gone before the anyio tests of other folders start."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: scripts/test installs Debian's chromium with apt")
    b = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    yield b
    b.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """Open browser contexts (separate cookie jars: "devices"); all closed at the end."""
    opened: list[BrowserContext] = []

    def open_one() -> BrowserContext:
        ctx = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 760})
        ctx.set_default_timeout(10_000)
        opened.append(ctx)
        return ctx

    yield open_one
    for ctx in opened:
        ctx.close()


#: The framework of the demo now serving (the session fixture runs one at a time).
_serving = {"framework": "starlette"}


#: The two viewports every page is checked at: a phone and a laptop.
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/ (``flask-`` first for the Flask app)."""
    ARTIFACTS.mkdir(exist_ok=True)
    prefix = "" if _serving["framework"] == "starlette" else _serving["framework"] + "-"
    path = ARTIFACTS / f"{prefix}{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


_counter = iter(range(1, 10_000))


def username(prefix: str) -> str:
    """A name no other test in this run uses (the server is shared)."""
    return f"{prefix}{next(_counter)}"


def register(page: Page, base: str, name: str, password: str = PASSWORD) -> None:
    """Create an account through the form; lands on the dashboard."""
    page.goto(base + "/register")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.fill("input[name=confirm_password]", password)
    page.click("form.stack button[type=submit]")
    page.wait_for_url(base + "/dashboard")


def login(
    page: Page, base: str, name: str, *, remember: bool = False, password: str = PASSWORD
) -> None:
    """Sign in through the form; lands on the dashboard."""
    page.goto(base + "/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    if remember:
        page.check("input[name=remember_me]")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(base + "/dashboard")
