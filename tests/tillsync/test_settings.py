from __future__ import annotations

from pathlib import Path

import pytest

from tillsync.schemas.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TILLSYNC_"):
            monkeypatch.delenv(name)


def test_environment_overrides_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('kafka_bootstrap = "h1:1"\nsitoo_account_id = 7\n')
    monkeypatch.setenv("TILLSYNC_CONFIG", str(config))
    monkeypatch.setenv("TILLSYNC_KAFKA_BOOTSTRAP", "h2:2")
    s = load_settings()
    assert s.kafka_bootstrap == "h2:2"
    assert s.sitoo_account_id == 7
    assert s.sitoo_account_url == "https://api.mysitoo.com/v2/accounts/7"


def test_errors_name_the_setting_and_its_variable_but_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TILLSYNC_SHOPIFY_API_VERSION", "april")
    monkeypatch.setenv("TILLSYNC_KAFKA_BOOTSTRAP", "no-port-here")
    monkeypatch.setenv("TILLSYNC_SITOO_API_PASSWORD", "hunter2")
    with pytest.raises(ConfigError) as err:
        load_settings()
    text = str(err.value)
    assert "TILLSYNC_SHOPIFY_API_VERSION" in text and "2026-04" in text
    assert "TILLSYNC_KAFKA_BOOTSTRAP" in text
    assert "hunter2" not in text


def test_missing_config_file_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLSYNC_CONFIG", "/nonexistent/tillsync.toml")
    with pytest.raises(ConfigError, match="no such file"):
        load_settings()


def test_require_lists_every_missing_setting() -> None:
    s = load_settings()
    with pytest.raises(ConfigError) as err:
        s.require("shopify_access_token", "sitoo_api_id")
    assert "TILLSYNC_SHOPIFY_ACCESS_TOKEN" in str(err.value)
    assert "TILLSYNC_SITOO_API_ID" in str(err.value)


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TILLSYNC_SHOPIFY_ACCESS_TOKEN", "shpat_secret")
    s = load_settings()
    assert "shpat_secret" not in repr(s)
    assert s.shopify_access_token is not None
    assert s.shopify_access_token.get_secret_value() == "shpat_secret"


def test_graphql_url_defaults_to_the_shop_domain() -> None:
    s = load_settings(shopify_shop="acme.myshopify.com", shopify_api_version="2026-04")
    assert s.shopify_graphql_url == "https://acme.myshopify.com/admin/api/2026-04/graphql.json"
