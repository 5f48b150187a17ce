"""The ``sessionware`` command: secrets, sessions, purging, the cookie table and the demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO, TypeVar

from sessionware.exceptions import ConfigurationError, StoreError, StoreUnavailableError

__all__ = ["main", "progress"]

T = TypeVar("T")

_STORE_HELP = "store URL (default: $SESSION_STORE), e.g. sqlite:///sessionware-demo.sqlite3"


class _UsageError(Exception):
    """A mistake the user can fix: one line on stderr, exit code 2."""


def progress(done: int, total: int, out: TextIO, *, width: int = 30) -> None:
    """Draw a one-line progress bar on ``out`` (a terminal's stderr)."""
    share = done / total if total else 1.0
    filled = int(width * share)
    out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        out.write("\n")
    out.flush()


def _store(url: str | None) -> Any:
    from sessionware.stores import from_url

    url = url or os.environ.get("SESSION_STORE")
    if not url:
        raise _UsageError("no store given: pass --store URL or set SESSION_STORE")
    return from_url(url)


async def _with_store(url: str | None, fn: Callable[[Any], Awaitable[T]]) -> T:
    store = _store(url)
    try:
        return await fn(store)
    finally:
        await store.close()


# -- sessions ----------------------------------------------------------------


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    import datetime

    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


async def _list(store: Any, user: str | None) -> list[tuple[str, Any]]:
    from sessionware.auth import sessions_of

    if user is not None:
        users = [user]
    else:
        user_ids = getattr(store, "user_ids", None)
        if user_ids is None:
            raise _UsageError(
                f"the {getattr(store, 'kind', 'given')} store cannot list every user: "
                "pass --user ID"
            )
        users = await user_ids()
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
            _when(e.created),
            _when(e.last_seen),
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
    from sessionware.declaration import as_table
    from sessionware.demo.config import declaration
    from sessionware.demo.settings import DemoSettings

    settings = DemoSettings.load(tls=args.tls, make_secret=False)
    print(as_table(declaration(settings)))
    return 0


# -- demo --------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from sessionware.demo.serve import serve

    return serve(
        store=args.store, host=args.host, port=args.port, tls=args.tls, framework=args.framework
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionware",
        description="Secure server-side sessions: tools for operators, and the reference app.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("secret", help="print a new strong secret for SESSION_SECRET")

    sessions = sub.add_parser("sessions", help="list or revoke users' sessions")
    ssub = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = ssub.add_parser("list", help="list live sessions (of one user, or every user)")
    ls.add_argument("--user", metavar="ID", help="only this user id")
    ls.add_argument("--store", metavar="URL", help=_STORE_HELP)
    ls.set_defaults(func=_cmd_sessions_list)
    rv = ssub.add_parser("revoke", help="end one session of a user, or all of them")
    rv.add_argument("--user", metavar="ID", required=True, help="the user id")
    which = rv.add_mutually_exclusive_group(required=True)
    which.add_argument("--handle", metavar="H", help="the session's handle (from `sessions list`)")
    which.add_argument("--all", action="store_true", help="every session of the user")
    rv.add_argument("--store", metavar="URL", help=_STORE_HELP)
    rv.set_defaults(func=_cmd_sessions_revoke)

    purge = sub.add_parser("purge", help="remove expired session records (SQL stores)")
    purge.add_argument("--store", metavar="URL", help=_STORE_HELP)
    purge.add_argument("--quiet", action="store_true", help="no progress bar")
    purge.set_defaults(func=_cmd_purge)

    cookies = sub.add_parser("cookies", help="print the demo's cookie declaration as a table")
    cookies.add_argument("--tls", action="store_true", help="as served with `demo --tls`")
    cookies.set_defaults(func=_cmd_cookies)

    demo = sub.add_parser("demo", help="run the reference app (SQLite by default)")
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
    try:
        result: int = args.func(args)
    except (_UsageError, ConfigurationError) as exc:
        print(f"sessionware {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailableError as exc:
        print(f"sessionware {args.command}: the store cannot be reached: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:  # e.g. a missing table: the message says the fix
        print(f"sessionware {args.command}: the store failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
