"""Settings from the environment: defaults, and one clear error naming a bad variable."""

import pytest

from realtime.config import DEFAULT_DATABASE_URL, ConfigError, load_settings


def test_defaults() -> None:
    s = load_settings({})
    assert s.database_url == DEFAULT_DATABASE_URL and s.redis_url is None
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
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})
