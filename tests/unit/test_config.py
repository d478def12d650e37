"""Settings from the environment: defaults, and one clear error naming a bad variable."""

from pathlib import Path

import pytest

from realtime.config import DEFAULT_DATABASE_URL, ConfigError, load_settings


def test_defaults() -> None:
    s = load_settings({})
    # The default SQLite path is relative: resolved once, so every part names one file.
    assert s.database_url == f"sqlite+aiosqlite:///{Path.cwd() / 'realtime.db'}"
    assert DEFAULT_DATABASE_URL.endswith(":///realtime.db") and s.redis_url is None
    assert (s.history_ttl, s.history_size, s.max_connections_per_user) == (86400, 1000, 20)
    assert s.cors_origins is None


def test_values_are_read() -> None:
    s = load_settings(
        {
            "REALTIME_REDIS_URL": "redis://127.0.0.1:6379/0",
            "REALTIME_CORS_ORIGINS": "https://a.example, https://b.example/",
            "REALTIME_HISTORY_SIZE": "50",
        }
    )
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.history_size == 50


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REALTIME_HISTORY_TTL", "-1"),
        ("REALTIME_HISTORY_SIZE", "lots"),
        ("REALTIME_MAX_CONNECTIONS_PER_USER", "0"),
        ("REALTIME_DATABASE_URL", "postgresql://no-driver"),
        ("REALTIME_REDIS_URL", "redis://"),
        ("REALTIME_REDIS_URL", "redis://h:notaport"),
        ("REALTIME_CORS_ORIGINS", "*,https://a.example"),
        ("REALTIME_JWT_SECRET", "short"),
        ("REALTIME_API_KEY", "short"),
        ("REALTIME_TRUSTED_PROXIES", "10.0.0.1,nginx.internal"),
        ("REALTIME_MAX_UNAUTHENTICATED_PER_ADDRESS", "0"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_a_bad_database_url_is_named_without_its_password() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"REALTIME_DATABASE_URL": "mysql://app:hunter2@db/x"})
    assert "hunter2" not in str(err.value) and "app:***@db" in str(err.value)


def test_absolute_and_memory_sqlite_urls_are_kept() -> None:
    for url in ("sqlite+aiosqlite:////var/lib/rt.db", "sqlite+aiosqlite:///:memory:"):
        assert load_settings({"REALTIME_DATABASE_URL": url}).database_url == url


def test_stall_seconds_is_read_and_checked() -> None:
    assert load_settings({"REALTIME_STALL_SECONDS": "60"}).stall_seconds == 60
    with pytest.raises(ConfigError, match="REALTIME_STALL_SECONDS"):
        load_settings({"REALTIME_STALL_SECONDS": "0"})


def test_the_schema_head_names_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from realtime.store.migrate import HEAD, MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_heartbeat_and_payload_limit_are_configurable() -> None:
    s = load_settings(
        {
            "REALTIME_PING_INTERVAL": "5",
            "REALTIME_PING_TIMEOUT": "7",
            "REALTIME_MAX_PAYLOAD": "2048",
        }
    )
    assert (s.ping_interval, s.ping_timeout, s.max_message_bytes) == (5, 7, 2048)
    with pytest.raises(ConfigError, match="REALTIME_MAX_PAYLOAD"):
        load_settings({"REALTIME_MAX_PAYLOAD": "10"})


def test_trusted_proxies_are_normalised_addresses() -> None:
    settings = load_settings({"REALTIME_TRUSTED_PROXIES": " 10.0.0.1, ::0001 ,"})
    assert settings.trusted_proxies == frozenset({"10.0.0.1", "::1"})
    assert load_settings({}).max_unauthenticated_per_address == 128
