"""``flask klevu check`` on broken configs: each breakage gives its own ✗ line and hint.

The config CDN, search and collector are stubbed with ``responses`` so each answer can be
broken exactly one way; the real-socket runs against the simulator are in
tests/integration/test_klevu_check.py.
"""

from __future__ import annotations

import json
import re

import pytest
import responses

from storefront import create_app
from storefront.simulator.recs_configs import demo_configs, settings_answer
from tests.helpers import app_config, free_port

API_KEY = "klevu-1234567890"
KEY = "k-home-picks"
CONFIG_URL = re.compile(r"https://config-cdn\.ksearchnet\.com/recommendations/.*")
SEARCH_URL = "https://eucs1.ksearchnet.com/cs/v2/search"


def good_config() -> dict:
    banner = demo_configs()[KEY]
    return settings_answer(
        banner, banner.default, api_key=API_KEY, base_path="eucs1.ksearchnet.com/cs/v2/search"
    )


def records(n: int) -> dict:
    return {
        "queryResults": [
            {
                "id": "klevuRECSItemList",
                "meta": {},
                "records": [
                    {
                        "id": f"p{i}",
                        "name": f"P{i}",
                        "salePrice": "9",
                        "currency": "EUR",
                        "url": f"/p/{i}",
                    }
                    for i in range(n)
                ],
            }
        ]
    }


def broken(path: str, value) -> dict:
    config = good_config()
    *parents, last = path.split(".")
    target = config
    for part in parents:
        target = target[part]
    target[last] = value
    return config


def run(tmp_path, config: dict, search: dict | None = None):
    responses.add(
        responses.POST,
        re.compile(r"https://visitor\.service\.ksearchnet\.com/.*"),
        json={"sessionId": "s-123456789", "segmentInfo": {"segments": [], "ttl": 60}},
    )
    responses.add(responses.GET, CONFIG_URL, json=config)
    responses.add(responses.POST, SEARCH_URL, json=search or records(8))
    responses.add(responses.POST, "https://stats.ksearchnet.com/analytics/collect", status=400)
    app = create_app(
        app_config(
            f"http://127.0.0.1:{free_port()}",
            tmp_path,
            KLEVU_SIMULATOR_URL="",
            KLEVU_API_KEY=API_KEY,
            KLEVU_RECS_HOME=KEY,
            KLEVU_RECS_CATEGORY="",
            KLEVU_RECS_PRODUCT="",
            KLEVU_RECS_CHECKOUT="",
            OUTBOX_RELAY_IN_APP=False,
        )
    )
    return app.test_cli_runner().invoke(args=["klevu", "check"])


@responses.activate
def test_the_stubbed_account_passes(tmp_path):
    result = run(tmp_path, good_config())
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", ["metadata.action", "search.recsAction"])
@responses.activate
def test_a_banner_hidden_on_purpose_passes(tmp_path, path):
    """HIDE_RECOMMENDATION is the merchant's choice for these segments, not a fault."""
    result = run(tmp_path, broken(path, "HIDE_RECOMMENDATION"))
    assert result.exit_code == 0, result.output
    assert f"✓ search {KEY} (HOME): not needed: action HIDE_RECOMMENDATION" in result.output


@pytest.mark.parametrize(
    "config, search, line, hint",
    [
        (
            broken("search.payload", "{not json"),
            None,
            f"✗ payload {KEY} (HOME): search.payload does not parse",
            "JSON string",
        ),
        (
            broken("search.basePath", "https://eucs1.ksearchnet.com/cs/v2/search"),
            None,
            f"✗ basePath {KEY} (HOME): config basePath",
            "without a scheme",
        ),
        (
            broken("metadata.pageType", "CHECKOUT"),
            None,
            f"✗ page type {KEY} (HOME): the config is for CHECKOUT pages",
            "KLEVU_RECS_CHECKOUT",
        ),
        (
            broken("metadata.enabled", False),
            None,
            f"✗ shown {KEY} (HOME): never shown: metadata.enabled is not true",
            "Merchant Center",
        ),
        (
            broken("metadata.logic", ""),
            None,
            f"✗ shown {KEY} (HOME): never shown: metadata lacks logic",
            "KLEVU_RECS_HOME",
        ),
        (
            good_config(),
            records(2),
            f"✗ search {KEY} (HOME): 2 records, fewer than productThreshold 4",
            "productThreshold",
        ),
        (
            broken("templates.base", "<p>\n<%= helper.renderProduct(data) %></p>"),
            None,
            f"✗ template {KEY} (HOME): TypeError: helper.renderProduct is not a function at "
            "template line 2",
            "missing helper: helper.renderProduct",
        ),
        (
            broken("templates.base", "<ul>\n\n<% for (var i = 0; i < 3; i++ { %><li></li><% } %>"),
            None,
            f"✗ template {KEY} (HOME): SyntaxError",
            "at template line 3",
        ),
        (
            broken("styles.base", "}}} @import url(evil.css); <<<"),
            None,
            f"✗ CSS {KEY} (HOME): nothing in styles.base survives cleaning",
            "cleaner",
        ),
    ],
)
@responses.activate
def test_each_broken_config_is_named(tmp_path, config, search, line, hint):
    result = run(tmp_path, config, search)
    assert result.exit_code == 1, result.output
    assert line in result.output, result.output
    block = line + result.output.split(line, 1)[1].split("\n✓", 1)[0]
    assert hint in block, result.output


@responses.activate
def test_json_names_each_failed_check(tmp_path):
    responses.add(responses.POST, re.compile(r"https://visitor\..*"), status=503)
    app = create_app(
        app_config(
            f"http://127.0.0.1:{free_port()}",
            tmp_path,
            KLEVU_SIMULATOR_URL="",
            KLEVU_API_KEY=API_KEY,
            KLEVU_RECS_HOME="",
            KLEVU_RECS_CATEGORY="",
            KLEVU_RECS_PRODUCT="",
            KLEVU_RECS_CHECKOUT="",
            OUTBOX_RELAY_IN_APP=False,
        )
    )
    responses.add(responses.POST, "https://stats.ksearchnet.com/analytics/collect", status=400)
    result = app.test_cli_runner().invoke(args=["klevu", "check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    failed = {c["name"]: c for c in report["checks"] if not c["ok"]}
    assert set(failed) == {"visitor service", "recs keys"}
    assert "try again later" in failed["visitor service"]["hint"]
