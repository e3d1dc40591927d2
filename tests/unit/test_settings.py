"""Settings: MCP_HUB_* environment, an optional YAML file, and one-machine defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mcp_hub.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MCP_HUB_"):
            monkeypatch.delenv(name)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path(".mcp-hub")
    assert settings.host == "127.0.0.1"
    assert settings.port == 4000
    assert settings.base_url == "http://127.0.0.1:4000"
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / '.mcp-hub' / 'mcp-hub.db'}"
    assert settings.is_sqlite
    assert settings.key_file == Path(".mcp-hub") / "encryption.keys"
    assert settings.encryption_keys is None
    assert settings.admin_key is None


def test_environment_with_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MCP_HUB_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("MCP_HUB_HOST", "0.0.0.0")
    monkeypatch.setenv("MCP_HUB_PORT", "4100")
    monkeypatch.setenv("MCP_HUB_PUBLIC_BASE_URL", "https://hub.example.com/")
    monkeypatch.setenv("MCP_HUB_ADMIN_KEY", "k" * 40)
    monkeypatch.setenv("PORT", "9999")  # without the prefix: ignored
    settings = Settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.host == "0.0.0.0"
    assert settings.port == 4100
    assert settings.base_url == "https://hub.example.com"
    assert settings.admin_key is not None and settings.admin_key.get_secret_value() == "k" * 40
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'mcp-hub.db'}"


def test_postgres_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://hub:pw@db.example/hub"
    monkeypatch.setenv("MCP_HUB_DATABASE_URL", url)
    settings = Settings()
    assert settings.resolved_database_url == url
    assert not settings.is_sqlite


def test_yaml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(f"port: 4200\nhost: 10.0.0.1\ndata_dir: {tmp_path / 'y'}\nrotate_batch_size: 7\n")
    monkeypatch.setenv("MCP_HUB_CONFIG_FILE", str(config))
    settings = Settings()
    assert (settings.port, settings.host, settings.data_dir, settings.rotate_batch_size) == (
        4200,
        "10.0.0.1",
        tmp_path / "y",
        7,
    )


def test_environment_wins_over_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text("port: 4200\nhost: 10.0.0.1\n")
    monkeypatch.setenv("MCP_HUB_CONFIG_FILE", str(config))
    monkeypatch.setenv("MCP_HUB_PORT", "4300")
    settings = Settings()
    assert settings.port == 4300
    assert settings.host == "10.0.0.1"


def test_secrets_are_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_HUB_ADMIN_KEY", "canary-admin-key-" + "z" * 30)
    monkeypatch.setenv("MCP_HUB_ENCRYPTION_KEYS", "a:canaryencryptionkey")
    text = repr(Settings()) + str(Settings().model_dump())
    assert "canary-admin-key" not in text
    assert "canaryencryptionkey" not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "asyncpg"),
        ("postgres://u@h/db", "asyncpg"),
        ("mysql://u@h/db", "sqlite+aiosqlite:// or postgresql+asyncpg://"),
        ("sqlite:///x.db", "sqlite+aiosqlite:// or postgresql+asyncpg://"),
        ("not a url", "sqlite+aiosqlite:// or postgresql+asyncpg://"),
    ],
)
def test_bad_database_url_is_rejected(monkeypatch: pytest.MonkeyPatch, url: str, expected: str) -> None:
    monkeypatch.setenv("MCP_HUB_DATABASE_URL", url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert expected in str(caught.value)


@pytest.mark.parametrize(("name", "value"), [("PORT", "0"), ("PORT", "70000"), ("PORT", "abc")])
def test_bad_port_is_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"MCP_HUB_{name}", value)
    with pytest.raises(ValidationError):
        Settings()


def test_short_admin_key_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_HUB_ADMIN_KEY", "short")
    with pytest.raises(ValidationError, match="32 to 256"):
        Settings()
