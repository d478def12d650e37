"""Settings read from the environment once, validated, then passed around explicitly."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///realtime.db"


# Every variable the service reads, with its default and meaning: docs/configuration.md is
# generated from this table (python -m realtime.web.reference), so the two cannot drift.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "REALTIME_DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "SQLAlchemy async URL: `sqlite+aiosqlite:///PATH` (a relative PATH is resolved against "
        "the working directory at start, and logged) or `postgresql+asyncpg://USER@HOST/DB`.",
    ),
    (
        "REALTIME_REDIS_URL",
        "unset",
        "`redis://HOST[:PORT][/DB]`. Unset: one node, fan-out in process. Set: every node and "
        "every publishing process fans out through Redis; the database stays the truth.",
    ),
    (
        "REALTIME_JWT_SECRET",
        "unset",
        "HS256 secret (at least 32 bytes) that signs and checks access tokens; the same on "
        "every node and in your backend. Unset: `serve` refuses to start unless `--demo`.",
    ),
    (
        "REALTIME_API_KEY",
        "unset",
        "Key (at least 16 characters) for `POST /api/publish` in the `X-API-Key` header. "
        "Unset: that API answers 404.",
    ),
    (
        "REALTIME_CORS_ORIGINS",
        "same origin only",
        "Comma-separated origins (`https://app.example.com`) allowed to call the HTTP API "
        "and Socket.IO from a browser; `*` only when set explicitly.",
    ),
    ("REALTIME_HISTORY_TTL", "86400", "Seconds a user's messages are kept for replay."),
    ("REALTIME_HISTORY_SIZE", "1000", "Messages kept per user for replay."),
    (
        "REALTIME_MAX_CONNECTIONS_PER_USER",
        "20",
        "Connections of one user on one node; further ones are refused (`too_many_connections`).",
    ),
    (
        "REALTIME_STALL_SECONDS",
        "900",
        "A `processing` or `retrying` job with no message, heartbeat or due retry for this "
        "long ends with `processing_error` code `stalled`.",
    ),
    (
        "REALTIME_DB_TIMEOUT",
        "5",
        "Seconds an API call, a connect or a CLI verb waits for the database before it gives up "
        "with 503 `unavailable` (a connect: the client retries; the CLI: exit 1).",
    ),
    (
        "REALTIME_PING_INTERVAL",
        "20",
        "Seconds between the Engine.IO heartbeat's PINGs (the handshake's `pingInterval`).",
    ),
    (
        "REALTIME_PING_TIMEOUT",
        "20",
        "Seconds a client has to answer a PING before its connection counts as gone "
        "(`pingTimeout`); keep a proxy's read timeout above interval + timeout.",
    ),
    (
        "REALTIME_MAX_PAYLOAD",
        "65536",
        "The largest HTTP body, Engine.IO packet or WebSocket message a client may send, in "
        "bytes (`maxPayload`); larger bodies get 413, larger frames close the connection.",
    ),
    (
        "REALTIME_IDLE_TIMEOUT",
        "10",
        "Seconds a peer may hold a socket while saying nothing useful: a TCP connection with no "
        "complete request, an idle keep-alive connection, an Engine.IO session that never "
        "sends the Socket.IO CONNECT. Then the socket is closed.",
    ),
    (
        "REALTIME_MAX_UNAUTHENTICATED_PER_ADDRESS",
        "128",
        "Connections one peer address may hold open before any of them has been accepted by a "
        "Socket.IO connect with a valid token; more are closed at once. Addresses in "
        "`REALTIME_TRUSTED_PROXIES` are exempt (cap per client at the proxy).",
    ),
    (
        "REALTIME_TRUSTED_PROXIES",
        "",
        "Comma-separated IP addresses of the proxies in front of the nodes: their connections "
        "carry many users and are not capped per address.",
    ),
    ("PORT", "8080", "The port `serve` listens on when `--port` is not given (Procfile)."),
)


class ConfigError(ValueError):
    """A variable has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    jwt_secret: str | None = None
    api_key: str | None = None
    # None: same origin only; ("*",): any origin; otherwise the listed origins.
    cors_origins: tuple[str, ...] | None = None
    history_ttl: int = 86400
    history_size: int = 1000
    max_connections_per_user: int = 20
    stall_seconds: int = 900
    # Seconds an API call or a connect may wait for the database before it is 503/retried.
    db_timeout: float = 5.0
    # Engine.IO heartbeat: a PING every ping_interval s; no PONG within ping_timeout: gone.
    ping_interval: int = 20
    ping_timeout: int = 20
    demo: bool = False
    # Not in the contract's variables: knobs for tests and operators.
    follow_interval: float = 0.25
    drain_seconds: float = 8.0
    handshake_timeout: float = 10.0
    max_unauthenticated_per_address: int = 128
    trusted_proxies: frozenset[str] = frozenset()
    client_events_per_second: float = 20.0
    max_message_bytes: int = 64 * 1024
    jwt_algorithm: str = "HS256"
    jwt_leeway: int = 10


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _database_url(raw: str, cwd: Path | None = None) -> str:
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise ConfigError(
            "REALTIME_DATABASE_URL: expected sqlite+aiosqlite:///PATH or "
            f"postgresql+asyncpg://..., got {redacted(raw)!r}"
        )
    return _absolute_sqlite(raw, cwd or Path.cwd()) if scheme == "sqlite+aiosqlite" else raw


def _absolute_sqlite(url: str, cwd: Path) -> str:
    """A relative SQLite path resolved against the working directory once, at start, so every
    part of the process (and its log line) names the same file."""
    head, sep, path = url.partition(":///")
    if not sep or not path or path.startswith("/") or path.startswith(":memory:"):
        return url
    return f"{head}:///{(cwd / path).resolve()}"


def redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
    return parsed._replace(netloc=netloc).geturl()


def _redis_url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("redis", "rediss", "unix") or (
        parsed.scheme != "unix" and not parsed.hostname
    ):
        raise ConfigError(f"REALTIME_REDIS_URL: expected redis://HOST[:PORT][/DB], got {raw!r}")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"REALTIME_REDIS_URL: bad port in {raw!r}") from None
    return raw


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    if not origins:
        raise ConfigError("REALTIME_CORS_ORIGINS: empty list of origins")
    for origin in origins:
        if origin == "*":
            continue
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path:
            raise ConfigError(
                f"REALTIME_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com"
            )
    if "*" in origins and len(origins) > 1:
        raise ConfigError("REALTIME_CORS_ORIGINS: '*' cannot be combined with other origins")
    return origins


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every REALTIME_* variable; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    secret = env.get("REALTIME_JWT_SECRET") or None
    if secret is not None and len(secret.encode()) < 32:
        raise ConfigError("REALTIME_JWT_SECRET: must be at least 32 bytes (HS256 key length)")
    api_key = env.get("REALTIME_API_KEY") or None
    if api_key is not None and len(api_key) < 16:
        raise ConfigError("REALTIME_API_KEY: must be at least 16 characters")
    cors = env.get("REALTIME_CORS_ORIGINS")
    redis = env.get("REALTIME_REDIS_URL")
    return Settings(
        database_url=_database_url(env.get("REALTIME_DATABASE_URL") or DEFAULT_DATABASE_URL),
        redis_url=_redis_url(redis) if redis else None,
        jwt_secret=secret,
        api_key=api_key,
        cors_origins=_origins(cors) if cors else None,
        history_ttl=_int(env, "REALTIME_HISTORY_TTL", 86400, 1),
        history_size=_int(env, "REALTIME_HISTORY_SIZE", 1000, 1),
        max_connections_per_user=_int(env, "REALTIME_MAX_CONNECTIONS_PER_USER", 20, 1),
        stall_seconds=_int(env, "REALTIME_STALL_SECONDS", 900, 1),
        db_timeout=float(_int(env, "REALTIME_DB_TIMEOUT", 5, 1)),
        ping_interval=_int(env, "REALTIME_PING_INTERVAL", 20, 1),
        ping_timeout=_int(env, "REALTIME_PING_TIMEOUT", 20, 1),
        max_message_bytes=_int(env, "REALTIME_MAX_PAYLOAD", 64 * 1024, 1024),
        handshake_timeout=float(_int(env, "REALTIME_IDLE_TIMEOUT", 10, 1)),
        max_unauthenticated_per_address=_int(
            env, "REALTIME_MAX_UNAUTHENTICATED_PER_ADDRESS", 128, 1
        ),
        trusted_proxies=_addresses(env.get("REALTIME_TRUSTED_PROXIES") or ""),
    )


def _addresses(raw: str) -> frozenset[str]:
    out = set()
    for item in (a.strip() for a in raw.split(",")):
        if not item:
            continue
        try:
            out.add(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ConfigError(f"REALTIME_TRUSTED_PROXIES: {item!r} is not an IP address") from None
    return frozenset(out)
