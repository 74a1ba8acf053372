"""The query edits, one table row per rule of docs/klevu-wire-format.md §2 (JSv2's request
chain).

Plus limits, merging, JSv2's cleaning of the body, and errors.
"""

import copy
import json

import pytest

from storefront.klevu.banners.queries import (
    MalformedPayload,
    PageContext,
    RecsMetadata,
    build_search,
    clean,
)

API_KEY = "klevu-123"
BASE = {"limit": 12, "typeOfRecords": ["KLEVU_PRODUCT"], "query": {"term": "*"}}
PATH = ("Outdoor", "Tents")
CLICKS = ("c3", "c2", "c1")


def payload(settings=BASE, *, other=()):
    query = {"id": "klevuRECSItemList", "typeOfRequest": "RECS_TRENDING"}
    if settings is not None:
        query["settings"] = settings
    return json.dumps({"context": {"apiKeys": ["baked-in-key"]}, "recordQueries": [*other, query]})


def meta(page_type, logic, **extra):
    return {"pageType": page_type, "logic": logic, **extra}


def settings_of(body):
    (query,) = [q for q in body["recordQueries"] if q["id"] == "klevuRECSItemList"]
    return query["settings"]


def products(*records):
    return {"typeOfRecord": "KLEVU_PRODUCT", "records": list(records)}


def group(value):
    return {"key": "itemGroupId", "value": value}


PRODUCT_PAGE = PageContext("PRODUCT", product_id="p1", item_group_id="g1")
CART = (("p1", "g1"), ("p2", "g2"))
RECENT = ("r3", "r2", "r1")
# JSv2: every id quoted, limit = the number of ids.
RECENT_EDIT = {
    "customANDQuery": 'id:("r3" OR "r2" OR "r1")',
    "topIds": [{"key": "id", "value": v} for v in RECENT],
    "limit": 3,
}
PDP_EDIT = {"context": {"recentObjects": [products({"id": "p1"})]}, "excludeIds": [group("g1")]}
CLICK_OBJECTS = {"recentObjects": [products({"id": "c3"}, {"id": "c2"}, {"id": "c1"})]}


@pytest.mark.parametrize(
    "page_type, logic, page, expected",
    [
        # any + RECENTLY_VIEWED
        (
            "HOME",
            "RECENTLY_VIEWED",
            PageContext("HOME", recently_viewed=RECENT),
            {**BASE, **RECENT_EDIT},
        ),
        (
            "PRODUCT",
            "RECENTLY_VIEWED",
            PageContext("PRODUCT", product_id="p1", recently_viewed=RECENT),
            {**BASE, **RECENT_EDIT},
        ),
        # JSv2 adds the category path on category pages
        (
            "CATEGORY",
            "RECENTLY_VIEWED",
            PageContext("CATEGORY", category_path=PATH, recently_viewed=RECENT),
            {**BASE, **RECENT_EDIT, "query": {"term": "*", "categoryPath": "Outdoor;Tents"}},
        ),
        (
            "CATEGORY",
            "RECENTLY_VIEWED",
            PageContext("CATEGORY", recently_viewed=RECENT),
            {**BASE, **RECENT_EDIT},
        ),
        # CATEGORY + TRENDING / TRENDING_PERSONALIZED / NEWEST_ARRIVALS / CUSTOM_LOGIC
        *[
            (
                "CATEGORY",
                logic,
                PageContext("CATEGORY", category_path=PATH),
                {**BASE, "query": {"term": "*", "categoryPath": "Outdoor;Tents"}},
            )
            for logic in ("TRENDING", "NEWEST_ARRIVALS", "CUSTOM_LOGIC")
        ],
        (
            "CATEGORY",
            "TRENDING_PERSONALIZED",
            PageContext("CATEGORY", category_path=PATH, recent_clicks=CLICKS),
            {
                **BASE,
                "query": {"term": "*", "categoryPath": "Outdoor;Tents"},
                "context": CLICK_OBJECTS,
            },
        ),
        # any + TRENDING_PERSONALIZED: the clicks as recent objects (JSv2 adds no
        # personalisation settings of its own; the payload's are kept)
        (
            "HOME",
            "TRENDING_PERSONALIZED",
            PageContext("HOME", recent_clicks=CLICKS),
            {**BASE, "context": CLICK_OBJECTS},
        ),
        ("HOME", "TRENDING_PERSONALIZED", PageContext("HOME"), BASE),
        (
            "CHECKOUT",
            "TRENDING_PERSONALIZED",
            PageContext("CHECKOUT", recent_clicks=("c1", "c1")),
            {**BASE, "context": {"recentObjects": [products({"id": "c1"})]}},
        ),
        # PRODUCT + OTHER_ALSO_VIEWED / SIMILAR / BOUGHT_TOGETHER_PDP / CUSTOM_LOGIC
        *[
            ("PRODUCT", logic, PRODUCT_PAGE, {**BASE, **PDP_EDIT})
            for logic in ("OTHER_ALSO_VIEWED", "SIMILAR", "BOUGHT_TOGETHER_PDP", "CUSTOM_LOGIC")
        ],
        # JSv2: excludeIds only when the group id is known
        (
            "PRODUCT",
            "SIMILAR",
            PageContext("PRODUCT", product_id="p1"),
            {**BASE, "context": {"recentObjects": [products({"id": "p1"})]}},
        ),
        # PRODUCT + VISUALLY_SIMILAR: JSv2's source records [{itemGroupId}, {id}], each if known;
        # excluded by group id, else by id
        (
            "PRODUCT",
            "VISUALLY_SIMILAR",
            PRODUCT_PAGE,
            {
                **BASE,
                "context": {"sourceObjects": [products({"itemGroupId": "g1"}, {"id": "p1"})]},
                "excludeIds": [group("g1")],
            },
        ),
        (
            "PRODUCT",
            "VISUALLY_SIMILAR",
            PageContext("PRODUCT", product_id="p1"),
            {
                **BASE,
                "context": {"sourceObjects": [products({"id": "p1"})]},
                "excludeIds": [{"key": "id", "value": "p1"}],
            },
        ),
        # CHECKOUT + BOUGHT_TOGETHER / CUSTOM_LOGIC
        *[
            (
                "CHECKOUT",
                logic,
                PageContext("CHECKOUT", cart=CART),
                {
                    **BASE,
                    "context": {"recentObjects": [products({"id": "p1"}, {"id": "p2"})]},
                    "excludeIds": [group("g1"), group("g2")],
                },
            )
            for logic in ("BOUGHT_TOGETHER", "CUSTOM_LOGIC")
        ],
        # JSv2: every cart line's product; only the groups that exist are excluded
        (
            "CHECKOUT",
            "BOUGHT_TOGETHER",
            PageContext("CHECKOUT", cart=(("p1", "g1"), ("p3", None), ("p4", "g4"))),
            {
                **BASE,
                "context": {"recentObjects": [products({"id": "p1"}, {"id": "p3"}, {"id": "p4"})]},
                "excludeIds": [group("g1"), group("g4")],
            },
        ),
        (
            "CHECKOUT",
            "BOUGHT_TOGETHER",
            PageContext("CHECKOUT", cart=(("p3", None),)),
            {**BASE, "context": {"recentObjects": [products({"id": "p3"})]}},
        ),
        # HAND_PICKED, and logics without a row on that page: no change
        *[
            (page_type, "HAND_PICKED", page, BASE)
            for page_type, page in (
                ("HOME", PageContext("HOME", recently_viewed=RECENT, recent_clicks=CLICKS)),
                ("CATEGORY", PageContext("CATEGORY", category_path=PATH)),
                ("PRODUCT", PRODUCT_PAGE),
                ("CHECKOUT", PageContext("CHECKOUT", cart=CART)),
            )
        ],
        ("HOME", "TRENDING", PageContext("HOME", recently_viewed=RECENT), BASE),
        ("HOME", "NEWEST_ARRIVALS", PageContext("HOME"), BASE),
        ("HOME", "CUSTOM_LOGIC", PageContext("HOME"), BASE),
        ("PRODUCT", "TRENDING", PRODUCT_PAGE, BASE),
        ("CHECKOUT", "SIMILAR", PageContext("CHECKOUT", cart=CART), BASE),
        ("CATEGORY", "SIMILAR", PageContext("CATEGORY", category_path=PATH), BASE),
        ("HOME", "SOME_FUTURE_LOGIC", PageContext("HOME"), BASE),
    ],
)
def test_each_row_of_the_table(page_type, logic, page, expected):
    body = build_search(payload(), meta(page_type, logic), page, API_KEY)
    assert settings_of(body) == expected


@pytest.mark.parametrize(
    "page_type, logic, page",
    [
        # JSv2 sends an empty category path off a category page; cleaning removes it
        *[
            ("CATEGORY", logic, page)
            for logic in ("TRENDING", "TRENDING_PERSONALIZED", "NEWEST_ARRIVALS", "CUSTOM_LOGIC")
            for page in (PageContext("CATEGORY"), PageContext("HOME"))
        ],
        *[
            ("PRODUCT", logic, PageContext("PRODUCT", item_group_id=None))
            for logic in (
                "OTHER_ALSO_VIEWED",
                "SIMILAR",
                "BOUGHT_TOGETHER_PDP",
                "CUSTOM_LOGIC",
                "VISUALLY_SIMILAR",
            )
        ],
        ("PRODUCT", "SIMILAR", PageContext("PRODUCT", product_id="")),
        ("PRODUCT", "SIMILAR", PageContext("HOME", product_id="p1")),  # not a product page
        ("CHECKOUT", "BOUGHT_TOGETHER", PageContext("CHECKOUT")),
        ("CHECKOUT", "CUSTOM_LOGIC", PageContext("CHECKOUT")),
        ("CHECKOUT", "BOUGHT_TOGETHER", PageContext("CHECKOUT", cart=(("", "g1"),))),
    ],
)
def test_a_missing_input_searches_the_payload_unedited(page_type, logic, page):
    """JSv2 skips an edit whose input the page lacks, and searches the merchant's payload."""
    body = build_search(payload(), meta(page_type, logic), page, API_KEY)
    assert settings_of(body) == BASE


@pytest.mark.parametrize(
    "page",
    [
        PageContext("HOME"),
        PageContext("CATEGORY", category_path=PATH, recent_clicks=CLICKS),
        PageContext("PRODUCT", product_id="p1", recently_viewed=("", "")),
        PageContext("CHECKOUT", cart=CART),
    ],
)
def test_recently_viewed_without_ids_means_no_search(page):
    assert build_search(payload(), meta(page.page_type, "RECENTLY_VIEWED"), page, API_KEY) is None


@pytest.mark.parametrize(
    "recent, max_products, expected_ids",
    [
        # JSv2 uses at most maxProducts of the (up to 20) kept ids
        (tuple(f"r{i}" for i in range(20)), 12, [f"r{i}" for i in range(12)]),
        (tuple(f"r{i}" for i in range(20)), 20, [f"r{i}" for i in range(20)]),
        (tuple(f"r{i}" for i in range(15)), 4, ["r0", "r1", "r2", "r3"]),
        (("r2", "r1", "r2", "r0", "r1"), 12, ["r2", "r1", "r0"]),  # first (newest) occurrence wins
    ],
)
def test_recently_viewed_ids_are_capped_and_unique(recent, max_products, expected_ids):
    body = build_search(
        payload(),
        meta("HOME", "RECENTLY_VIEWED", maxProducts=max_products),
        PageContext("HOME", recently_viewed=recent),
        API_KEY,
    )
    settings = settings_of(body)
    assert settings["customANDQuery"] == "id:(" + " OR ".join(f'"{i}"' for i in expected_ids) + ")"
    assert [t["value"] for t in settings["topIds"]] == expected_ids
    assert settings["limit"] == len(expected_ids)


@pytest.mark.parametrize(
    "payload_limit, max_products",
    [
        (20, 12),
        (5, 12),
        (20, None),
        (None, 7),
        ("10", 7),
    ],
)
@pytest.mark.parametrize(
    "page, logic",
    [
        (PageContext("HOME"), "TRENDING"),
        (PageContext("PRODUCT", product_id="p1", item_group_id="g1"), "SIMILAR"),
        (PageContext("CHECKOUT", cart=CART), "BOUGHT_TOGETHER"),
    ],
)
def test_limit_is_the_payloads_own_outside_recently_viewed(
    payload_limit, max_products, page, logic
):
    """JSv2 sets ``limit`` only for RECENTLY_VIEWED, and never caps it at maxProducts."""
    settings = {**BASE, "limit": payload_limit}
    if payload_limit is None:
        del settings["limit"]
    extra = {} if max_products is None else {"maxProducts": max_products}
    body = build_search(payload(settings), meta(page.page_type, logic, **extra), page, API_KEY)
    assert settings_of(body).get("limit") == payload_limit


@pytest.mark.parametrize(
    "page_type, logic, page, baked, expected",
    [
        # keys we do not set are kept; the scalar we set wins
        (
            "CATEGORY",
            "TRENDING",
            PageContext("CATEGORY", category_path=PATH),
            {"query": {"term": "tent", "categoryPath": "Old;Path"}, "sort": "PRICE_ASC"},
            {"query": {"term": "tent", "categoryPath": "Outdoor;Tents"}, "sort": "PRICE_ASC"},
        ),
        (
            "HOME",
            "RECENTLY_VIEWED",
            PageContext("HOME", recently_viewed=("r1",)),
            {"customANDQuery": "inStock:yes", "topIds": [{"key": "id", "value": "pin"}]},
            {"customANDQuery": 'id:("r1")', "topIds": [{"key": "id", "value": "r1"}], "limit": 1},
        ),
        (
            "HOME",
            "TRENDING",
            PageContext("HOME"),
            {"customANDQuery": "inStock:yes"},
            {"customANDQuery": "inStock:yes"},
        ),
        # JSv2: the merchant's recent/source objects, then ours; our excludeIds, then theirs
        (
            "PRODUCT",
            "SIMILAR",
            PRODUCT_PAGE,
            {
                "excludeIds": [{"key": "id", "value": "x"}, group("g1")],
                "context": {"recentObjects": [products({"id": "m1"})], "sourceObjects": ["kept"]},
            },
            {
                "excludeIds": [group("g1"), {"key": "id", "value": "x"}, group("g1")],
                "context": {
                    "recentObjects": [products({"id": "m1"}), products({"id": "p1"})],
                    "sourceObjects": ["kept"],
                },
            },
        ),
        (
            "HOME",
            "TRENDING_PERSONALIZED",
            PageContext("HOME", recent_clicks=("c1",)),
            {"context": {"recentObjects": [products({"id": "m1"})]}},
            {"context": {"recentObjects": [products({"id": "m1"}), products({"id": "c1"})]}},
        ),
        # the merchant's settings go through JSv2's cleaning too
        (
            "HOME",
            "TRENDING_PERSONALIZED",
            PageContext("HOME"),
            {"personalisation": {"enablePersonalisation": False, "fields": ["brand"]}},
            {"personalisation": {"fields": ["brand"]}},
        ),
    ],
)
def test_settings_baked_into_the_payload_are_merged(page_type, logic, page, baked, expected):
    body = build_search(payload({"limit": 12, **baked}), meta(page_type, logic), page, API_KEY)
    assert settings_of(body) == {"limit": 12, **expected}


def test_a_query_without_settings_gets_them():
    body = build_search(payload(None), meta("PRODUCT", "SIMILAR"), PRODUCT_PAGE, API_KEY)
    assert settings_of(body) == PDP_EDIT


def test_body_names_our_api_key_and_passes_other_queries_through():
    other = {"id": "merchantExtra", "typeOfRequest": "SEARCH", "settings": {"limit": 99}}
    body = build_search(payload(other=[other]), meta("PRODUCT", "SIMILAR"), PRODUCT_PAGE, API_KEY)
    assert body is not None
    assert body["context"] == {"apiKeys": [API_KEY]}
    assert body["recordQueries"][0] == other
    assert body["recordQueries"][1]["typeOfRequest"] == "RECS_TRENDING"
    assert set(body) == {"context", "recordQueries"}


def test_inputs_are_not_mutated():
    baked = {
        **BASE,
        "excludeIds": [{"key": "id", "value": "x"}],
        "context": {"recentObjects": [products({"id": "m1"})]},
    }
    raw = payload(baked)
    metadata = meta("PRODUCT", "SIMILAR", maxProducts=4)
    before = copy.deepcopy(metadata)
    first = build_search(raw, metadata, PRODUCT_PAGE, API_KEY)
    second = build_search(raw, metadata, PRODUCT_PAGE, API_KEY)
    assert metadata == before
    assert first == second
    assert json.loads(raw)["recordQueries"][0]["settings"] == baked


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        "",
        "not json",
        "[]",
        '"text"',
        '{"recordQueries": {}}',
        '{"recordQueries": [1]}',
        '{"context": {}}',
        json.dumps({"recordQueries": [{"id": "other"}]}),
        json.dumps({"recordQueries": [{"id": "klevuRECSItemList"}, {"id": "klevuRECSItemList"}]}),
        json.dumps({"recordQueries": [{"id": "klevuRECSItemList", "settings": []}]}),
    ],
)
def test_a_malformed_payload_is_a_clear_error(raw):
    with pytest.raises(MalformedPayload):
        build_search(raw, meta("HOME", "TRENDING"), PageContext("HOME"), API_KEY)


def test_a_banner_on_another_page_type_follows_its_own_type_as_in_jsv2():
    """JSv2 never compares the banner's pageType with the page: its own type's rules apply."""
    home_banner_on_category = build_search(
        payload(), meta("HOME", "TRENDING"), PageContext("CATEGORY", category_path=PATH), API_KEY
    )
    assert settings_of(home_banner_on_category) == BASE  # no category path: a HOME rule
    category_banner_on_product = build_search(
        payload(), meta("CATEGORY", "TRENDING"), PageContext("PRODUCT", category_path=PATH), API_KEY
    )
    assert settings_of(category_banner_on_product) == BASE  # JSv2: "" off a category page
    product_banner_on_home = build_search(
        payload(), meta("PRODUCT", "SIMILAR"), PageContext("HOME"), API_KEY
    )
    assert settings_of(product_banner_on_home) == BASE  # no product: the payload as it is


def test_trending_personalized_uses_up_to_max_products_clicks():
    clicks = tuple(f"c{i}" for i in range(20))
    body = build_search(
        payload(),
        meta("HOME", "TRENDING_PERSONALIZED", maxProducts=15),
        PageContext("HOME", recent_clicks=clicks),
        API_KEY,
    )
    [recent] = settings_of(body)["context"]["recentObjects"]
    assert [r["id"] for r in recent["records"]] == list(clicks[:15])


def test_quotes_in_recently_viewed_ids_are_escaped_not_dropped():
    ids = ('a"b', "c\\d", "e.f/g: h")
    body = build_search(
        payload(),
        meta("HOME", "RECENTLY_VIEWED"),
        PageContext("HOME", recently_viewed=ids),
        API_KEY,
    )
    settings = settings_of(body)
    assert settings["customANDQuery"] == 'id:("a\\"b" OR "c\\\\d" OR "e.f/g: h")'
    assert [t["value"] for t in settings["topIds"]] == list(ids)


@pytest.mark.parametrize(
    "dirty, cleaned",
    [
        ({"a": None, "b": False, "c": 0, "d": "", "e": {}, "f": [], "g": 0.0}, {}),
        ({"keep": True, "n": 1, "s": "x", "neg": -1}, {"keep": True, "n": 1, "s": "x", "neg": -1}),
        ({"a": {"b": {"c": None}}, "d": [None, 0, "", {}, [], "x", 2]}, {"d": ["x", 2]}),
        ([{"a": 0}, {"a": 1}], [{"a": 1}]),
        ({"offset": 0, "limit": 12}, {"limit": 12}),
    ],
)
def test_the_body_is_cleaned_as_jsv2_cleans_it(dirty, cleaned):
    """JSv2's klevu.clean, applied to the whole request before it is posted."""
    assert clean(dirty) == cleaned
    body = build_search(
        payload({**BASE, "x": dirty}), meta("HOME", "TRENDING"), PageContext("HOME"), API_KEY
    )
    assert settings_of(body).get("x") == (cleaned or None)


@pytest.mark.parametrize(
    "metadata, expected",
    [
        ({"pageType": "HOME", "logic": "TRENDING"}, RecsMetadata("HOME", "TRENDING", 12, 4)),
        (
            {"pageType": "HOME", "logic": "TRENDING", "maxProducts": 6, "productThreshold": 0},
            RecsMetadata("HOME", "TRENDING", 6, 0),
        ),
        (
            {"pageType": None, "logic": None, "maxProducts": None, "productThreshold": None},
            RecsMetadata("", "", 12, 4),
        ),
        ({"maxProducts": 0, "productThreshold": -1}, RecsMetadata("", "", 12, 4)),
        ({"maxProducts": 2.5, "productThreshold": "3"}, RecsMetadata("", "", 12, 4)),
    ],
)
def test_metadata_defaults(metadata, expected):
    assert RecsMetadata.from_config(metadata) == expected
