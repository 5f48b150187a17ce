"""The framework-neutral CSRF check, driven as a WSGI adapter would: a hand-made
RequestView over real sessions (SessionCore over MemoryStore, plain calls), no
Starlette anywhere; and the rule that only the ASGI glue may import a framework."""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sessionware import SessionConfig
from sessionware.core import SessionCore
from sessionware.csrf.check import CSRFCheck, NeedsToken, Refusal
from sessionware.csrf.exempt import csrf_exempt, is_exempt
from sessionware.csrf.templates import csrf_input, csrf_token
from sessionware.session import CSRF_FIELD, BaseSession, SyncSession
from sessionware.stores import MemoryStore
from tests.helpers import SECRET

BASE = "https://app.example"
SAME = [(b"sec-fetch-site", b"same-origin"), (b"origin", BASE.encode())]
FORM = [(b"content-type", b"application/x-www-form-urlencoded; charset=utf-8")]
PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sessionware" / "csrf"


@dataclass
class View:
    """A RequestView by hand: what a WSGI adapter would build from its environ."""

    method: str
    headers: list[tuple[bytes, bytes]]
    session: BaseSession
    scheme: str = "https"
    client: str | None = "203.0.113.7"
    state: dict[str, Any] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def add_cookie(self, set_cookie: str) -> None:
        self.cookies.append(set_cookie)


class Site:
    """One app: a core over MemoryStore, requests opened and finished with plain calls."""

    def __init__(self, **options: Any) -> None:
        config = SessionConfig(secrets=[SECRET], cookie_name="sid")
        self.core = SessionCore(config, MemoryStore(development=True))
        self.check = CSRFCheck(**options)

    def view(
        self, method: str, headers: list[tuple[bytes, bytes]], cookie: str | None = None
    ) -> View:
        lines = [(b"host", b"app.example"), *headers]
        return View(method, lines, self.core.run(self.core.begin(cookie, SyncSession)))

    def respond(self, view: View) -> str | None:
        """Seed, finish and return the cookie the browser sends back (or None)."""
        self.check.seed(view)
        out = self.core.run(self.core.finish(view.session, 200, view.headers, view.scheme))
        pairs = [v.split(";", 1)[0] for v in out]
        return next((p for p in pairs if p.startswith("sid=") and p != "sid="), None)

    def visitor(self) -> tuple[str, str]:
        """A browser with a stored session: its cookie and a token rendered for it."""
        first = self.view("POST", SAME)
        first.session["n"] = 1
        cookie = self.respond(first)
        assert cookie is not None
        page = self.view("GET", [], cookie)
        self.check.attach(page)
        return cookie, csrf_token(page)


def test_safe_method_passes_even_cross_site() -> None:
    """GET is never judged: no refusal, no token needed, the body is the adapter's."""
    site = Site()
    cookie, _ = site.visitor()
    view = site.view("GET", [(b"sec-fetch-site", b"cross-site")], cookie)
    assert site.check.before_body(view) is None


def test_unsafe_without_token_is_refused() -> None:
    """A session's POST needs a token; without one it gets the 403 the middleware sends."""
    site = Site()
    cookie, _ = site.visitor()
    view = site.view("POST", SAME, cookie)
    need = site.check.before_body(view)
    assert need == NeedsToken(header=None, field=None)
    refusal = site.check.verify(view, None)
    assert refusal == Refusal(403, "CSRF token missing", (("Vary", "Origin, Sec-Fetch-Site"),))
    assert refusal.text == "Forbidden: CSRF token missing\n"


def test_cross_site_origin_is_refused_before_the_body() -> None:
    """A foreign Origin is refused on the headers alone, even with a valid token."""
    site = Site()
    cookie, token = site.visitor()
    view = site.view(
        "POST", [(b"origin", b"https://evil.example"), (b"x-csrf-token", token.encode())], cookie
    )
    refusal = site.check.before_body(view, path="/notes")
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.reason) == (403, "request from another origin refused (Origin)")


def test_valid_header_token_passes() -> None:
    """The token rendered for this session, sent in X-CSRF-Token, passes."""
    site = Site()
    cookie, token = site.visitor()
    view = site.view("POST", [*SAME, (b"x-csrf-token", token.encode())], cookie)
    need = site.check.before_body(view)
    assert need == NeedsToken(header=token, field=None)
    assert site.check.verify(view, need.header) is None


def test_token_of_another_session_is_refused() -> None:
    """Mallory's valid token is refused in Alice's session, and Alice's own passes."""
    site = Site()
    _, mallory = site.visitor()
    alice, own = site.visitor()
    view = site.view("POST", SAME, alice)
    assert site.check.verify(view, mallory) == Refusal.of(403, "CSRF token invalid")
    assert site.check.verify(view, own) is None


def test_form_body_names_the_field_to_read() -> None:
    """Without a header token a form body is searched, under the configured field name."""
    site = Site(field_name="tok")
    cookie, token = site.visitor()
    need = site.check.before_body(site.view("POST", [*SAME, *FORM], cookie))
    assert need == NeedsToken(header=None, field="tok")
    json = [(b"content-type", b"application/json")]
    assert site.check.before_body(site.view("POST", [*SAME, *json], cookie)) == NeedsToken(
        None, None
    )
    with_header = [*SAME, *FORM, (b"x-csrf-token", token.encode())]
    assert site.check.before_body(site.view("POST", with_header, cookie)) == NeedsToken(
        token, None
    )


def test_visitor_without_session_vouched_by_browser_passes() -> None:
    """No session and a same-origin browser: the gate alone lets a login form through."""
    site = Site()
    assert site.check.before_body(site.view("POST", SAME)) is None
    headerless = site.view("POST", FORM)
    assert site.check.before_body(headerless) == NeedsToken(None, "_csrf")
    site.check.attach(headerless)
    anonymous = csrf_token(headerless)
    assert anonymous.count(".") == 2 and headerless.session.get_meta(CSRF_FIELD) is None
    assert site.check.verify(headerless, anonymous) is None


def test_seed_gives_a_new_stored_session_its_secret() -> None:
    """A session created by this response gets its secret in the same write; a read does not."""
    site = Site()
    bare = site.view("GET", [])
    site.check.seed(bare)
    assert bare.session.get_meta(CSRF_FIELD) is None  # nothing stored, so nothing seeded
    fresh = site.view("POST", SAME)
    fresh.session["n"] = 1
    site.check.seed(fresh)
    assert fresh.session.get_meta(CSRF_FIELD) is not None


def test_report_only_logs_instead_of_refusing(caplog: pytest.LogCaptureFixture) -> None:
    """A 403 becomes None, logged as 'would refuse'; the 413 cap is still enforced."""
    caplog.set_level(logging.WARNING, logger="sessionware.security")
    site = Site(report_only=True)
    view = site.view("POST", [(b"sec-fetch-site", b"cross-site")])
    assert site.check.before_body(view, path="/x") is None
    assert "would refuse" in caplog.text and "'/x'" in caplog.text
    assert site.check.body_too_large(view, "streamed").status == 413


def test_host_not_allowed_is_400() -> None:
    """allowed_hosts refuses a Host the app does not serve, on any method."""
    site = Site(allowed_hosts=["other.example"])
    refusal = site.check.host_refusal(site.view("GET", []))
    assert refusal == Refusal(400, "Host not allowed")
    assert refusal.text == "Bad Request: Host not allowed\n"


def test_templates_need_an_attached_check() -> None:
    """csrf_token refuses a request no check protects; csrf_input escapes the field name."""
    site = Site(field_name='a"b')
    view = site.view("GET", [])
    with pytest.raises(RuntimeError, match="CSRFMiddleware"):
        csrf_token(view)
    site.check.attach(view)
    assert csrf_input(view).startswith('<input type="hidden" name="a&quot;b" value="')


def test_exemptions_by_path_and_mark() -> None:
    """exempt_paths is plain path matching; @csrf_exempt is a mark any adapter can read."""
    check = CSRFCheck(exempt_paths=["/hooks/*", "/ping"])
    assert check.exempt("/hooks/stripe") and check.exempt("/ping")
    assert not check.exempt("/hooks/../notes") and not check.exempt("/pingx")

    @csrf_exempt
    def hook() -> None: ...

    assert is_exempt(hook) and not is_exempt(test_exemptions_by_path_and_mark)


# -- no framework below the glue -----------------------------------------------------------


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Every module a file imports, and whether at module level (function bodies included)."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in top))
    return found


FRAMEWORKS = ("starlette", "fastapi", "flask", "werkzeug", "django")


def test_neutral_modules_import_no_framework() -> None:
    """Only csrf/asgi.py may import a framework (or sessionware's ASGI adapter)."""
    neutral = [p for p in PACKAGE.glob("*.py") if p.name not in ("asgi.py", "__init__.py")]
    assert {p.stem for p in neutral} >= {"check", "gate", "host", "token", "exempt", "form"}
    for path in neutral:
        for module, _ in _imports(path):
            root = module.split(".")[0]
            glue = module in ("sessionware.asgi", "sessionware.csrf.asgi")
            assert root not in FRAMEWORKS and not glue, (path.name, module)


def test_asgi_glue_imports_only_starlette_types_at_module_level() -> None:
    """The glue takes ASGI's type names at import; the router only when it must match."""
    found = _imports(PACKAGE / "asgi.py")
    at_top = {m for m, top in found if top and m.split(".")[0] in FRAMEWORKS}
    assert at_top == {"starlette.types"}


@pytest.mark.parametrize(
    "origins",
    [
        (b"https://evil.example", b"https://testserver"),
        (b"https://testserver", b"https://evil.example"),
    ],
)
def test_a_second_origin_line_cannot_hide_behind_the_first(origins: tuple[bytes, bytes]) -> None:
    """Repeated Origin lines are read by the library's one rule (joined), which no origin
    check accepts: in either order the request is refused before its token is looked at."""
    site = Site()
    cookie, token = site.visitor()
    lines = [(b"origin", origins[0]), (b"origin", origins[1]), (b"x-csrf-token", token.encode())]
    refusal = site.check.before_body(site.view("POST", lines, cookie), path="/notes")
    assert isinstance(refusal, Refusal)
    assert refusal.status == 403
