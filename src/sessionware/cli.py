"""The ``sessionware`` command: secrets, sessions, purging, the cookie table and the demo.

Every failure is one line on stderr: exit 2 for a mistake in the command (a bad URL,
a missing option), 1 when the command was right but could not be done (no store at
that URL, a server that does not answer, a missing optional package). Commands that
work on a store never create one: they first ask :mod:`sessionware._store_probe`
whether there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO, TypeVar

from sessionware import __version__
from sessionware._dates import when
from sessionware._extras import MissingDependencyError
from sessionware._store_probe import NoStoreError, check_store, sqlite_hint
from sessionware.exceptions import ConfigurationError, StoreError, StoreUnavailableError

__all__ = ["main", "progress"]

T = TypeVar("T")

_STORE_HELP = "store URL (default: $SESSION_STORE), e.g. sqlite:///sessionware-demo.sqlite3"


class _UsageError(Exception):
    """A mistake the user can fix: one line on stderr, exit code 2."""


class _Failure(Exception):
    """The command was right but could not be done: one line on stderr, exit code 1."""


def progress(done: int, total: int, out: TextIO, *, width: int = 30) -> None:
    """Draw a one-line progress bar on ``out`` (a terminal's stderr)."""
    share = done / total if total else 1.0
    filled = int(width * share)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        out.write("\n")
    out.flush()


def _store_url(url: str | None) -> str:
    url = url or os.environ.get("SESSION_STORE")
    if not url:
        raise _UsageError("no store given: pass --store URL or set SESSION_STORE")
    return url


def _existing_store(url: str | None) -> Any:
    """The store at ``url``, which must already exist: a typo creates nothing."""
    from sessionware.stores import from_url

    url = _store_url(url)
    check_store(url)  # first: building a SQLite store would create the file
    try:
        return from_url(url)
    except ConfigurationError as exc:
        hint = sqlite_hint(url) if url.lower().startswith("sqlite:") else ""
        raise ConfigurationError(f"{exc}{hint}") from None


async def _with_store(url: str | None, fn: Callable[[Any], Awaitable[T]]) -> T:
    store = _existing_store(url)
    try:
        ping = getattr(store, "ping", None)
        if ping is not None:  # Redis: "unreachable" before any other answer
            await ping()
        return await fn(store)
    finally:
        await store.close()


# -- sessions ----------------------------------------------------------------


async def _list(store: Any, user: str | None) -> list[tuple[str, Any]]:
    from sessionware.auth import sessions_of

    if user is not None:
        users = [user]
    else:
        user_ids = getattr(store, "user_ids", None)
        if user_ids is None:
            raise _UsageError(
                f"the {getattr(store, 'kind', 'given')} store keeps no list of its users: "
                "pass --user ID"
            )
        try:
            users = await user_ids()
        except ConfigurationError as exc:  # Redis Cluster says why
            raise _UsageError(str(exc)) from None
    rows: list[tuple[str, Any]] = []
    for uid in users:
        rows.extend((uid, entry) for entry in await sessions_of(store, uid))
    return rows


def _cmd_sessions_list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_with_store(args.store, lambda s: _list(s, args.user)))
    if not rows:
        print("no live sessions" + (f" for user {args.user}" if args.user else ""))
        return 0
    head = ("USER", "HANDLE", "CREATED", "LAST SEEN", "IP", "REMEMBERED", "USER AGENT")
    table = [
        (
            uid,
            e.handle,
            when(e.created),
            when(e.last_seen),
            e.ip or "-",
            "yes" if e.remembered else "no",
            (e.user_agent or "-")[:60],
        )
        for uid, e in rows
    ]
    widths = [max(len(r[i]) for r in (head, *table)) for i in range(len(head) - 1)]
    for r in (head, *table):
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
        print("  ".join([*cells, r[-1]]).rstrip())
    return 0


async def _revoke(store: Any, user: str, handle: str | None) -> int:
    from sessionware.auth import logout_everywhere, revoke

    if handle is not None:
        return 1 if await revoke(store, user, handle) else 0
    return int(await logout_everywhere(store, user) or 0)


def _cmd_sessions_revoke(args: argparse.Namespace) -> int:
    n = asyncio.run(_with_store(args.store, lambda s: _revoke(s, args.user, args.handle)))
    if args.handle is not None and not n:
        print(f"user {args.user} has no session with handle {args.handle}", file=sys.stderr)
        return 1
    print(f"revoked {n} session(s) of user {args.user}")
    return 0


# -- purge -------------------------------------------------------------------


async def _purge(store: Any, bar: bool) -> int | None:
    purge = getattr(store, "purge_expired", None)
    if purge is None:
        return None
    counter = getattr(store, "count_expired", None)
    total = await counter() if counter is not None else 0
    if total < 1000 or counter is None:
        return int(await purge())
    done = 0
    while True:
        n = int(await purge(limit=500))
        done = min(total, done + n)
        if bar:
            progress(done, total, sys.stderr)
        if n < 500:
            break
    if bar and done < total:
        progress(total, total, sys.stderr)
    return done


def _cmd_purge(args: argparse.Namespace) -> int:
    n = asyncio.run(_with_store(args.store, lambda s: _purge(s, not args.quiet)))
    if n is None:
        print("this store expires records by itself: nothing to purge")
    else:
        print(f"removed {n} expired session record(s)")
    return 0


# -- cookies -----------------------------------------------------------------


def _cmd_cookies(args: argparse.Namespace) -> int:
    from sessionware.declaration import as_table, declare

    if args.demo:
        from sessionware.demo.config import declaration
        from sessionware.demo.settings import DemoSettings

        settings = DemoSettings.load(tls=args.tls, make_secret=False)
        print(as_table(declaration(settings)))
        return 0
    from sessionware._app_settings import from_app, from_environment

    found = from_app(args.app) if args.app else from_environment()
    print(f"# cookies of {found.source}{', served over https' if args.tls else ''}")
    cookies = declare(
        found.session,
        remember=found.remember,
        throttle=found.throttle,
        secure=True if args.tls else None,
    )
    print(as_table(cookies))
    return 0


# -- demo --------------------------------------------------------------------


def _port_free(host: str, port: int) -> None:
    """Fail before the demo prints "open http://..." when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn and gunicorn bind: a port in TIME_WAIT after a restart is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise _Failure(
                    f"port {port} on {host} is already in use (another demo still running?): "
                    f"stop that server, or pick another port: --port {port + 1}"
                ) from None
            raise _UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _cmd_demo(args: argparse.Namespace) -> int:
    from sessionware._extras import requires

    if not 0 < args.port < 65536:
        raise _UsageError(f"--port must be 1-65535, got {args.port}")
    _port_free(args.host, args.port)
    with requires("demo"):
        from sessionware.demo.serve import serve

    return serve(
        store=args.store, host=args.host, port=args.port, tls=args.tls, framework=args.framework
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionware",
        description="Secure server-side sessions: tools for operators, and the reference app.",
    )
    parser.add_argument("--version", action="version", version=f"sessionware {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, summary: str, details: str = "") -> Any:
        """A subcommand whose --help starts with what it does (and says more if needed)."""
        return parent.add_parser(
            name, help=summary, description=summary[0].upper() + summary[1:] + "." + details
        )

    command(
        sub,
        "secret",
        "print a new strong secret for SESSION_SECRET",
        " 48 random bytes, url-safe: put it first in SESSION_SECRET to rotate.",
    )

    store_note = (
        " The store must exist already (an app made it): a mistyped URL is reported, never "
        "created. memory:// cannot be used: it lives inside the app's own process."
    )
    sessions = command(sub, "sessions", "list or revoke users' sessions", store_note)
    ssub = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = command(ssub, "list", "list live sessions (of one user, or every user)", store_note)
    ls.add_argument("--user", metavar="ID", help="only this user id")
    ls.add_argument("--store", metavar="URL", help=_STORE_HELP)
    ls.set_defaults(func=_cmd_sessions_list)
    rv = command(ssub, "revoke", "end one session of a user, or all of them", store_note)
    rv.add_argument("--user", metavar="ID", required=True, help="the user id")
    which = rv.add_mutually_exclusive_group(required=True)
    which.add_argument("--handle", metavar="H", help="the session's handle (from `sessions list`)")
    which.add_argument("--all", action="store_true", help="every session of the user")
    rv.add_argument("--store", metavar="URL", help=_STORE_HELP)
    rv.set_defaults(func=_cmd_sessions_revoke)

    purge = command(
        sub,
        "purge",
        "remove expired session records (SQL stores)",
        " Redis expires records by itself. Run it from cron or a timer, e.g. hourly."
        + store_note,
    )
    purge.add_argument("--store", metavar="URL", help=_STORE_HELP)
    purge.add_argument("--quiet", action="store_true", help="no progress bar")
    purge.set_defaults(func=_cmd_purge)

    cookies = command(
        sub,
        "cookies",
        "print the cookie declaration of your app as a table",
        " The settings come from --app module:attr (your Starlette/FastAPI or Flask app, a "
        "factory, or a SessionConfig), else from the environment (SESSION_*), or --demo.",
    )
    source = cookies.add_mutually_exclusive_group()
    source.add_argument(
        "--app", metavar="MODULE:ATTR", help="your app, e.g. myapp.main:app (imported)"
    )
    source.add_argument("--demo", action="store_true", help="the reference app's cookies")
    cookies.add_argument(
        "--tls", action="store_true", help="as served over https (with --demo: `demo --tls`)"
    )
    cookies.set_defaults(func=_cmd_cookies)

    demo = command(
        sub,
        "demo",
        "run the reference app (SQLite by default)",
        " Needs the demo extra: pip install 'sessionware[demo]'.",
    )
    demo.add_argument("--store", metavar="URL", help=_STORE_HELP + " (default: that file)")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (8000)")
    demo.add_argument(
        "--tls", action="store_true", help="serve https with a self-signed certificate"
    )
    demo.add_argument(
        "--framework",
        choices=("starlette", "flask"),
        default="starlette",
        help="the app to serve: Starlette under uvicorn (default) or Flask under gunicorn",
    )
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionware`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "secret":
        print(secrets.token_urlsafe(48))
        return 0
    # Our one line says what went wrong; psycopg's pool would first log its retries.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    name = f"sessionware {args.command}"

    def say(text: str) -> None:
        # One line, whatever a driver put in the message.
        print(f"{name}: {' '.join(text.split())}", file=sys.stderr)

    try:
        result: int = args.func(args)
    except (_UsageError, ConfigurationError) as exc:
        say(f"error: {exc}")
        return 2
    except (_Failure, NoStoreError, MissingDependencyError) as exc:
        say(f"error: {exc}")
        return 1
    except StoreUnavailableError as exc:
        say(f"the store cannot be reached: {exc}")
        return 1
    except StoreError as exc:  # e.g. a missing table: the message says the fix
        say(f"the store failed: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
