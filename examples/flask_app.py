"""A Flask app on sessionware: sessions, login with remember-me, throttling, CSRF.

Run it on this machine::

    SECRET_KEY=$(sessionware secret) flask --app examples.flask_app run

Users live in a dict here; a real app keeps the Argon2id hashes in its database.
"""

from __future__ import annotations

import os

from flask import Flask, redirect, render_template_string, request, session, url_for
from werkzeug.wrappers import Response

from sessionware.flask import (
    Sessionware,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
    safe_next,
    sessions_of,
)
from sessionware.passwords import PasswordHasher
from sessionware.throttle import LoginThrottle

app = Flask(__name__)
app.config.update(
    SECRET_KEY=os.environ["SECRET_KEY"],  # sessionware secret; old ones in SECRET_KEY_FALLBACKS
    SESSIONWARE_STORE=os.environ.get("SESSIONWARE_STORE", "sqlite:///sessions.sqlite3"),
    # The defaults, "__Host-sid" and "__Host-remember", need https: plain names for local http.
    SESSIONWARE_COOKIE_NAME="sid",
    SESSIONWARE_REMEMBER={"cookie_name": "remember"},
)
sw = Sessionware(app, login_view="login")  # flask.session, login and CSRF, on one store
hasher = PasswordHasher()
throttle = LoginThrottle().sync
USERS = {"ada": hasher.hash("correct horse battery staple")}  # username -> hash


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


@sw.user_loader
def load_user(user_id: str) -> User | None:
    return User(user_id) if user_id in USERS else None


LOGIN_FORM = """<form method="post">
  {{ csrf_input() }}
  <input name="username"> <input name="password" type="password">
  <label><input name="remember" type="checkbox"> Remember me</label>
  <button>Sign in</button> {{ error }}
</form>"""


@app.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """Check the password under the throttle, then log in (a new session id)."""
    if request.method == "GET":
        return render_template_string(LOGIN_FORM, error="")
    username = request.form.get("username", "")
    # A place in every budget first: 429 + Retry-After before any hashing.
    with throttle.attempt(request, username) as attempt:
        # Unknown users cost the same Argon2 work as known ones (no enumeration by timing).
        if not hasher.verify_or_dummy(USERS.get(username), request.form.get("password", "")):
            attempt.failed()
            return render_template_string(LOGIN_FORM, error="Wrong username or password.")
        attempt.succeeded()
    login_user(User(username), remember=bool(request.form.get("remember")))
    return redirect(safe_next(request.args.get("next"), url_for("home")))


@app.get("/")
@login_required
def home() -> dict[str, object]:
    """Who is signed in, their devices, and a counter kept in flask.session."""
    session["visits"] = session.get("visits", 0) + 1
    devices = [d.handle for d in sessions_of()]
    return {"user": current_user.id, "visits": session["visits"], "devices": devices}


@app.post("/logout")
def logout() -> Response:
    """End the session on both sides (and forget this browser's remember-me)."""
    logout_user()
    return redirect(url_for("login"))
