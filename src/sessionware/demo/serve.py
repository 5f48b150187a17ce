"""``sessionware demo``: check the settings, say what is being used, serve it: the
Starlette app with uvicorn, or (``--framework flask``) the Flask app with gunicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from sessionware.demo.app import create_app
from sessionware.demo.settings import STATE_DIR, DemoSettings
from sessionware.stores import redact_url

__all__ = ["FRAMEWORKS", "serve"]

#: The demo's two apps: one HTTP contract.
FRAMEWORKS = ("starlette", "flask")


def _say(line: str) -> None:
    print(f"sessionware demo: {line}", file=sys.stderr, flush=True)


def serve(
    *, store: str | None, host: str, port: int, tls: bool, framework: str = "starlette"
) -> int:
    """Run the reference app until interrupted; configuration errors raise before serving."""
    settings = DemoSettings.load(store=store, tls=tls)
    app: Any
    if framework == "flask":
        from sessionware.demo.flask_app import create_app as create_flask_app

        app = create_flask_app(settings, host=host)
    else:
        app = create_app(settings, host=host)  # validates every setting and opens the store
    _say(settings.secret_note)
    cfg = app.state.demo.config
    _say(f"sessions in {redact_url(settings.store_url)}, users in {settings.users_db}")
    certfile: str | None = None
    keyfile: str | None = None
    if tls:
        from sessionware.demo.tls import ensure_certificate

        cert, key, made = ensure_certificate(Path(STATE_DIR))
        certfile, keyfile = str(cert), str(key)
        _say(
            f"{'made a' if made else 'using the'} self-signed certificate {cert} for 127.0.0.1: "
            "your browser will warn once; cookies are "
            f"{cfg.session.cookie_name} and {cfg.remember.cookie_name}, Secure"
        )
        scheme = "https"
    else:
        _say(
            "plain http for local development: using the unprefixed cookie names "
            f"{cfg.session.cookie_name!r} and {cfg.remember.cookie_name!r} without Secure "
            "(browsers refuse __Host- cookies over http); run with --tls to see the "
            "production set-up"
        )
        scheme = "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only compared
    _say(f"open {scheme}://{shown}:{port}/ (Ctrl+C to stop)")
    # Show the library's security events (sign-ins, revocations, refused CSRF posts):
    # they name users and short hashes, never ids, tokens or passwords.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
    library = logging.getLogger("sessionware")
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
    if framework == "flask":
        _say("serving the Flask app with gunicorn (one gthread worker)")
        _gunicorn(app, host=host, port=port, certfile=certfile, keyfile=keyfile)
        return 0
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=False,
        server_header=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    return 0


def _gunicorn(app: Any, *, host: str, port: int, certfile: str | None, keyfile: str | None) -> None:
    """Serve the WSGI ``app`` with gunicorn: one worker (the app was built here, before
    forking, with no connection open yet) of 8 threads; TLS from the same files."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
    from gunicorn.http import wsgi as gunicorn_wsgi  # type: ignore[import-untyped]

    # No "Server:" header, as uvicorn's server_header=False: nothing to fingerprint.
    default_headers = gunicorn_wsgi.Response.default_headers

    def without_server(self: Any) -> list[str]:
        return [h for h in default_headers(self) if not h.startswith("Server:")]

    gunicorn_wsgi.Response.default_headers = without_server
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": 1,
        "worker_class": "gthread",
        "threads": 8,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "graceful_timeout": 5,
        # As uvicorn's proxy_headers=False: no X-Forwarded-* header is believed.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "control_socket_disable": True,
    }
    if certfile and keyfile:
        options["certfile"], options["keyfile"] = certfile, keyfile

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    Server().run()
