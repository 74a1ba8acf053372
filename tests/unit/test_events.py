"""§5 event payloads, checked against the literal JSON of docs/klevu-wire-format.md."""

from typing import Any

import pytest

from storefront.klevu.analytics.events import BannerItem, BannerView, UnknownItem, click, impression

# docs/klevu-wire-format.md §2 (config metadata) and §3 (a record), as Klevu sends them.
METADATA = {
    "title": "Picked for our VIPs",
    "recsKey": "k-home-1",
    "pageType": "HOME",
    "logic": "TRENDING",
    "maxProducts": 12,
    "productThreshold": 4,
    "enabled": True,
    "spotKey": "spot-home-1",
    "spotName": "Home spot 1",
    "segmentKey": "seg_vip",
    "segmentName": "VIP customers",
    "action": None,
}
RECORD = {
    "id": "39814",
    "itemGroupId": "67466",
    "sku": "M0E2000E81S",
    "name": "Leather jacket",
    "url": "https://shop.example/p/39814",
    "image": "https://shop.example/img/39814.jpg",
    "price": "900.00",
    "salePrice": "850.00",
    "basePrice": "900.00",
    "currency": "EUR",
    "inStock": "yes",
    "totalVariants": 12,
    "brand": "Aeronautica",
    "category": "Clothing;;Jackets",
    "shortDesc": "",
    "color": "brown",
    "typeOfRecord": "KLEVU_PRODUCT",
}
SECOND = {
    "id": "40001",
    "name": "Scarf",
    "salePrice": "20.00",
    "currency": "EUR",
    "variantId": "40001-red",
    "itemGroupId": "",
}

# docs/klevu-wire-format.md §5, literally (the collector's body is an array of these).
EXPECTED_VIEW: dict[str, Any] = {
    "event": "view_recs_list",
    "event_version": "1.0.0",
    "event_apikey": "klevu-123",
    "user_profile": {"session_id": "a7c0..."},
    "event_data": {
        "tags": ["recsPageType:HOME"],
        "list_id": "k-home-1",
        "list_name": "Picked for our VIPs",
        "list_logic": "TRENDING",
        "spot_id": "spot-home-1",
        "spot_name": "Home spot 1",
        "segment_id": "seg_vip",
        "segment_name": "VIP customers",
        "items": [
            {
                "item_id": "39814",
                "item_name": "Leather jacket",
                "price": "850.00",
                "currency": "EUR",
                "item_brand": "Aeronautica",
                "item_category": "Clothing;;Jackets",
                "item_variant_id": "39814",
                "item_group_id": "67466",
                "index": 1,
                "quantity": 1,
            }
        ],
    },
}
EXPECTED_SECOND_ITEM = {
    "item_id": "40001",
    "item_name": "Scarf",
    "price": "20.00",
    "currency": "EUR",
    "item_variant_id": "40001-red",
    "item_group_id": "40001",
    "index": 2,
    "quantity": 1,
}


def banner(metadata=METADATA, records=(RECORD,)):
    return BannerView.from_config("klevu-123", "k-home-1", metadata, records)


def with_data(event, **changes):
    return {**event, "event_data": {**event["event_data"], **changes}}


def without(event, *keys):
    return {**event, "event_data": {k: v for k, v in event["event_data"].items() if k not in keys}}


def test_impression_is_the_literal_json_of_section_5():
    assert impression(banner(), "a7c0...") == EXPECTED_VIEW


def test_click_is_the_same_event_with_only_the_clicked_product():
    expected = {**EXPECTED_VIEW, "event": "select_recs_list"}
    assert click(banner(), "a7c0...", "39814") == expected


@pytest.mark.parametrize(
    "item_id, expected_item",
    [
        ("39814", EXPECTED_VIEW["event_data"]["items"][0]),
        ("40001", EXPECTED_SECOND_ITEM),  # keeps its original index
    ],
)
def test_click_keeps_the_products_original_index(item_id, expected_item):
    event = click(banner(records=(RECORD, SECOND)), "a7c0...", item_id)
    assert event["event_data"]["items"] == [expected_item]


def test_impression_numbers_products_from_one_in_banner_order():
    items = impression(banner(records=(RECORD, SECOND)), "a7c0...")["event_data"]["items"]
    assert items == [EXPECTED_VIEW["event_data"]["items"][0], EXPECTED_SECOND_ITEM]


@pytest.mark.parametrize(
    "record, expected",
    [
        (
            {"id": "1"},
            {
                "item_id": "1",
                "item_variant_id": "1",
                "item_group_id": "1",
                "index": 1,
                "quantity": 1,
            },
        ),
        (
            {"id": "1", "variantId": "1-b", "itemGroupId": "g"},
            {
                "item_id": "1",
                "item_variant_id": "1-b",
                "item_group_id": "g",
                "index": 1,
                "quantity": 1,
            },
        ),
        (
            {
                "id": "1",
                "variantId": None,
                "itemGroupId": None,
                "brand": None,
                "name": "",
                "salePrice": "9.00",
                "price": "12.00",
            },
            {
                "item_id": "1",
                "price": "9.00",
                "item_variant_id": "1",
                "item_group_id": "1",
                "index": 1,
                "quantity": 1,
            },
        ),
        (
            {"id": 7, "salePrice": 9.5, "brand": False, "category": "A;B"},
            {
                "item_id": "7",
                "price": "9.5",
                "item_category": "A;B",
                "item_variant_id": "7",
                "item_group_id": "7",
                "index": 1,
                "quantity": 1,
            },
        ),
    ],
)
def test_item_mapping_and_fallbacks(record, expected):
    assert impression(banner(records=(record,)), "s")["event_data"]["items"] == [expected]


@pytest.mark.parametrize(
    "metadata_changes, session_id, expected",
    [
        (
            {"segmentKey": None, "segmentName": None},
            "a7c0...",
            without(EXPECTED_VIEW, "segment_id", "segment_name"),
        ),
        (
            {"spotKey": None, "spotName": ""},
            "a7c0...",
            without(EXPECTED_VIEW, "spot_id", "spot_name"),
        ),
        ({"title": ""}, "a7c0...", without(EXPECTED_VIEW, "list_name")),
        (
            {"pageType": "CATEGORY"},
            "a7c0...",
            with_data(EXPECTED_VIEW, tags=["recsPageType:CATEGORY"]),
        ),
        ({}, "", {k: v for k, v in EXPECTED_VIEW.items() if k != "user_profile"}),
        ({}, None, {k: v for k, v in EXPECTED_VIEW.items() if k != "user_profile"}),
    ],
)
def test_empty_null_and_false_fields_are_left_out(metadata_changes, session_id, expected):
    assert impression(banner({**METADATA, **metadata_changes}), session_id) == expected


def test_click_on_a_product_not_in_the_banner_is_refused():
    with pytest.raises(UnknownItem):
        click(banner(), "a7c0...", "99999")


@pytest.mark.parametrize("items", [(BannerItem(""),), (BannerItem("1"), BannerItem(""))])
def test_a_rendered_banners_products_have_ids(items):
    with pytest.raises(ValueError, match="has an id"):
        BannerView("klevu-123", "k-home-1", "HOME", "Title", "TRENDING", items=items)


def test_a_banner_whose_search_found_nothing_reports_a_view_without_items():
    """JSv2 renders such a banner (the threshold is checked only for a non-empty list)."""
    empty = BannerView("klevu-123", "k-home-1", "HOME", "Title", "TRENDING")
    assert "items" not in impression(empty, "s")["event_data"]
    with pytest.raises(UnknownItem):
        click(empty, "s", "1")


def test_banner_view_keeps_only_what_events_need():
    assert banner() == BannerView(
        api_key="klevu-123",
        recs_key="k-home-1",
        page_type="HOME",
        title="Picked for our VIPs",
        logic="TRENDING",
        spot_key="spot-home-1",
        spot_name="Home spot 1",
        segment_key="seg_vip",
        segment_name="VIP customers",
        items=(
            BannerItem(
                id="39814",
                name="Leather jacket",
                sale_price="850.00",
                currency="EUR",
                brand="Aeronautica",
                category="Clothing;;Jackets",
                variant_id="",
                item_group_id="67466",
            ),
        ),
    )


STATIC: list[dict[str, Any]] = [
    {
        "targetUrl": "https://shop.example/sale",
        "contentType": "image",
        "image": [
            {
                "resolution": "desktop",
                "url": "https://shop.example/sale.svg",
                "altTag": "Sale",
                "maxWidth": "100%",
            }
        ],
    },
    {"targetUrl": "https://shop.example/new", "contentType": "image", "image": []},
]
STATIC_META = {
    "title": "Sale",
    "recsKey": "k-checkout-1",
    "pageType": "CHECKOUT",
    "logic": "BOUGHT_TOGETHER",
    "spotKey": "spot-1",
    "spotName": "Checkout",
    "segmentKey": "seg_bargain",
    "segmentName": "Bargain hunters",
    "action": "STATIC_CONTENT",
}


def static_banner() -> BannerView:
    return BannerView.from_static(
        "klevu-123", "k-checkout-1", STATIC_META, "STATIC_CONTENT", STATIC
    )


SALE = {
    "content_type": "image",
    "resolution": "desktop",
    "index": 1,
    "banner_image_url": "https://shop.example/sale.svg",
    "banner_alt_tag": "Sale",
}
PHONE_IMAGE = {"resolution": "mobile", "url": "https://shop.example/sale-phone.svg", "altTag": "%"}


def test_a_static_banners_view_reports_each_content_in_klevus_fields():
    """@klevu/core's bannerInfo, one entry per content (without an image: no image fields);
    no items, and the action."""
    event = impression(static_banner(), "sess-1")
    assert event["event"] == "view_recs_list"
    assert event["event_data"]["static_content"] == [SALE, {"content_type": "image", "index": 2}]
    assert event["event_data"]["action"] == "STATIC_CONTENT"
    assert event["event_data"]["list_id"] == "k-checkout-1"
    assert event["event_data"]["tags"] == ["recsPageType:CHECKOUT"]
    assert "items" not in event["event_data"]


@pytest.mark.parametrize(
    "shown, expected",
    [
        ((), "desktop"),  # nobody said: @klevu/core's default
        (("https://shop.example/sale-phone.svg",), "mobile"),
        (("https://shop.example/sale.svg",), "desktop"),
        (("https://elsewhere.example/x.svg",), "desktop"),  # not the banner's: ignored
    ],
)
def test_a_static_banner_reports_the_image_the_screen_showed(shown, expected):
    contents = [{**STATIC[0], "image": [*STATIC[0]["image"], PHONE_IMAGE]}]
    banner = BannerView.from_static("k", "k-checkout-1", STATIC_META, "STATIC_CONTENT", contents)
    [view] = impression(banner, None, shown)["event_data"]["static_content"]
    [chosen] = click(banner, None, "0", shown)["event_data"]["static_content"]
    assert view == chosen
    assert view["resolution"] == expected
    image = next(i for i in contents[0]["image"] if i["resolution"] == expected)
    assert (view["banner_image_url"], view["banner_alt_tag"]) == (image["url"], image["altTag"])


def test_without_a_desktop_image_the_first_is_reported():
    contents = [{**STATIC[0], "image": [PHONE_IMAGE]}]
    banner = BannerView.from_static("k", "k-checkout-1", STATIC_META, "STATIC_CONTENT", contents)
    [view] = impression(banner, None)["event_data"]["static_content"]
    assert view["resolution"] == "mobile"


def test_a_static_banners_click_carries_the_clicked_content():
    event = click(static_banner(), "sess-1", "0")
    assert event["event"] == "select_recs_list"
    assert event["event_data"]["static_content"] == [SALE]
    assert event["event_data"]["action"] == "STATIC_CONTENT"


@pytest.mark.parametrize("item", ["2", "-1", "x", "", "١", "00000000000000000000009"])
def test_a_click_on_static_content_the_banner_did_not_show_is_refused(item):
    with pytest.raises(UnknownItem):
        click(static_banner(), "sess-1", item)


def test_a_static_banner_has_content_and_no_products():
    with pytest.raises(ValueError, match="static content"):
        BannerView.from_static("k", "r", STATIC_META, "STATIC_CONTENT", [])
    with pytest.raises(ValueError, match="static content"):
        BannerView(
            "k", "r", "HOME", "t", "l", static_content='[{"a": 1}]', items=(BannerItem("1"),)
        )
