"""The klevu_recent_clicks cookie codec (§6): newest first, unique, at most 20, never raises.

Each id is stored as the unpadded base64url of its UTF-8, so ids with ".", "/", ":" or spaces
survive the round trip (JSv2 stores base64 too).
"""

import base64
import re

import pytest
from hypothesis import given, strategies as st

from storefront.klevu.analytics.recently_viewed import MAX_KEPT, format_ids, parse, push

IDS = tuple(f"p{i}" for i in range(25))


def enc(product_id: str) -> str:
    return base64.urlsafe_b64encode(product_id.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "ids",
    [
        ("10003", "10001", "10002"),
        ("abc_DEF-9",),
        ("sku.10/blue: large", 'say "hi"', "back\\slash", "é", "x" * 64),
    ],
)
def test_any_catalogue_id_survives_the_round_trip(ids):
    value = format_ids(ids)
    assert value == ".".join(enc(i) for i in ids)
    assert parse(value) == ids


@pytest.mark.parametrize(
    "cookie, expected",
    [
        (".".join(enc(i) for i in "abacb"), ("a", "b", "c")),  # first (newest) occurrence wins
        (".".join(enc(i) for i in IDS), IDS[:20]),  # at most 20
        # malformed: no history at all
        (enc("x" * 65), ()),  # too long an id
        (enc("a\nb"), ()),  # a control character
        ("10003.10001", ()),  # the plain ids of an older format
        ("", ()),
        (f"{enc('a')}..{enc('b')}", ()),
        (f".{enc('a')}", ()),
        (f"{enc('a')}.", ()),
        (f"{enc('a')}.a b", ()),
        (enc("a") + "=", ()),  # padding is not written
        ("_w", ()),  # not UTF-8
        ('"a.b"', ()),
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
        (("b", "a"), "with space", ("with space", "b", "a")),
        (("b", "a"), "", ("b", "a")),  # cannot be stored: list unchanged
        (("b", "a"), "x" * 65, ("b", "a")),
        (("b", "a"), "tab\there", ("b", "a")),
    ],
)
def test_push_recent(ids, product_id, expected):
    assert push(ids, product_id) == expected


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers(), st.lists(st.text())))
def test_parse_never_raises_and_keeps_its_promises(cookie):
    ids = parse(cookie)
    assert len(ids) <= MAX_KEPT
    assert len(set(ids)) == len(ids)
    assert format_ids(ids) == format_ids(parse(format_ids(ids)))


@given(st.lists(st.text(min_size=1, max_size=64), max_size=25))
def test_what_is_stored_reads_back(ids):
    """Every id without a control character is kept, newest first, unique, at most 20."""
    storable = (i for i in ids if not re.search(r"[\x00-\x1f\x7f-\x9f]", i))
    assert parse(format_ids(ids)) == tuple(dict.fromkeys(storable))[:MAX_KEPT]
