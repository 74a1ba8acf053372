"""``flask klevu check`` against the real simulator process: all ✓ on a healthy account, and
for each fault or misconfiguration the expected ✗ line and a non-zero exit status."""

from __future__ import annotations

import json

import pytest

from storefront import create_app
from tests.helpers import app_config, exchange_id


def check(sim, tmp_path, *args: str, **env: str):
    app = create_app(app_config(sim.url, tmp_path, OUTBOX_RELAY_IN_APP=False, **env))
    return app.test_cli_runner().invoke(args=["klevu", "check", *args])


def test_a_healthy_account_passes_every_check_and_sends_no_event(sim, tmp_path):
    result = check(sim, tmp_path, "--exchange-id", exchange_id("maya"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1].endswith("0 failed") and not any(line.startswith("✗") for line in lines)
    assert "✓ segments: seg_outdoor" in result.output
    for recs_key in ("k-home-picks", "k-category-trending", "k-product-similar"):
        for what in ("config", "page type", "payload", "basePath", "search", "template", "CSS"):
            assert f"✓ {what} {recs_key} (" in result.output, (what, recs_key)
    assert "✓ collector: answers" in result.output
    assert sim.events()["totals"]["received"] == 0


@pytest.mark.parametrize(
    "fault, env, expected",
    [
        ({"visitor": {"down": True}}, {}, "✗ visitor service: POST"),
        ({"config": {"down": True, "status": 502}}, {}, "✗ config k-home-picks (HOME): GET"),
        ({"search": {"down": True}}, {}, "✗ search k-home-picks (HOME): POST"),
        ({"collect": {"down": True}}, {}, "✗ collector: POST"),
        ({}, {"KLEVU_RECS_HOME": "k-nope"}, "✗ config k-nope (HOME): GET"),
        (
            {},
            {"KLEVU_RECS_HOME": "k-product-similar"},
            "✗ page type k-product-similar (HOME): the config is for PRODUCT pages, placed on HOME",
        ),
        (
            {},
            {
                "KLEVU_API_KEY": "klevu-0000000000",
                "KLEVU_VISITOR_URL": "{sim}/visitor/public/1.0",
                "KLEVU_CONFIG_URL": "{sim}",
                "KLEVU_SEARCH_URL": "{sim}/cs/v2/search",
                "KLEVU_STATS_URL": "{sim}/analytics/collect",
                "KLEVU_RECS_HOME": "k-home-picks",
            },
            "✗ visitor service: POST",
        ),
    ],
)
def test_each_fault_gives_its_failing_line_and_a_non_zero_exit(sim, tmp_path, fault, env, expected):
    sim.faults(**fault)
    env = {k: v.replace("{sim}", sim.url) for k, v in env.items()}
    result = check(sim, tmp_path, **env)
    assert result.exit_code == 1, result.output
    assert expected in result.output, result.output
    hint = result.output.split(expected, 1)[1].splitlines()[1]
    assert hint.strip().startswith("hint: "), result.output


def test_an_exchange_id_without_segments_fails_the_segments_check(sim, tmp_path):
    result = check(sim, tmp_path, "--exchange-id", "nobody.DemoCo")
    assert result.exit_code == 1
    assert "✗ segments: no segments came back" in result.output


def test_json_output_and_a_real_test_event_on_request(sim, tmp_path):
    result = check(sim, tmp_path, "--json", "--send-test-event")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and all(c["ok"] for c in report["checks"])
    assert report["checks"][-1]["name"] == "collector"
    received = sim.events()["events"]
    assert [e["summary"]["event"] for e in received] == ["view_recs_list"]
    assert received[0]["summary"]["list_id"] == "k-home-picks"


def test_the_api_key_is_masked_in_the_output(sim, tmp_path):
    result = check(sim, tmp_path, "--json", KLEVU_RECS_HOME="k-nope")  # its URL names the key
    assert result.exit_code == 1
    leaked = [line for line in result.output.splitlines() if "klevu-simulator" in line]
    assert leaked == [] and "klevu-…ator" in result.output


def test_sample_pages_come_from_the_shop_around_a_product_of_choice(sim, tmp_path):
    assert check(sim, tmp_path, "--product-id", "10030").exit_code == 0
    product_configs = [
        c["detail"]
        for c in sim.state()["recent"]
        if c["kind"] == "config" and c["detail"]["recsKey"] == "k-product-similar"
    ]
    assert product_configs[0]["pid"] == "10030"
    unknown = check(sim, tmp_path, "--product-id", "no-such-product")
    assert unknown.exit_code == 2 and "the shop has no product" in unknown.output
