"""Search: record shape and every settings key the simulator honours (docs/klevu-wire-format.md §3).

Expectations are computed from the catalog, so they follow the data rather than restate it.
"""

import pytest

from storefront.catalog import load_catalog
from storefront.simulator import API_KEY, create_app

CATALOG = load_catalog()
PRODUCTS = CATALOG.products


def product(pid):
    return CATALOG.product(pid)


def by_popularity(products):
    return [p.id for p in sorted(products, key=lambda p: -p.popularity)]


def recent(*pids):
    return {
        "recentObjects": [
            {"typeOfRecord": "KLEVU_PRODUCT", "records": [{"id": pid} for pid in pids]}
        ]
    }


def ref(key, value):
    return {"key": key, "value": value}


# -- the answer -----------------------------------------------------------------------------
def test_record_has_klevus_shape(search):
    status, body = search("RECS_CUSTOM", customANDQuery="id:10004")
    assert status == 200 and body["meta"]["responseCode"] == 200
    [result] = body["queryResults"]
    assert result["id"] == "q" and result["filters"] == []
    assert result["meta"] | {"qTime": 0} == {
        "qTime": 0,
        "noOfResults": 1,
        "totalResultsFound": 1,
        "typeOfSearch": "WILDCARD_AND",
        "offset": 0,
        "searchedTerm": "*",
        "apiKey": API_KEY,
        "isPersonalised": False,
    }
    [record] = result["records"]
    p = product("10004")
    assert record == {
        "id": p.id,
        "itemGroupId": p.item_group_id,
        "sku": p.sku,
        "name": p.name,
        "url": "/p/10004",
        "image": "/img/p/10004.svg",
        "imageUrl": "/img/p/10004.svg",
        "imageHover": "",
        "price": p.price,
        "salePrice": p.sale_price,
        "startPrice": p.sale_price,
        "toPrice": p.sale_price,
        "basePrice": p.price,
        "currency": "EUR",
        "inStock": "yes",
        "discount": "20.0",
        "totalVariants": 2,
        "brand": p.brand,
        "category": "Outdoor;;Tents",
        "shortDesc": p.short_desc,
        "color": p.color,
        "typeOfRecord": "KLEVU_PRODUCT",
    }


def test_prices_are_strings_and_stock_is_yes_or_no(search):
    _status, body = search(limit=48)
    records = body["queryResults"][0]["records"]
    assert len(records) == len(PRODUCTS)
    assert all(isinstance(r["price"], str) and isinstance(r["salePrice"], str) for r in records)
    assert {r["inStock"] for r in records} == {"yes", "no"}


def test_shop_url_makes_links_absolute():
    client = create_app({"SIMULATOR_SHOP_URL": "http://shop.test:5000"}).test_client()
    body = client.post(
        "/cs/v2/search",
        json={
            "context": {"apiKeys": [API_KEY]},
            "recordQueries": [
                {"id": "q", "typeOfRequest": "RECS_TRENDING", "settings": {"limit": 1}}
            ],
        },
    ).get_json()
    [record] = body["queryResults"][0]["records"]
    assert record["url"] == f"http://shop.test:5000/p/{record['id']}"
    image = f"http://shop.test:5000/img/p/{record['id']}.svg"
    assert record["image"] == record["imageUrl"] == image


def test_each_record_query_gets_its_own_result(client):
    body = client.post(
        "/cs/v2/search",
        json={
            "context": {"apiKeys": [API_KEY]},
            "recordQueries": [
                {"id": "a", "typeOfRequest": "RECS_TRENDING", "settings": {"limit": 2}},
                {"id": "b", "typeOfRequest": "RECS_NEW_ARRIVALS", "settings": {"limit": 3}},
            ],
        },
    ).get_json()
    assert [(r["id"], len(r["records"])) for r in body["queryResults"]] == [("a", 2), ("b", 3)]


# -- request types --------------------------------------------------------------------------
def test_trending_is_by_popularity(ids):
    assert ids("RECS_TRENDING", limit=10) == by_popularity(PRODUCTS)[:10]


def test_new_arrivals_are_newest_first(ids):
    got = ids("RECS_NEW_ARRIVALS", limit=10)
    added = [product(pid).added for pid in got]
    assert added == sorted(added, reverse=True)
    assert added[0] == max(p.added for p in PRODUCTS)


@pytest.mark.parametrize("request_type", ["RECS_ALSO_VIEWED", "RECS_SIMILAR"])
def test_also_viewed_and_similar_start_with_the_context_products_category(ids, request_type):
    source = product("10020")
    same_category = [p for p in CATALOG.in_category(source.category) if p.id != source.id]
    got = ids(request_type, limit=len(same_category) + 2, context=recent(source.id))
    assert source.id not in got
    assert set(got[: len(same_category)]) == {p.id for p in same_category}
    assert all(product(pid).category.path[0] == "Clothing" for pid in got)


def test_similar_prefers_a_similar_price(ids):
    source = product("10003")
    got = ids("RECS_SIMILAR", limit=3, context=recent(source.id))
    gaps = [abs(float(product(pid).sale_price) - float(source.sale_price)) for pid in got]
    assert gaps == sorted(gaps)


def test_also_bought_is_complementary(ids):
    source = product("10003")  # a tent: backpacks go with it, other tents do not
    got = ids("RECS_ALSO_BOUGHT", limit=len(PRODUCTS), context=recent(source.id))
    first = product(got[0])
    assert first.category.path == ("Outdoor", "Backpacks")
    tents = [i for i, pid in enumerate(got) if product(pid).category == source.category]
    assert tents and min(tents) > len(got) - len(tents) - 1  # tents come last


def test_visually_similar_is_the_source_colour_first(ids):
    source = product("10003")
    same_colour = [p for p in PRODUCTS if p.color == source.color and p.id != source.id]
    context = {
        "sourceObjects": [
            {
                "typeOfRecord": "KLEVU_PRODUCT",
                "records": [{"id": source.id}, {"itemGroupId": source.item_group_id}],
            }
        ]
    }
    got = ids("RECS_SIMILAR_IMAGES", limit=len(same_colour), context=context)
    assert {product(pid).color for pid in got} == {source.color}


def test_related_requests_without_context_fall_back_to_popularity(ids):
    assert ids("RECS_ALSO_VIEWED", limit=5) == by_popularity(PRODUCTS)[:5]


def test_search_matches_the_term(search):
    _status, body = search("SEARCH", query={"term": "tent"}, limit=48)
    result = body["queryResults"][0]
    assert {r["id"] for r in result["records"]} == {
        p.id
        for p in PRODUCTS
        if "tent" in f"{p.name} {p.brand} {p.category.path} {p.short_desc} {p.color}".lower()
    }
    assert result["meta"]["typeOfSearch"] == "AND" and result["meta"]["searchedTerm"] == "tent"


def test_catnav_lists_a_category(ids):
    got = ids("CATNAV", query={"categoryPath": "Home;Lighting"}, limit=48)
    assert got == by_popularity(p for p in PRODUCTS if p.category.slug == "home-lighting")


# -- settings keys --------------------------------------------------------------------------
def test_limit_and_offset_page_through_the_ranking(ids, search):
    everything = ids(limit=48)
    assert ids(limit=4, offset=6) == everything[6:10]
    _status, body = search(limit=4, offset=6)
    assert body["queryResults"][0]["meta"]["totalResultsFound"] == len(PRODUCTS)
    assert body["queryResults"][0]["meta"]["offset"] == 6


@pytest.mark.parametrize(
    "path, slugs",
    [
        ("Outdoor", {"outdoor-tents", "outdoor-backpacks"}),
        ("Outdoor;Tents", {"outdoor-tents"}),
        ("Outdoor;Tent", set()),  # a prefix of path elements, not of characters
    ],
)
def test_category_path_matches_a_path_prefix(ids, path, slugs):
    got = ids(query={"term": "*", "categoryPath": path}, limit=48)
    assert {product(pid).category.slug for pid in got} == slugs


def test_top_ids_come_first_in_their_order(ids):
    got = ids(limit=5, topIds=[ref("id", "10016"), ref("id", "10034")])
    assert got[:2] == ["10016", "10034"]
    assert got[2:] == [pid for pid in by_popularity(PRODUCTS) if pid not in got[:2]][:3]


def test_top_ids_only_reorder_matching_records(ids):
    got = ids(limit=48, query={"categoryPath": "Home"}, topIds=[ref("id", "10001")])
    assert "10001" not in got


def test_include_ids_adds_records_the_query_did_not_match(ids):
    got = ids(limit=48, query={"categoryPath": "Home"}, includeIds=[ref("id", "10001")])
    assert "10001" in got and len(got) == 17


@pytest.mark.parametrize(
    "key, value, gone", [("id", "10001", {"10001"}), ("itemGroupId", "50001", {"10001", "10002"})]
)
def test_exclude_ids_by_id_or_group(ids, key, value, gone):
    got = ids(limit=48, excludeIds=[ref(key, value)])
    assert set(got) == {p.id for p in PRODUCTS} - gone


@pytest.mark.parametrize(
    "query, expected",
    [
        ("id:(10001 OR 10005)", lambda p: p.id in ("10001", "10005")),
        ("itemGroupId:50001", lambda p: p.item_group_id == "50001"),
        ("onSale:true", lambda p: p.on_sale),
        ("onSale:false AND inStock:no", lambda p: not p.on_sale and not p.in_stock),
        ("category:(Home)", lambda p: p.category.path[0] == "Home"),
        ("category:(Kitchen OR Tents)", lambda p: p.category.path[1] in ("Kitchen", "Tents")),
        ('brand:"Wool & Co"', lambda p: p.brand == "Wool & Co"),
        (
            "-color:(forest OR navy) AND category:Outdoor",
            lambda p: p.color not in ("forest", "navy") and p.category.path[0] == "Outdoor",
        ),
    ],
)
def test_custom_and_query(ids, query, expected):
    got = ids("RECS_CUSTOM", customANDQuery=query, limit=48)
    assert set(got) == {p.id for p in PRODUCTS if expected(p)}
    assert got


@pytest.mark.parametrize(
    "sort, key, reverse",
    [
        ("PRICE_ASC", lambda p: float(p.sale_price), False),
        ("PRICE_DESC", lambda p: float(p.sale_price), True),
        ("NAME_ASC", lambda p: p.name.casefold(), False),
        ("NEW_ARRIVAL_DESC", lambda p: p.added, True),
    ],
)
def test_sort(ids, sort, key, reverse):
    got = [product(pid) for pid in ids(sort=sort, limit=48)]
    assert got == sorted(got, key=key, reverse=reverse)


def test_sort_other_than_relevance_ignores_top_ids(ids):
    got = ids(sort="PRICE_DESC", limit=1, topIds=[ref("id", "10016")])
    assert got != ["10016"]


def test_personalisation_boosts_products_near_recent_ones(search):
    _plain_status, plain = search(limit=8)
    _status, body = search(
        limit=8, personalisation={"enablePersonalisation": True}, context=recent("10033")
    )
    result = body["queryResults"][0]
    assert result["meta"]["isPersonalised"] is True
    assert plain["queryResults"][0]["meta"]["isPersonalised"] is False
    kitchen = [p.id for p in PRODUCTS if p.category.slug == "home-kitchen"]
    assert [r["id"] for r in result["records"]] == [
        pid for pid in by_popularity(PRODUCTS) if pid in kitchen
    ][:8]


def test_personalisation_needs_recent_objects(search):
    _status, body = search(personalisation={"enablePersonalisation": True})
    assert body["queryResults"][0]["meta"]["isPersonalised"] is False


def test_recent_objects_may_sit_in_the_query_settings(ids):
    got = ids(limit=3, personalisation={"enablePersonalisation": True}, context=recent("10033"))
    assert all(product(pid).category.slug == "home-kitchen" for pid in got)


def test_type_of_records_without_products_finds_nothing(ids):
    assert ids(typeOfRecords=["KLEVU_CMS"]) == []


def test_fields_trim_the_records(search):
    _status, body = search(limit=2, fields=["name", "price"])
    assert [set(r) for r in body["queryResults"][0]["records"]] == [{"id", "name", "price"}] * 2


def test_unknown_settings_keys_are_ignored(ids):
    assert ids(limit=3, groupBy="id", searchPrefs=["excludeDescription"], whatever={"x": 1}) == ids(
        limit=3
    )


def test_default_limit_is_small(ids):
    assert len(ids()) == 5


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {"limit": "12"},
        {"limit": -1},
        {"offset": 1.5},
        {"query": "tents"},
        {"query": {"categoryPath": 3}},
        {"sort": "CHEAPEST"},
        {"customANDQuery": "id:(1 OR"},
        {"customANDQuery": "size:XL"},
        {"customANDQuery": "id 10001"},
        {"topIds": ["10001"]},
        {"excludeIds": [{"key": "sku", "value": "x"}]},
        {"context": {"recentObjects": {"id": "1"}}},
        {"fields": "name"},
        {"typeOfRecords": "KLEVU_PRODUCT"},
        {"personalisation": True},
    ],
)
def test_malformed_settings_are_400_with_meta_error(search, settings):
    status, body = search(**settings)
    assert status == 400
    assert body["meta"]["responseCode"] == 400 and body["meta"]["error"]


TRENDING = {"id": "q", "typeOfRequest": "RECS_TRENDING"}
CONTEXT = {"apiKeys": [API_KEY]}


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"context": CONTEXT},
        {"context": CONTEXT, "recordQueries": []},
        {"context": {"apiKeys": API_KEY}, "recordQueries": [TRENDING]},
        {"context": CONTEXT, "recordQueries": [{"typeOfRequest": "RECS_TRENDING"}]},
        {"context": CONTEXT, "recordQueries": [{**TRENDING, "typeOfRequest": "RECS_MAGIC"}]},
        {"context": CONTEXT, "recordQueries": [{**TRENDING, "settings": []}]},
    ],
)
def test_malformed_requests_are_400_with_meta_error(client, body):
    response = client.post("/cs/v2/search", json=body)
    assert response.status_code == 400
    assert response.get_json()["meta"]["error"]


def test_unknown_api_key_is_404(client):
    response = client.post(
        "/cs/v2/search", json={"context": {"apiKeys": ["klevu-other"]}, "recordQueries": [TRENDING]}
    )
    assert response.status_code == 404
    assert response.get_json()["meta"]["error"]


def test_searches_are_journaled(client, ids):
    ids(limit=2)
    call = client.get("/_sim/state").get_json()["recent"][0]
    assert call["kind"] == "search"
    [query] = call["detail"]["queries"]
    assert query["typeOfRequest"] == "RECS_TRENDING" and len(query["ids"]) == 2
