"""config.py: bad settings fail at start-up with a message that says the fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sessionware import SessionConfig
from sessionware.exceptions import ConfigurationError

SECRET = "s" * 40


def test_missing_secret_says_how_to_make_one() -> None:
    """No secret at all is refused, and the message names `sessionware secret`."""
    with pytest.raises(ConfigurationError, match="`sessionware secret`"):
        SessionConfig(secrets=[])


def test_short_secret_says_how_to_make_one() -> None:
    """A secret under 32 characters is refused, naming the minimum and the command."""
    with pytest.raises(ConfigurationError) as info:
        SessionConfig(secrets=[SECRET, "short"])
    assert "32" in str(info.value)
    assert "sessionware secret" in str(info.value)
    assert "short" not in str(info.value).replace("shorter", "")


def test_configuration_error_is_a_value_error() -> None:
    """Configuration errors are also ValueErrors (as in argon2-cffi)."""
    with pytest.raises(ValueError):
        SessionConfig(secrets=[])


def test_same_site_none_needs_secure() -> None:
    """same_site='none' without secure=True is refused, saying to set secure=True."""
    for secure in ("auto", False):
        with pytest.raises(ConfigurationError, match="secure=True"):
            SessionConfig(secrets=[SECRET], cookie_name="sid", same_site="none", secure=secure)
    assert SessionConfig(secrets=[SECRET], same_site="none", secure=True).same_site == "none"


@pytest.mark.parametrize("options", [{"domain": "example.com"}, {"path": "/app"}])
def test_host_prefix_refuses_domain_and_path(options: dict[str, str]) -> None:
    """A __Host- cookie with a Domain or a Path other than / is refused, citing the rule."""
    with pytest.raises(ConfigurationError, match="__Host-"):
        SessionConfig(secrets=[SECRET], **options)  # type: ignore[arg-type]


def test_other_names_may_have_domain_and_path() -> None:
    """Without the prefix, Domain and Path are allowed."""
    cfg = SessionConfig(secrets=[SECRET], cookie_name="sid", domain="example.com", path="/app")
    assert (cfg.domain, cfg.path) == ("example.com", "/app")


def test_prefixed_name_refuses_insecure() -> None:
    """A __Host-/__Secure- name with secure=False is refused, pointing at a plain name."""
    for name in ("__Host-sid", "__Secure-sid", "__host-sid"):
        with pytest.raises(ConfigurationError, match="without the __Host-/__Secure- prefix"):
            SessionConfig(secrets=[SECRET], cookie_name=name, secure=False)


@pytest.mark.parametrize("options", [
    {"cookie_name": "bad name"},
    {"cookie_name": "sid;x"},
    {"same_site": "sideways"},
    {"secure": "yes"},
    {"idle_timeout": 0},
    {"idle_timeout": -5},
    {"idle_timeout": "30"},
    {"absolute_timeout": True},
    {"max_age": 401 * 86400},
    {"trust_proxy": -1},
    {"max_size": 10},
    {"genid": "not callable"},
    {"path": "app"},
    {"partitioned": True},
])
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    """Each malformed option fails at construction with a ConfigurationError."""
    options.setdefault("cookie_name", "sid")
    with pytest.raises(ConfigurationError):
        SessionConfig(secrets=[SECRET], **options)  # type: ignore[arg-type]


def test_defaults_are_the_secure_ones() -> None:
    """Defaults: __Host-sid, HttpOnly, SameSite=Lax, Secure auto, Path /, 30 min / 12 h."""
    cfg = SessionConfig(secrets=[SECRET])
    assert cfg.cookie_name == "__Host-sid"
    assert cfg.http_only is True
    assert cfg.same_site == "lax"
    assert cfg.secure == "auto"
    assert cfg.path == "/"
    assert cfg.domain is None
    assert cfg.max_age is None
    assert (cfg.idle, cfg.absolute) == (1800.0, 43200.0)
    assert cfg.resave is False and cfg.save_uninitialized is False and cfg.rolling is False


def test_timeouts_accept_timedelta_and_absolute_shorter_than_idle() -> None:
    """Timeouts may be timedeltas, and an absolute timeout shorter than the idle one is legal."""
    cfg = SessionConfig(
        secrets=[SECRET], idle_timeout=timedelta(hours=1), absolute_timeout=timedelta(minutes=5)
    )
    assert (cfg.idle, cfg.absolute) == (3600.0, 300.0)


def test_same_site_is_case_insensitive() -> None:
    """same_site='Strict' is taken as 'strict'."""
    assert SessionConfig(secrets=[SECRET], same_site="Strict").same_site == "strict"  # type: ignore[arg-type]


def test_secrets_never_print() -> None:
    """repr() of a config shows how many secrets there are, never the secrets."""
    cfg = SessionConfig(secrets=[SECRET, "t" * 40])
    assert SECRET not in repr(cfg)
    assert "t" * 40 not in repr(cfg)
    assert "2 secret(s) hidden" in repr(cfg)


def test_describe_has_settings_but_no_secrets() -> None:
    """describe() lists the effective settings and only the number of secrets."""
    cfg = SessionConfig(secrets=[SECRET], cookie_name="sid", trust_proxy=True)
    described = cfg.describe()
    assert described["cookie_name"] == "sid"
    assert described["trust_proxy"] == 1
    assert described["secrets"] == 1
    assert SECRET not in repr(described)


def test_from_env_reads_secrets_and_timeouts() -> None:
    """from_env takes comma-separated SESSION_SECRET (first signs) and the timeouts."""
    env = {
        "SESSION_SECRET": f" {SECRET} , {'t' * 40} ",
        "SESSION_IDLE_TIMEOUT": "60",
        "SESSION_ABSOLUTE_TIMEOUT": "120.5",
    }
    cfg = SessionConfig.from_env(env, cookie_name="sid")
    assert tuple(cfg.secrets) == (SECRET, "t" * 40)
    assert (cfg.idle, cfg.absolute) == (60.0, 120.5)
    assert cfg.cookie_name == "sid"


def test_from_env_without_secret_says_how_to_make_one() -> None:
    """from_env with no SESSION_SECRET refuses, naming the variable and the command."""
    with pytest.raises(ConfigurationError) as info:
        SessionConfig.from_env({})
    assert "SESSION_SECRET" in str(info.value)
    assert "sessionware secret" in str(info.value)


def test_from_env_bad_number_names_the_variable() -> None:
    """A timeout variable that is not a number is refused, naming the variable."""
    with pytest.raises(ConfigurationError, match="SESSION_IDLE_TIMEOUT"):
        SessionConfig.from_env({"SESSION_SECRET": SECRET, "SESSION_IDLE_TIMEOUT": "soon"})


def test_config_is_frozen() -> None:
    """A built config cannot be changed afterwards."""
    cfg = SessionConfig(secrets=[SECRET])
    with pytest.raises(AttributeError):
        cfg.cookie_name = "x"  # type: ignore[misc]


def test_session_options_name_every_config_field() -> None:
    """SessionOptions (SessionMiddleware's typed **options) lists exactly SessionConfig's fields."""
    import dataclasses

    from sessionware.config import SessionOptions

    fields = {f.name for f in dataclasses.fields(SessionConfig)} - {"secrets"}
    assert set(SessionOptions.__annotations__) == fields


def test_from_env_reads_session_store_and_the_middleware_builds_it(tmp_path: Path) -> None:
    """SESSION_STORE names the store; SessionMiddleware builds it when no store= is given."""
    from sessionware import SessionMiddleware
    from sessionware.stores import SQLiteStore

    url = f"sqlite:///{tmp_path}/s.db"
    cfg = SessionConfig.from_env({"SESSION_SECRET": "s" * 40, "SESSION_STORE": url})
    assert cfg.store_url == url
    assert url not in repr(cfg)  # a store URL may carry a password
    mw = SessionMiddleware(lambda *a: None, config=cfg)  # type: ignore[arg-type]
    assert isinstance(mw.core.store, SQLiteStore)
    assert mw.core.store.path == f"{tmp_path}/s.db"


def test_bad_store_url_does_not_echo_the_url() -> None:
    """A malformed store URL fails at start-up without repeating it (it may hold a password)."""
    from sessionware import SessionMiddleware

    cfg = SessionConfig(secrets=["s" * 40], store_url="hunter2-not-a-url")
    with pytest.raises(ConfigurationError, match="sqlite:///") as info:
        SessionMiddleware(lambda *a: None, config=cfg)  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)
