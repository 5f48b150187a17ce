"""Turn a Redis store URL into redis-py clients: an asyncio one and a synchronous one.

The forms (one string fits ``SESSION_STORE``)::

    redis://[user:password@]host[:port][/db][?prefix=app:]
    rediss://...                                       (TLS)
    redis+sentinel://[user:password@]host[:port][,host[:port]...]/service_name[/db][?prefix=]
    redis+cluster://[user:password@]host[:port][,host[:port]...][?prefix=]
    rediss+sentinel://..., rediss+cluster://...        (TLS)

Every form also takes ``timeout``, ``connect_timeout`` (seconds),
``min_replicas_ack``, ``min_replicas_ack_deletes`` and ``replica_ack_timeout`` in
the query (``?prefix=app:&timeout=0.5&min_replicas_ack=1``); see
:meth:`RedisStore.from_url <sessionware.stores.redis.RedisStore.from_url>`.
``redis://`` with ``cluster=True`` is the same as ``redis+cluster://``. For
sentinel the user and password are the master's; give the sentinels' own with
``sentinel_kwargs={"password": ...}``. Sentinel's port defaults to 26379.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from sessionware.exceptions import ConfigurationError

__all__ = ["FORMS", "Parsed", "parse"]

FORMS = (
    "redis://[user:password@]host[:port][/db], rediss://... (TLS), "
    "redis+sentinel://[user:password@]host[:port][,host[:port]...]/service_name[/db], "
    "redis+cluster://host[:port][,host[:port]...] (or redis://host:port with cluster=True); "
    "each may end in ?prefix=<key prefix>, &timeout=<seconds>, &connect_timeout=<seconds>, "
    "&min_replicas_ack=N (and &replica_ack_timeout=<seconds>), "
    "&master_check_interval=<seconds> (Sentinel)"
)
#: Query options the store reads itself (the rest of a redis:// query goes to redis-py).
OURS = (
    "prefix",
    "timeout",
    "connect_timeout",
    "min_replicas_ack",
    "min_replicas_ack_deletes",
    "replica_ack_timeout",
    "master_check_interval",
)
_SECONDS = ("timeout", "connect_timeout", "replica_ack_timeout", "master_check_interval")
_COUNTS = ("min_replicas_ack", "min_replicas_ack_deletes")


class Parsed:
    """What a store URL says: the kind of deployment and how to reach it."""

    def __init__(self, kind: str, tls: bool) -> None:
        self.kind = kind  # "standalone" | "sentinel" | "cluster"
        self.tls = tls
        self.url = ""  # standalone/cluster-by-flag: the URL for redis-py, minus our options
        self.hosts: list[tuple[str, int]] = []
        self.service = ""
        self.db = 0
        self.username: str | None = None
        self.password: str | None = None
        self.prefix: str | None = None
        # Given in the query, else None (the store's defaults apply).
        self.timeout: float | None = None
        self.connect_timeout: float | None = None
        self.replica_ack_timeout: float | None = None
        self.master_check_interval: float | None = None
        self.min_replicas_ack: int | None = None
        self.min_replicas_ack_deletes: int | None = None


def _bad(url: str, why: str) -> ConfigurationError:
    # Never echo the URL: it may carry a password.
    del url
    return ConfigurationError(f"bad Redis store URL ({why}): use {FORMS}")


def _hosts(netloc: str, default_port: int, url: str) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            raise _bad(url, "empty host")
        if part.startswith("["):  # [ipv6]:port
            host, _, rest = part[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = part.partition(":")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise _bad(url, "a port is not a number") from None
        if not host or not 0 < port < 65536:
            raise _bad(url, "missing host or port out of range")
        hosts.append((host, port))
    return hosts


def parse(url: str, *, cluster: bool = False) -> Parsed:
    """Check a store URL and split it into what the client builders need."""
    if not isinstance(url, str) or "://" not in url:
        raise _bad(str(url), "not a URL")
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed "[" of an IPv6 address
        raise _bad(url, "unreadable host") from None
    scheme = parts.scheme.lower()
    base, _, variant = scheme.partition("+")
    if base not in ("redis", "rediss") or variant not in ("", "sentinel", "cluster"):
        raise _bad(url, f"unknown scheme {scheme!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in OURS}
    rest = [(k, v) for k, v in query if k not in OURS]
    out = Parsed(variant or ("cluster" if cluster else "standalone"), base == "rediss")
    out.prefix = ours.get("prefix")
    for name in _COUNTS:
        if name in ours:
            try:
                setattr(out, name, int(ours[name]))
            except ValueError:
                raise _bad(url, f"{name} must be a whole number") from None
    for name in _SECONDS:
        if name in ours:
            try:
                setattr(out, name, float(ours[name]))
            except ValueError:
                raise _bad(url, f"{name} must be seconds, such as 0.5") from None
    if variant == "":
        # redis-py parses the rest, query options included (socket_timeout=...).
        out.url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), ""))
        if not parts.hostname and not parts.netloc:
            raise _bad(url, "no host")
        return out
    if rest:
        # Name no part of the URL: a '?' typed before the user info makes the password
        # the query.
        raise _bad(url, f"{variant} URLs take no query options but {', '.join(OURS)}")
    userinfo, _, netloc = parts.netloc.rpartition("@")
    if userinfo:
        user, _, password = userinfo.partition(":")
        out.username = unquote(user) or None
        out.password = unquote(password) or None
    out.hosts = _hosts(netloc, 26379 if variant == "sentinel" else 6379, url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if variant == "sentinel":
        if not segments or len(segments) > 2:
            raise _bad(url, "sentinel URLs need /service_name and optionally /db")
        out.service = segments[0]
        if len(segments) == 2:
            if not (segments[1].isascii() and segments[1].isdigit()):
                raise _bad(url, "the db after the service name must be a number")
            out.db = int(segments[1])
    elif segments and segments != ["0"]:
        raise _bad(url, "Redis Cluster has only db 0")
    return out


def build(
    parsed: Parsed, defaults: dict[str, Any], options: dict[str, Any], *, sync: bool = False
) -> tuple[Any, list[Any]]:
    """The client for ``parsed``, and every client the store must close.

    ``sync=False`` builds from ``redis.asyncio``, ``sync=True`` from ``redis``: the same
    kind of client with the same options, so both faces of a store reach the same
    server alike. Neither connects here, except the synchronous ``RedisCluster``,
    which reads the cluster's layout as it is built (the store builds that one when
    first used).
    """
    # The two families have the same names and signatures: pick one by module.
    root = "redis" if sync else "redis.asyncio"
    plain_class: Any = import_module(root).Redis
    cluster: Any = import_module(root + ".cluster")

    kwargs: dict[str, Any] = {**defaults, **options}
    if parsed.kind == "standalone":
        plain = plain_class.from_url(parsed.url, **kwargs)
        return plain, [plain]
    auth: dict[str, Any] = {"username": parsed.username, "password": parsed.password}
    if parsed.tls:
        kwargs.setdefault("ssl", True)
    if parsed.kind == "cluster":
        if parsed.url:
            client = cluster.RedisCluster.from_url(parsed.url, **kwargs)
        else:
            nodes = [cluster.ClusterNode(host, port) for host, port in parsed.hosts]
            client = cluster.RedisCluster(startup_nodes=nodes, **auth, **kwargs)
        return client, [client]
    sentinel_kwargs = kwargs.pop("sentinel_kwargs", None)
    if sentinel_kwargs is None:
        sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith("socket_") or k == "ssl"}
    from sessionware.stores._redis_sentinel import sentinel_class  # needs redis: here

    # redis-py's Sentinel, naming the master of the newest configuration among all the
    # Sentinels' answers rather than the first healthy one (a stale one may name an old
    # master restarted empty).
    sentinel = sentinel_class(sync)(parsed.hosts, sentinel_kwargs=dict(sentinel_kwargs))
    master = sentinel.master_for(parsed.service, db=parsed.db, **auth, **kwargs)
    return master, [master, *sentinel.sentinels]
