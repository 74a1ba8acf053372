"""The klevu_recent_clicks cookie codec (§6): newest first, unique, at most 20, never raises."""

import pytest
from hypothesis import given, strategies as st

from storefront.klevu.analytics.recently_viewed import MAX_KEPT, format_ids, parse, push

IDS = tuple(f"p{i}" for i in range(25))
VALID_ID = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


@pytest.mark.parametrize(
    "cookie, expected",
    [
        ("10003.10001.10002", ("10003", "10001", "10002")),
        ("abc_DEF-9", ("abc_DEF-9",)),
        ("a.b.a.c.b", ("a", "b", "c")),  # first (newest) occurrence wins
        (".".join(IDS), IDS[:20]),  # at most 20
        ("x" * 64, ("x" * 64,)),
        # malformed: no history at all
        ("x" * 65, ()),
        ("", ()),
        ("a..b", ()),
        (".a", ()),
        ("a.", ()),
        ("a b", ()),
        ("a,b", ()),
        ('"a.b"', ()),
        ("a.b\n", ()),
        ("a.é", ()),
        ("a.<script>", ()),
        (None, ()),
        (b"a.b", ()),
        (["a", "b"], ()),
        (42, ()),
    ],
)
def test_parse_recent(cookie, expected):
    assert parse(cookie) == expected


@pytest.mark.parametrize(
    "ids, product_id, expected",
    [
        ((), "10001", ("10001",)),
        (("b", "a"), "c", ("c", "b", "a")),
        (("b", "a", "c"), "a", ("a", "b", "c")),  # moved to the front, not repeated
        (("a",), "a", ("a",)),
        (IDS[:20], "new", ("new", *IDS[:19])),  # the oldest falls off
        (("b", "a"), "bad id", ("b", "a")),  # cannot be stored: list unchanged
        (("b", "a"), "", ("b", "a")),
        (("b", "a"), "x" * 65, ("b", "a")),
    ],
)
def test_push_recent(ids, product_id, expected):
    assert push(ids, product_id) == expected


@pytest.mark.parametrize(
    "ids, expected",
    [
        ((), ""),
        (("10003", "10001"), "10003.10001"),
        (("a", "a", "b"), "a.b"),
        (("a", "no;way", "b", "", None), "a.b"),  # what cannot be stored is left out
        (IDS, ".".join(IDS[:20])),
    ],
)
def test_format_recent(ids, expected):
    assert format_ids(ids) == expected


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.lists(st.text())))
def test_parse_never_raises_and_keeps_its_promises(cookie):
    ids = parse(cookie)
    assert len(ids) <= MAX_KEPT
    assert len(set(ids)) == len(ids)
    assert format_ids(ids) == format_ids(parse(format_ids(ids)))


@given(st.text(alphabet="ab.-_\n ;", max_size=80))
def test_parse_of_near_misses_never_raises(cookie):
    assert parse(format_ids(parse(cookie))) == parse(cookie)


@given(st.lists(VALID_ID, max_size=30))
def test_valid_ids_round_trip_through_the_cookie(ids):
    expected = tuple(dict.fromkeys(ids))[:MAX_KEPT]
    assert parse(format_ids(ids)) == expected


@given(st.lists(st.text(), max_size=30), st.text())
def test_push_then_store_then_read(ids, product_id):
    pushed = push(ids, product_id)
    assert parse(format_ids(pushed)) == pushed
    assert len(pushed) <= MAX_KEPT and len(set(pushed)) == len(pushed)


@given(st.lists(VALID_ID, max_size=30), VALID_ID)
def test_a_valid_product_is_always_newest(ids, product_id):
    pushed = push(parse(format_ids(ids)), product_id)
    assert pushed[0] == product_id
    assert product_id not in pushed[1:]


@given(st.lists(st.text(), max_size=30))
def test_the_cookie_value_is_cookie_safe(ids):
    assert set(format_ids(ids)) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-."
    )
