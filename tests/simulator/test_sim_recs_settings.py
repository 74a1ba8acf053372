"""Config CDN: the settings answer, variant choice by sids, the demo banners.

docs/klevu-wire-format.md §2.
"""

import json

import pytest

from storefront.simulator import API_KEY, create_app
from storefront.simulator.account import RECS
from storefront.simulator.recs_configs import demo_configs

SHOP_KEYS = [key for keys in RECS.values() for key in keys.split(",")]


def payload_query(answer):
    return json.loads(answer["search"]["payload"])["recordQueries"][0]


def test_serves_every_recs_key_the_shop_expects_for_its_page_type():
    configs = demo_configs()
    for page_type, keys in RECS.items():
        for key in keys.split(","):
            assert configs[key].page_type == page_type


@pytest.mark.parametrize("recs_key", SHOP_KEYS)
def test_answer_has_klevus_shape(config, recs_key):
    answer = config(recs_key)
    meta = answer["metadata"]
    assert set(meta) == {
        "title",
        "recsKey",
        "pageType",
        "logic",
        "maxProducts",
        "productThreshold",
        "enabled",
        "spotKey",
        "spotName",
        "segmentKey",
        "segmentName",
        "action",
    }
    assert meta["recsKey"] == recs_key and meta["enabled"] is True
    assert (meta["segmentKey"], meta["segmentName"], meta["action"]) == (None, None, None)
    assert isinstance(answer["search"]["payload"], str)
    payload = json.loads(answer["search"]["payload"])
    assert payload["context"] == {"apiKeys": [API_KEY]}
    query = payload["recordQueries"][0]
    assert query["id"] == "klevuRECSItemList"
    assert query["settings"]["limit"] == meta["maxProducts"]
    assert query["settings"]["query"]["term"] == "*"
    assert "<%" in answer["templates"]["base"] and "kuRECSItem" in answer["templates"]["base"]
    assert ".kuRECS-" in answer["styles"]["base"]
    assert isinstance(answer["scripts"]["recsObject"], str)
    assert answer["staticContent"] == []


def test_base_path_is_this_host_without_scheme(client):
    answer = client.get(
        f"/recommendations/{API_KEY}/settings/k-home-picks", base_url="http://sim.example:5001"
    ).get_json()
    assert answer["search"]["basePath"] == "sim.example:5001/cs/v2/search"


@pytest.mark.parametrize(
    "sids, segment, title",
    [
        (None, None, "Trending now"),
        ("seg_outdoor", "seg_outdoor", "Ready for the trail"),
        ("seg_style,seg_vip", "seg_vip", "The premium edit, for our VIPs"),  # config order wins
        ("seg_unknown,seg_home", "seg_home", "New in for your home"),
        ("seg_unknown", None, "Trending now"),
    ],
)
def test_first_variant_in_config_order_whose_segment_is_in_sids_wins(config, sids, segment, title):
    meta = config("k-home-picks", **({"sids": sids} if sids else {}))["metadata"]
    assert (meta["segmentKey"], meta["title"]) == (segment, title)


def test_segment_name_comes_from_personas(config):
    assert config("k-home-picks", sids="seg_vip")["metadata"]["segmentName"] == "VIP customers"


def test_sloppy_leading_ampersand_is_accepted(client):
    response = client.get(f"/recommendations/{API_KEY}/settings/k-home-picks?&sids=seg_bargain")
    assert response.get_json()["metadata"]["segmentKey"] == "seg_bargain"


def test_variants_bake_their_record_query(config):
    vip = payload_query(config("k-home-picks", sids="seg_vip"))
    bargain = payload_query(config("k-home-picks", sids="seg_bargain"))
    outdoor = payload_query(config("k-home-picks", sids="seg_outdoor"))
    assert vip["typeOfRequest"] == "RECS_CUSTOM" and vip["settings"]["sort"] == "PRICE_DESC"
    assert "onSale:true" in bargain["settings"]["customANDQuery"]
    assert outdoor["settings"]["query"] == {"term": "*", "categoryPath": "Outdoor"}


@pytest.mark.parametrize("recs_key", SHOP_KEYS)
def test_titles_differ_between_variants(recs_key):
    config = demo_configs()[recs_key]
    titles = [v.title for v in (config.default, *config.segment_variants)]
    assert len(set(titles)) == len(titles)


def test_segment_variants_use_at_least_two_looks():
    looks = {v.look for c in demo_configs().values() for v in (c.default, *c.segment_variants)}
    assert {"grid", "strip"} <= looks


def test_recently_viewed_banner_shows_from_one_product(config):
    meta = config("k-home-recent")["metadata"]
    assert (meta["logic"], meta["productThreshold"]) == ("RECENTLY_VIEWED", 1)


@pytest.mark.parametrize(
    "recs_key, logic, min_variants",
    [
        ("k-category-trending", "TRENDING", 2),
        ("k-product-similar", "OTHER_ALSO_VIEWED", 1),
        ("k-checkout-together", "BOUGHT_TOGETHER", 2),
    ],
)
def test_page_banners_have_segment_variants(config, recs_key, logic, min_variants):
    assert config(recs_key)["metadata"]["logic"] == logic
    assert len(demo_configs()[recs_key].segment_variants) >= min_variants


def test_checkout_bargain_variant_is_a_static_banner(config):
    answer = config("k-checkout-together", sids="seg_bargain")
    assert answer["metadata"]["action"] == "STATIC_CONTENT"
    [content] = answer["staticContent"]
    assert content["contentType"] == "image"
    assert {i["resolution"]: i["url"] for i in content["image"]} == {
        "desktop": "/img/promo/sale-desktop.svg",
        "mobile": "/img/promo/sale-mobile.svg",
    }
    assert all(i["altTag"] for i in content["image"])


def test_checkout_vip_variant_hides_the_banner(config):
    assert (
        config("k-checkout-together", sids="seg_vip,seg_bargain")["metadata"]["action"]
        == "HIDE_RECOMMENDATION"
    )


def test_shop_url_prefixes_static_content():
    client = create_app({"SIMULATOR_SHOP_URL": "http://shop.test:5000/"}).test_client()
    answer = client.get(f"/recommendations/{API_KEY}/settings/k-checkout-together?sids=seg_bargain")
    urls = [i["url"] for i in answer.get_json()["staticContent"][0]["image"]]
    assert urls == [
        "http://shop.test:5000/img/promo/sale-desktop.svg",
        "http://shop.test:5000/img/promo/sale-mobile.svg",
    ]


@pytest.mark.parametrize(
    "path",
    [
        f"/recommendations/{API_KEY}/settings/k-nope",
        "/recommendations/klevu-other/settings/k-home-picks",
    ],
)
def test_unknown_recs_key_or_api_key_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "not found" in response.get_json()["error"]


def test_config_calls_are_journaled_with_the_chosen_variant(client, config):
    config("k-category-trending", sids="seg_bargain,seg_vip", cp="Clothing;Jackets")
    call = client.get("/_sim/state").get_json()["recent"][0]
    assert call["kind"] == "config"
    assert call["detail"]["variant"] == "seg_vip"
    assert call["detail"]["sids"] == ["seg_bargain", "seg_vip"]
    assert call["detail"]["cp"] == "Clothing;Jackets"


def test_a_draft_banner_answers_without_enabled(config):
    """A config with no ``enabled`` at all: JSv2 (and the shop) must not show it."""
    meta = config("k-home-draft")["metadata"]
    assert "enabled" not in meta
    assert config("k-home-picks")["metadata"]["enabled"] is True
