"""Start-up settings: a simulator URL or Klevu's hosts; a bad value names its variable."""

import pytest

from storefront.config import (
    LIVE_CONFIG_URL,
    LIVE_STATS_URL,
    LIVE_VISITOR_URL,
    ConfigError,
    from_env,
)
from storefront.simulator import account
from storefront.simulator.account import shop_environment

# What `make run` gives a shop: the simulator's URL, api key, recs keys and company id.
SIMULATOR = shop_environment("http://127.0.0.1:5001")


def test_a_simulator_url_points_every_service_at_the_simulator():
    config = from_env(SIMULATOR)
    klevu = config["KLEVU"]
    assert klevu.offline and klevu.api_key == account.API_KEY
    assert klevu.visitor_url == "http://127.0.0.1:5001/visitor/public/1.0"
    assert klevu.search_url == "http://127.0.0.1:5001/cs/v2/search"
    assert klevu.recs["HOME"] == ("k-home-picks", "k-home-recent")
    assert config["KLAVIYO_COMPANY_ID"] == account.COMPANY_ID
    assert config["CONSENT_REQUIRED"] is True


def test_without_an_api_key_start_up_stops_and_says_how_to_run_the_demo():
    with pytest.raises(ConfigError, match=r"KLEVU_API_KEY is not set.*make run"):
        from_env({})


def test_a_live_key_means_klevu_hosts_and_no_default_banners():
    klevu = from_env({"KLEVU_API_KEY": "klevu-123", "KLEVU_RECS_HOME": "k-a, k-b"})["KLEVU"]
    assert not klevu.offline
    assert (klevu.visitor_url, klevu.config_url, klevu.stats_url) == (
        LIVE_VISITOR_URL,
        LIVE_CONFIG_URL,
        LIVE_STATS_URL,
    )
    assert klevu.search_url is None  # https:// + the config's basePath
    assert klevu.recs == {"HOME": ("k-a", "k-b"), "CATEGORY": (), "PRODUCT": (), "CHECKOUT": ()}


def test_banner_templates_default_to_en_us_and_the_documented_limits():
    config = from_env(SIMULATOR)
    assert (
        config["STOREFRONT_LOCALE"],
        config["BANNER_RENDER_TIME_LIMIT_MS"],
        config["BANNER_RENDER_MEMORY_LIMIT_MB"],
    ) == ("en-US", 250, 32)
    config = from_env(
        {
            **SIMULATOR,
            "STOREFRONT_LOCALE": "de-CH",
            "BANNER_RENDER_TIME_LIMIT_MS": "500",
            "BANNER_RENDER_MEMORY_LIMIT_MB": "64",
        }
    )
    assert (
        config["STOREFRONT_LOCALE"],
        config["BANNER_RENDER_TIME_LIMIT_MS"],
        config["BANNER_RENDER_MEMORY_LIMIT_MB"],
    ) == ("de-CH", 500, 64)


def test_an_empty_recs_variable_means_no_banner():
    assert from_env({**SIMULATOR, "KLEVU_RECS_PRODUCT": ""})["KLEVU"].recs["PRODUCT"] == ()


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"KLEVU_VISITOR_URL": "ftp://x"}, "KLEVU_VISITOR_URL"),
        ({"KLEVU_CONFIG_URL": "config-cdn.ksearchnet.com"}, "KLEVU_CONFIG_URL"),
        ({"KLEVU_SEARCH_URL": "javascript:alert(1)"}, "KLEVU_SEARCH_URL"),
        ({"KLEVU_STATS_URL": "http://"}, "KLEVU_STATS_URL"),
        ({"KLAVIYO_COMPANY_ID": "abc"}, "KLAVIYO_COMPANY_ID"),
        ({"KLAVIYO_COMPANY_ID": "ab.c12"}, "KLAVIYO_COMPANY_ID"),
        ({"KLEVU_RECS_HOME": "k-ok,<script>"}, "KLEVU_RECS_HOME"),
        ({"KLAVIYO_ONSITE": "maybe"}, "KLAVIYO_ONSITE"),
        ({"CACHE_REDIS_URL": "http://localhost"}, "CACHE_REDIS_URL"),
        ({"KLEVU_API_KEY": "klevu 123"}, "KLEVU_API_KEY"),
        ({"KLEVU_VIEW_RULE": "scrolled"}, "KLEVU_VIEW_RULE"),
        ({"KLEVU_CURRENCY_FORMATS": "{not json"}, "KLEVU_CURRENCY_FORMATS"),
        ({"KLEVU_CURRENCY_FORMATS": '["EUR"]'}, "KLEVU_CURRENCY_FORMATS"),
        ({"KLEVU_CURRENCY_FORMATS": '{"EURO": {"string": "€"}}'}, "KLEVU_CURRENCY_FORMATS"),
        ({"KLEVU_CURRENCY_FORMATS": '{"EUR": {"symbol": "€"}}'}, "KLEVU_CURRENCY_FORMATS"),
        ({"KLEVU_CURRENCY_FORMATS": '{"EUR": {"atEnd": "yes"}}'}, "KLEVU_CURRENCY_FORMATS"),
        ({"KLEVU_CURRENCY_FORMATS": '{"EUR": {"precision": 12}}'}, "KLEVU_CURRENCY_FORMATS"),
        ({"KLEVU_CURRENCY_FORMATS": '{"EUR": {"format": "%s"}}'}, "KLEVU_CURRENCY_FORMATS"),
        ({"STOREFRONT_LOCALE": "en_US.UTF-8"}, "STOREFRONT_LOCALE"),
        ({"BANNER_RENDER_TIME_LIMIT_MS": "0"}, "BANNER_RENDER_TIME_LIMIT_MS"),
        ({"BANNER_RENDER_TIME_LIMIT_MS": "1.5"}, "BANNER_RENDER_TIME_LIMIT_MS"),
        ({"BANNER_RENDER_MEMORY_LIMIT_MB": "4"}, "BANNER_RENDER_MEMORY_LIMIT_MB"),
        ({"OUTBOX_URL": "postgres://db/events"}, "OUTBOX_URL"),
        ({"OUTBOX_LEASE_SECONDS": "1"}, "OUTBOX_LEASE_SECONDS"),
        ({"STOREFRONT_METRICS": "sometimes"}, "STOREFRONT_METRICS"),
        ({"STOREFRONT_LOG_FORMAT": "xml"}, "STOREFRONT_LOG_FORMAT"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        from_env({**SIMULATOR, **env})


def test_view_rule_and_currency_formats_default_to_klevus_behaviour():
    config = from_env(SIMULATOR)
    assert config["KLEVU_VIEW_RULE"] == "rendered"  # JSv2: an impression once rendered
    assert config["KLEVU_CURRENCY_FORMATS"] == {}  # no symbol guessed: "EUR 850.00"


def test_currency_formats_and_view_rule_are_read():
    config = from_env(
        {
            **SIMULATOR,
            "KLEVU_VIEW_RULE": "Visible",
            "KLEVU_CURRENCY_FORMATS": '{"EUR": {"string": "€"}, '
            '"SEK": {"string": " kr", "atEnd": true, '
            '"precision": 0, "decimal": ","}}',
        }
    )
    assert config["KLEVU_VIEW_RULE"] == "visible"
    assert config["KLEVU_CURRENCY_FORMATS"] == {
        "EUR": {"string": "€"},
        "SEK": {"string": " kr", "atEnd": True, "precision": 0, "decimal": ","},
    }
