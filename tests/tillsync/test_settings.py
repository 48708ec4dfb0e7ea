from __future__ import annotations

from pathlib import Path

import pytest

from tillsync.schemas.settings import ConfigError, Settings, load_settings


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


# -- what the stock flow needs before the worker starts ------------------------------------------

LOCATIONS = """\
locations:
  - {name: Store, shopify_location_id: 1, sitoo_store_id: 1, sitoo_warehouse_id: 101}
"""


def _stock_settings(tmp_path: Path, **overrides: object) -> dict[str, object]:
    locations = tmp_path / "locations.yaml"
    locations.write_text(LOCATIONS)
    return {
        "locations_file": locations,
        "shopify_access_token": "shpat_x",
        "shopify_app_secret": "s",
        "sitoo_account_id": 1,
        "sitoo_api_id": "1-1",
        "sitoo_api_password": "p",
        **overrides,
    }


def test_the_stock_flow_refuses_to_start_with_an_open_sitoo_events_receiver(
    tmp_path: Path,
) -> None:
    from tillsync.streams.runtime import load_runtime

    with pytest.raises(ConfigError) as err:
        load_runtime(load_settings(**_stock_settings(tmp_path)))
    text = str(err.value)
    for name in (
        "TILLSYNC_SITOO_EVENTS_USERNAME",
        "TILLSYNC_SITOO_EVENTS_PASSWORD",
        "TILLSYNC_SITOO_EVENTS_INSECURE",
        "--insecure-sitoo-endpoint",
    ):
        assert name in text


@pytest.mark.parametrize(
    "given",
    [{"sitoo_events_username": "sitoo"}, {"sitoo_events_password": "pw"}],
)
def test_half_of_the_sitoo_events_credentials_is_an_error_even_when_insecure(
    tmp_path: Path, given: dict[str, str]
) -> None:
    from tillsync.streams.runtime import load_runtime

    settings = load_settings(**_stock_settings(tmp_path, sitoo_events_insecure=True, **given))
    with pytest.raises(ConfigError, match="TILLSYNC_SITOO_EVENTS_"):
        load_runtime(settings)


def test_the_stock_flow_starts_with_sitoo_events_credentials_or_when_told_it_is_insecure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tillsync.streams.runtime import load_runtime

    creds = {"sitoo_events_username": "sitoo", "sitoo_events_password": "pw"}
    assert load_runtime(load_settings(**_stock_settings(tmp_path, **creds))).locations
    monkeypatch.setenv("TILLSYNC_SITOO_EVENTS_INSECURE", "true")
    settings = load_settings(**_stock_settings(tmp_path))
    assert settings.sitoo_events_insecure is True
    assert load_runtime(settings).locations


def test_the_demo_settings_start_the_stock_flow_with_sitoo_events_auth_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tillsync.streams.runtime import load_runtime

    locations = tmp_path / "locations.yaml"
    locations.write_text(LOCATIONS)
    monkeypatch.setenv("TILLSYNC_CONFIG", str(Path(__file__).parents[2] / "config" / "demo.toml"))
    settings = load_settings(locations_file=locations)
    # the Sitoo simulator sends the same settings' credentials with every Events SPI push
    assert settings.sitoo_events_username and settings.sitoo_events_password
    assert not settings.sitoo_events_insecure
    assert load_runtime(settings).locations


def test_the_state_token_is_a_secret_and_makes_the_header_that_state_readers_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().state_token is None
    assert load_settings().state_auth_headers == {}
    monkeypatch.setenv("TILLSYNC_STATE_TOKEN", "st-secret")
    s = load_settings()
    assert "st-secret" not in repr(s)
    assert s.state_auth_headers == {"Authorization": "Bearer st-secret"}


@pytest.mark.parametrize("token", ["", "two words", "tök", "line\nbreak"])
def test_a_state_token_must_be_one_word_of_visible_ascii(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    # it goes in an HTTP header: anything else could not be sent, or would not be this token
    monkeypatch.setenv("TILLSYNC_STATE_TOKEN", token)
    with pytest.raises(ConfigError, match="TILLSYNC_STATE_TOKEN") as err:
        load_settings()
    assert token not in str(err.value) or not token


def test_readme_names_every_setting() -> None:
    """README's configuration table is where an operator looks: a new setting goes there too."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Tests")]
    missing = [name for name in Settings.model_fields if f"`{name}`" not in table]
    assert not missing, f"README's configuration table lacks {missing}"
