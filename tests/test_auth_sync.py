"""Auth, remember-me and the login throttle from sync code, on the real stores.

Each "request" is what a sync (WSGI) adapter runs: ``core.run(core.begin(cookie,
SyncSession))``, the handler calling the sync twins (``sessionware.auth.sync``,
``remember.on_request_sync``, ``throttle.sync``), then ``core.run(core.finish(...))``.
Every store call goes through the store's sync face; the throttle races are real
threads. The stores are the real ones (memory, SQLite, Redis, PostgreSQL), each used
through its sync face only: no event loop runs, except where a test awaits a
coroutine on purpose to see it refuse a SyncSession.

The last tests hold the design in place: each public coroutine of auth and its sync
twin dispatch to one operation, with matching names and signatures.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import logging
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionware import SessionConfig, auth, remember
from sessionware.auth import devices, generation, revocation
from sessionware.auth import sync as twins
from sessionware.auth import throttle as throttle_module
from sessionware.auth.sync import login as sync_login
from sessionware.auth.sync import (
    logout,
    logout_everywhere,
    password_changed,
    reauthenticate,
    revoke,
    revoke_series_sessions,
    sessions_of,
)
from sessionware.core import SessionCore
from sessionware.exceptions import (
    ConfigurationError,
    HasherBusyError,
    HTTPError,
    TooManyAttemptsError,
)
from sessionware.remember import RememberConfig, on_request_sync, read_token, series_key
from sessionware.session import Session
from sessionware.signing import Signer
from sessionware.stores.base import StoreBase
from sessionware.throttle import (
    Attempt,
    LoginThrottle,
    RegistrationThrottle,
    SyncAttempt,
    SyncLoginThrottle,
    SyncRegistrationThrottle,
)
from tests.test_auth_support import (
    SECRET,
    STORES,
    Clock,
    HandView,
    SyncHandAdapter,
    sync_store,
)

#: The module (``sessionware.auth.login`` is also the name of the function it defines).
login = importlib.import_module("sessionware.auth.login")

SID = "__Host-sid"
REM = "__Host-remember"
IDLE = 1800
IP = "198.51.100.7"  # HandView's client address
THREADS = 16


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBase]:
    """A real store, used only through its sync face; Redis under a per-test prefix and
    PostgreSQL in tables of its own, both removed afterwards."""
    with sync_store(request.param, tmp_path) as s:
        yield s


@pytest.fixture
def core(store: StoreBase, clock: Clock) -> SessionCore:
    """One sync app over the store: every browser of a test shares it."""
    return SessionCore(SessionConfig(secrets=[SECRET], clock=clock), store)


def browsers(core: SessionCore, n: int) -> list[SyncHandAdapter]:
    """``n`` browsers of the app, each with its own cookie jar."""
    return [SyncHandAdapter(core) for _ in range(n)]


def signed_in(browser: SyncHandAdapter, user: str = "alice", **kw: Any) -> HandView:
    """A login request from ``browser``, answered (its cookies are in the jar)."""
    view = browser.request()
    sync_login(view, user, **kw)
    browser.respond(view)
    return view


def user_of(browser: SyncHandAdapter) -> str | None:
    """Who the browser's next request is signed in as."""
    return auth.current_user_id(browser.request())


def session_keys(store: StoreBase, user: str) -> list[str]:
    """The user's indexed sessions (remember-me series left out)."""
    return [k for k in store.sync.keys_of(user) if not k.startswith("rm:")]


def series_keys(store: StoreBase, user: str) -> list[str]:
    """The user's remember-me series."""
    return [k for k in store.sync.keys_of(user) if k.startswith("rm:")]


# -- login, logout, devices -----------------------------------------------------------


def test_login_regenerates_the_id_and_indexes_the_session(
    store: StoreBase, core: SessionCore
) -> None:
    """The sync login gives a new id (the one set before is dead), writes the device
    details and the index entry; logout deletes the record, the index entry and the
    cookie."""
    [browser] = browsers(core, 1)
    first = browser.request()
    first.session["cart"] = "3"
    browser.respond(first)
    before, old_key = browser.jar[SID], first.session.key

    view = browser.request([(b"user-agent", b"SyncBrowser/1.0")])
    sync_login(view, "alice")
    assert auth.current_user_id(view) == "alice" and auth.is_recent_login(view, 300)
    assert view.session.key != old_key and store.sync.load(old_key) is None
    sent = browser.respond(view)
    assert [c.split("=", 1)[0] for c in sent] == [SID]
    assert browser.jar[SID] != before  # session fixation: the planted id is dead
    [key] = session_keys(store, "alice")
    record = store.sync.load(key)
    assert record is not None and record["uid"] == "alice" and record["ua"] == "SyncBrowser/1.0"
    assert record["ip"] == IP

    view = browser.request()
    assert view.session["cart"] == "3"  # the data came along
    logout(view)
    sent = browser.respond(view)
    assert sent[0].startswith(f"{SID}=;") and "Max-Age=0" in sent[0]
    assert store.sync.load(key) is None and store.sync.keys_of("alice") == []
    assert user_of(browser) is None


def test_sessions_of_lists_and_revoke_ends_another_device(
    store: StoreBase, core: SessionCore
) -> None:
    """sessions_of by request (marking this device) and by store; revoke by handle ends
    the other browser's session and nothing else; a foreign or odd handle finds nothing."""
    laptop, phone = browsers(core, 2)
    signed_in(laptop)
    signed_in(phone)
    view = laptop.request()
    listed = sessions_of(view, "alice")
    assert sorted(d.current for d in listed) == [False, True]
    assert {d.ip for d in listed} == {IP}
    assert len(sessions_of(store, "alice")) == 2
    other = next(d for d in listed if not d.current)
    assert revoke(view, "bob", other.handle) is False  # another user's handle
    assert revoke(view, "alice", "not a handle \u00e9") is False
    assert revoke(view, "alice", other.handle) is True
    laptop.respond(view)
    assert user_of(phone) is None
    assert user_of(laptop) == "alice"
    assert [d.current for d in sessions_of(laptop.request(), "alice")] == [True]


def test_logout_everywhere_keeps_only_this_device(store: StoreBase, core: SessionCore) -> None:
    """logout_everywhere(keep=view) ends every other session; given only the store it ends
    them all, this one too."""
    laptop, phone, tablet = browsers(core, 3)
    for browser in (laptop, phone, tablet):
        signed_in(browser)
    view = laptop.request()
    assert logout_everywhere(view, "alice", keep=view) == 2
    laptop.respond(view)
    assert [user_of(b) for b in (laptop, phone, tablet)] == ["alice", None, None]
    assert len(session_keys(store, "alice")) == 1
    assert logout_everywhere(store, "alice") == 1
    assert user_of(laptop) is None and store.sync.keys_of("alice") == []


def test_password_changed_sweeps_and_rotates_this_session(
    store: StoreBase, core: SessionCore
) -> None:
    """password_changed ends the other sessions and every remember-me series, and gives
    this session a new id, still signed in and fresh."""
    laptop, phone = browsers(core, 2)
    cfg = RememberConfig(grace=0)
    for browser in (laptop, phone):
        view = browser.request()
        on_request_sync(view, cfg)
        sync_login(view, "alice", remember=True)
        browser.respond(view)
    assert len(series_keys(store, "alice")) == 2

    view = laptop.request()
    on_request_sync(view, cfg)  # what the remember-me step of every request does first
    before = laptop.jar[SID]
    assert password_changed(view, "alice") == 1
    sent = laptop.respond(view)
    assert laptop.jar[SID] != before
    assert any(c.startswith(f"{REM}=;") for c in sent)  # this browser's series is gone too
    assert series_keys(store, "alice") == []
    view = laptop.request()
    assert auth.current_user_id(view) == "alice" and auth.is_recent_login(view, 300)
    phone.jar.pop(SID)
    view = phone.request()
    on_request_sync(view, cfg)  # its remember-me cookie no longer signs it in
    assert auth.current_user_id(view) is None


def test_reauthenticate_rotates_and_freshens(
    store: StoreBase, core: SessionCore, clock: Clock
) -> None:
    """reauthenticate: a new id, the same user, fresh again."""
    [browser] = browsers(core, 1)
    signed_in(browser)
    clock.advance(600)
    view = browser.request()
    assert not auth.is_recent_login(view, 300)
    old = view.session.key
    reauthenticate(view)
    assert auth.is_recent_login(view, 300) and view.session.key != old
    browser.respond(view)
    assert store.sync.load(old) is None and user_of(browser) == "alice"
    assert session_keys(store, "alice") == [browser.request().session.key]


# -- remember-me ----------------------------------------------------------------------


def token_of(cookie: str) -> tuple[str, str]:
    """(selector, validator) of a remember-me cookie value."""
    parsed = read_token(cookie, Signer([SECRET], salt="remember"))
    assert parsed is not None
    return parsed


def visit(browser: SyncHandAdapter, cfg: RememberConfig) -> HandView:
    """A request through the sync remember-me step, then answered."""
    view = browser.request()
    on_request_sync(view, cfg)
    browser.respond(view)
    return view


def test_remember_me_restores_in_a_new_browser(store: StoreBase, core: SessionCore) -> None:
    """login(remember=True), then a new browser holding only the remember-me cookie is
    signed back in, not fresh, with a new session and a rotated validator."""
    cfg = RememberConfig(grace=0)
    first, again = browsers(core, 2)
    view = first.request()
    on_request_sync(view, cfg)
    sync_login(view, "alice", remember=True)
    sent = first.respond(view)
    assert sorted(c.split("=", 1)[0] for c in sent) == [REM, SID]
    issued = first.jar[REM]

    again.jar[REM] = issued  # the browser was closed: only the long-lived cookie is left
    view = visit(again, cfg)
    assert auth.current_user_id(view) == "alice" and auth.is_remembered(view)
    assert not auth.is_recent_login(view, 300)
    assert again.jar[SID] != first.jar[SID]
    assert token_of(again.jar[REM])[0] == token_of(issued)[0]  # the same series
    assert token_of(again.jar[REM])[1] != token_of(issued)[1]  # a new validator
    assert [d.remembered for d in sessions_of(store, "alice")].count(True) == 1

    view = again.request()
    on_request_sync(view, cfg)
    logout(view)
    sent = again.respond(view)
    assert any(c.startswith(f"{REM}=;") for c in sent)
    assert series_keys(store, "alice") == []


def test_replayed_remember_token_is_theft(
    store: StoreBase, core: SessionCore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy of a validator the owner has moved past: the series and every session it
    made are revoked, and the replaying browser gets nothing but a cleared cookie."""
    cfg = RememberConfig(grace=0)
    owner, thief = browsers(core, 2)
    view = owner.request()
    on_request_sync(view, cfg)
    sync_login(view, "alice", remember=True)
    owner.respond(view)
    stolen = owner.jar[REM]
    owner.jar.pop(SID)
    assert auth.current_user_id(visit(owner, cfg)) == "alice"  # rotates
    assert auth.current_user_id(visit(owner, cfg)) == "alice"  # shows the new validator
    clock.advance(1)

    thief.jar[REM] = stolen
    with caplog.at_level(logging.WARNING, logger="sessionware.security"):
        view = thief.request()
        on_request_sync(view, cfg)
        sent = thief.respond(view)
    assert auth.current_user_id(view) is None
    assert any(c.startswith(f"{REM}=;") for c in sent)
    assert any("possible theft" in r.getMessage() for r in caplog.records)
    assert store.sync.load(series_key(token_of(stolen)[0])) is None
    assert user_of(owner) is None  # the owner's restored session ended with the series
    assert store.sync.keys_of("alice") == []


def test_revoke_series_sessions_ends_what_a_series_made(
    store: StoreBase, core: SessionCore
) -> None:
    """The store-level twin ends the sessions restored from one series, no others."""
    cfg = RememberConfig(grace=0)
    remembered, plain = browsers(core, 2)
    view = remembered.request()
    on_request_sync(view, cfg)
    sync_login(view, "alice", remember=True)
    remembered.respond(view)
    signed_in(plain)
    [series] = series_keys(store, "alice")
    assert revoke_series_sessions(store, "alice", series) == 1
    assert user_of(remembered) is None and user_of(plain) == "alice"


# -- the wrong kind of session ----------------------------------------------------------


def test_each_side_names_the_other_for_the_wrong_session(core: SessionCore) -> None:
    """A coroutine given a SyncSession, or a twin given an async Session, is refused
    before any store call, with the name of the call to use instead."""
    [browser] = browsers(core, 1)
    sync_view = browser.request()
    async_view = HandView(core.open(None, None, core.clock(), cls=Session)[0])
    for coroutine, twin in [
        (auth.login(sync_view, "alice"), "sessionware.auth.sync.login"),
        (auth.logout(sync_view), "sessionware.auth.sync.logout"),
        (auth.sessions_of(sync_view, "alice"), "sessionware.auth.sync.sessions_of"),
        (
            auth.logout_everywhere(core.store, "alice", keep=sync_view),
            "sessionware.auth.sync.logout_everywhere",
        ),
        (remember.on_request(sync_view, RememberConfig()), "remember.on_request_sync"),
        (LoginThrottle().check(sync_view, "alice"), "LoginThrottle.sync.check"),
    ]:
        with pytest.raises(ConfigurationError, match="SyncSession") as refused:
            asyncio.run(coroutine)
        assert twin in str(refused.value)
    for call, name in [
        (lambda: sync_login(async_view, "alice"), "await sessionware.auth.login"),
        (lambda: password_changed(async_view, "alice"), "await sessionware.auth.password_changed"),
        (lambda: on_request_sync(async_view, RememberConfig()), "await remember.on_request"),
        (lambda: LoginThrottle().sync.check(async_view, "alice"), "await LoginThrottle.check"),
    ]:
        with pytest.raises(ConfigurationError, match="async") as refused:
            call()
        assert name in str(refused.value)
    assert core.sync_store.keys_of("alice") == []  # refused before any store call


# -- the login throttle, sync face ---------------------------------------------------------


def small(clock: Clock) -> LoginThrottle:
    """Small budgets for tests: 3 per account+IP."""
    return LoginThrottle(
        max_attempts=3,
        ip_max_attempts=10,
        account_max_attempts=6,
        window=600,
        lockout=10,
        clock=clock,
    )


def test_throttle_refuses_past_its_budget_with_a_429(
    store: StoreBase, core: SessionCore, clock: Clock
) -> None:
    """Three wrong passwords, then sessionware's own 429 with Retry-After; the owner's
    browser with its device cookie still gets in; a busy hasher costs no place."""
    t = small(clock)
    owner, stranger = browsers(core, 2)
    view = owner.request()
    with t.sync.attempt(view, "alice") as attempt:
        assert isinstance(attempt, SyncAttempt)
        attempt.succeeded()
    [device] = view.cookies
    assert device.startswith("__Host-device=")
    owner.respond(view)

    for _ in range(5):  # withdrawn attempts give their place back
        with pytest.raises(HasherBusyError), t.sync.attempt(stranger.request(), "alice"):
            raise HasherBusyError("busy", retry_after=1)
    for _ in range(3):
        view = stranger.request()
        with t.sync.attempt(view, "alice") as attempt:
            pass  # a wrong password: never marked succeeded
        assert attempt.outcome == "failed" and view.cookies == []
        assert view.state["sessionware.throttle"] == {}  # nothing left pending
    with pytest.raises(TooManyAttemptsError) as refused:
        t.sync.check(stranger.request(), "alice")
    assert isinstance(refused.value, HTTPError)
    assert (refused.value.status_code, refused.value.headers) == (429, {"Retry-After": "10"})

    view = owner.request()  # its device cookie: its own budget
    t.sync.check(view, "alice")
    t.sync.succeeded(view, "alice")
    view = stranger.request()
    assert t.sync.failed(view, "alice") == 20  # counted without check(): the wait doubles
    clock.advance(20)
    attempt = t.sync.reserve(store, "alice", IP)
    assert isinstance(attempt, SyncAttempt) and attempt.failed() == 40


def race(n: int, one: Callable[[int], object]) -> list[object]:
    """Run ``one(i)`` in ``n`` threads released together; their results or exceptions."""
    start = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = one(i)
        except Exception as exc:  # the refusals are what is counted
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_sixteen_threads_get_at_most_the_budget(
    store: StoreBase, core: SessionCore, clock: Clock
) -> None:
    """16 threads try one account at once through the sync face: exactly 3 are let
    through (and fail), 13 get a 429, and the budgets count 3 failures, no more."""
    t = small(clock)
    stranger = SyncHandAdapter(core)

    def one(_: int) -> str:
        view = stranger.request()
        with t.sync.attempt(view, "alice"):
            return "checked"  # a wrong password

    results = race(THREADS, one)
    assert results.count("checked") == 3
    refused = [r for r in results if isinstance(r, TooManyAttemptsError)]
    assert len(refused) == THREADS - 3, results
    pair, account, address = (store.sync.load(b.key) for b in t.budgets("alice", IP))
    assert pair is not None and account is not None and address is not None
    assert (pair["n"], pair["f"]) == ("3", "3")  # refused attempts gave their place back
    assert (account["n"], account["f"]) == ("3", "3")
    assert (address["n"], address["f"]) == ("3", "3")
    later = race(THREADS, lambda _: t.sync.reserve(store, "alice", IP))
    assert all(isinstance(r, TooManyAttemptsError) for r in later), later
    assert store.sync.load(t.budgets("alice", IP)[0].key) == pair  # the refusals left no trace


def test_registrations_from_threads_are_capped(store: StoreBase, clock: Clock) -> None:
    """16 threads register from one IP at once: 4 are counted and let through."""
    r = RegistrationThrottle(max_attempts=4, window=600, lockout=10, clock=clock)
    results = race(THREADS, lambda _: r.sync.reserve(store, IP))
    assert results.count(None) == 4
    assert all(x is None or isinstance(x, TooManyAttemptsError) for x in results)
    r.sync.reserve(store, "192.0.2.1")  # another address is not affected
    clock.advance(10)
    r.sync.reserve(store, IP)


def test_a_login_from_before_a_sweep_undoes_itself(store: StoreBase, core: SessionCore) -> None:
    """The login path re-reads the user's revocation generation after indexing the new
    session: a proof of identity from before a sweep's bump leaves no session behind,
    while a login that starts after the bump stands."""
    [browser] = browsers(core, 1)
    core.run(generation.bump("alice"))  # what every sweep does first
    view = browser.request()
    began = twins.begin(view.session, view, "alice", fresh=True, series=None, generation=0)
    assert began is False
    assert view.session.vanished or view.session.is_new
    browser.respond(view)
    assert session_keys(store, "alice") == [] and user_of(browser) is None

    signed_in(browser)  # reads the new generation when it starts: stands
    assert user_of(browser) == "alice" and len(session_keys(store, "alice")) == 1


# -- the design, held in place --------------------------------------------------------------

#: Every public coroutine of auth and where its sync twin lives.
AUTH = {
    "begin": login,
    "login": login,
    "reauthenticate": login,
    "logout": login,
    "sessions_of": devices,
    "revoke": revocation,
    "revoke_series_sessions": revocation,
    "logout_everywhere": revocation,
    "password_changed": revocation,
}
#: Throttle classes: the async class and its sync face / attempt.
THROTTLE = [
    (throttle_module.LoginThrottle, SyncLoginThrottle),
    (throttle_module.RegistrationThrottle, SyncRegistrationThrottle),
    (Attempt, SyncAttempt),
]


def _dispatch(fn: Callable[..., Any]) -> tuple[str, str]:
    """``(runner method, operation)`` of a one-statement dispatcher, else AssertionError:
    the body (its docstring aside) is ``return [await] <runner>.arun|run(<op>(...))``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
    body = func.body[1:] if ast.get_docstring(func) is not None else func.body
    assert len(body) == 1 and isinstance(body[0], ast.Return), (fn.__qualname__, body)
    value = body[0].value
    if isinstance(func, ast.AsyncFunctionDef):
        assert isinstance(value, ast.Await), fn.__qualname__
        value = value.value
    assert isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
    assert len(value.args) == 1 and not value.keywords
    op = value.args[0]
    assert isinstance(op, ast.Call), fn.__qualname__
    name = op.func.attr if isinstance(op.func, ast.Attribute) else getattr(op.func, "id", "")
    return value.func.attr, name


#: The type names that differ between an async call and its twin, made the same.
_SAME = [("AsyncIterator", "Iterator"), ("SyncSession", "Session"), ("SyncAttempt", "Attempt")]


def _same(annotation: object) -> str:
    text = str(annotation)
    for a, b in _SAME:
        text = text.replace(a, b)
    return text


def _shape(fn: Callable[..., Any]) -> list[tuple[str, object, object, str]]:
    """A signature as (name, kind, default, annotation) and the return annotation last,
    with the sync and async type names unified."""
    sig = inspect.signature(fn)
    out = [(p.name, p.kind, p.default, _same(p.annotation)) for p in sig.parameters.values()]
    return [*out, ("return", None, None, _same(sig.return_annotation))]


def test_the_coroutines_and_their_twins_are_found() -> None:
    """The scan below sees every public coroutine of these modules (none is missed)."""
    found = {
        name
        for module in (login, devices, revocation)
        for name, fn in vars(module).items()
        if inspect.iscoroutinefunction(fn)
        and not name.startswith("_")
        and fn.__module__ == module.__name__
    }
    assert found == set(AUTH)
    assert set(twins.__all__) == set(AUTH)
    for cls, face in THROTTLE:
        public = {n for n, f in vars(cls).items() if not n.startswith("_") and callable(f)}
        coroutines = {n for n in public if inspect.iscoroutinefunction(vars(cls)[n])}
        assert coroutines and coroutines <= {n for n in vars(face) if not n.startswith("_")}


@pytest.mark.parametrize("name", sorted(AUTH))
def test_each_auth_flow_is_written_once(name: str) -> None:
    """The coroutine and its sync twin each dispatch, in one statement, to the same
    operation ``_<name>`` of the module that documents the flow; the signatures match."""
    module = AUTH[name]
    coroutine, twin = getattr(module, name), getattr(twins, name)
    assert inspect.iscoroutinefunction(coroutine) and not inspect.iscoroutinefunction(twin)
    assert inspect.isgeneratorfunction(getattr(module, f"_{name}"))
    assert _dispatch(coroutine) == ("arun", f"_{name}")
    assert _dispatch(twin) == ("run", f"_{name}")
    assert _shape(coroutine) == _shape(twin)
    assert getattr(auth, name) is coroutine  # the public name is the coroutine


def test_remember_me_step_is_written_once() -> None:
    """on_request and on_request_sync run the one operation; the record helpers kept
    under their old import path are one-statement coroutines over the series' operations."""
    assert _dispatch(remember.on_request) == ("arun", "_on_request")
    assert _dispatch(remember.on_request_sync) == ("run", "_on_request")
    assert _shape(remember.on_request) == _shape(remember.on_request_sync)
    for name in ("issue", "load_all", "series_of", "revoke_series", "revoke_user"):
        assert _dispatch(getattr(remember, name)) == ("arun", name)


@pytest.mark.parametrize(("cls", "face"), THROTTLE, ids=lambda c: c.__name__)
def test_each_throttle_step_is_written_once(cls: type, face: type) -> None:
    """Each async method of the throttles and attempts, and its sync twin of the same
    name and signature, dispatch to one operation ``_<name>``; the two ``attempt``
    context managers are the same steps around the same operations."""
    for name, fn in vars(cls).items():
        if name.startswith("_") or not inspect.iscoroutinefunction(fn):
            continue
        twin = vars(face)[name]
        op = f"_{name}"
        assert inspect.isgeneratorfunction(getattr(cls, op))
        assert _dispatch(fn) == ("arun", op), name
        assert _dispatch(twin) == ("run", op), name
        assert _shape(fn)[1:] == _shape(twin)[1:], name  # self aside
    if cls is throttle_module.LoginThrottle:
        assert _shape(cls.attempt)[1:] == _shape(face.attempt)[1:]
        assert _steps(cls.attempt) == _steps(face.attempt)
        assert "_settle(" in _steps(face.attempt) and "check(" in _steps(face.attempt)


def _steps(fn: Callable[..., Any]) -> str:
    """A context manager's code, its docstring aside, with the words that differ between
    the async and the sync face made the same."""
    source = textwrap.dedent(inspect.getsource(fn))
    code = source.split('"""')[-1]
    for a, b in [
        ("await ", ""),
        ("async_session(", "sync_session("),
        (".arun(", ".run("),
        ("self._throttle._settle(", "self._settle("),
        ('"LoginThrottle.sync.attempt"', '"LoginThrottle.attempt"'),
    ]:
        code = code.replace(a, b)
    return " ".join(code.split())
