import pytest

from app.settings import SettingsError, load_settings


def test_defaults_work_on_a_fresh_machine() -> None:
    settings = load_settings({})
    assert settings.database_url is None  # → embedded server
    assert settings.default_timezone == "Asia/Almaty"
    assert settings.outbound_tls_min == "1.3"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({"TEST_DATABASE_URL": "mariadb://root@127.0.0.1/test"}, "TEST_DATABASE_URL"),
        ({"QUEUE_URL": "amqp://guest@localhost"}, "QUEUE_URL"),
        ({"TELEGRAM_API_URL": "not a url"}, "TELEGRAM_API_URL"),
        ({"SMTP_URL": "http://mail"}, "SMTP_URL"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"POZAPISI_ENV": "production"}, "SECRET_KEY"),
        ({"TELEGRAM_BOT_TOKEN": "no-colon"}, "TELEGRAM_BOT_TOKEN"),
        ({"OUTBOUND_TLS_MIN": "1.0"}, "OUTBOUND_TLS_MIN"),
        ({"DEFAULT_TIMEZONE": "Mars/Olympus"}, "DEFAULT_TIMEZONE"),
        ({"POZAPISI_ENV": "staging"}, "POZAPISI_ENV"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        load_settings(env)


@pytest.mark.policy("6.1")
def test_storage_outside_the_allowed_regions_is_refused() -> None:
    with pytest.raises(SettingsError, match="Kazakhstan"):
        load_settings({"STORAGE_REGION": "eu-central"})
    assert load_settings({"STORAGE_REGION": "KZ"}).storage_region == "kz"


def test_valid_values_are_kept() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://owner@127.0.0.1:5432/pz",
            "QUEUE_URL": "redis://127.0.0.1:6379/0",
            "SMTP_URL": "smtp://127.0.0.1:2525",
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "SECRET_KEY": "x" * 40,
            "POZAPISI_ENV": "production",
        }
    )
    assert settings.is_production
    assert settings.queue_url == "redis://127.0.0.1:6379/0"
