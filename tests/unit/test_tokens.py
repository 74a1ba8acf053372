"""Banner tokens: round trip, size, and nothing but BadToken for anything that is not ours."""

import base64
import hashlib
import json
import re
import time
import zlib

import itsdangerous
import pytest
from hypothesis import given, strategies as st

from storefront.catalog import load_catalog
from storefront.klevu.analytics import tokens
from storefront.klevu.analytics.events import BannerItem, BannerView
from storefront.klevu.analytics.tokens import BadToken, click_id, impression_id, read_token
from tests.helpers import banner_tokens

KEY = "test-secret-key"
PAGE_VIEW = "3f9d2c4e8a7b4c1d9e0f1a2b3c4d5e6f"
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def catalog_banner(count=12):
    records = [
        {
            "id": p.id,
            "itemGroupId": p.item_group_id,
            "name": p.name,
            "salePrice": p.sale_price,
            "currency": p.currency,
            "brand": p.brand,
            "category": ";".join(p.category.path),
        }
        for p in load_catalog().products[:count]
    ]
    metadata = {
        "title": "Picked for our VIPs",
        "pageType": "HOME",
        "logic": "TRENDING_PERSONALIZED",
        "spotKey": "spot-home-1",
        "spotName": "Home spot 1",
        "segmentKey": "seg_vip",
        "segmentName": "VIP customers",
    }
    return BannerView.from_config("klevu-1234567890123", "k-home-picks", metadata, records)


def issue_token(key, page_view, banner):
    return banner_tokens(key, page_view, banner)[0]


def signed(payload, page_view=PAGE_VIEW):
    """A token of ours whose banner is ``payload``, any JSON: sealed and signed as a page's."""
    text = base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode()
    sealed = tokens.Sealed(BANNER, text.rstrip("="), tokens._key(text.rstrip("=")))
    return tokens.issue_tokens(KEY, page_view, sealed)[0]


BANNER = catalog_banner()
TOKEN = issue_token(KEY, PAGE_VIEW, BANNER)


def test_round_trip():
    token = issue_token(KEY, PAGE_VIEW, BANNER)  # fresh: TOKEN was issued at collection time
    assert read_token(KEY, token, max_age_s=60, api_key=BANNER.api_key) == (PAGE_VIEW, BANNER)


def test_page_views_of_one_banner_get_their_own_tokens():
    """The banner is sealed once; each page view's id is still in its token."""
    first, second = (issue_token(KEY, page_view, BANNER) for page_view in ("pv-1", "pv-2"))
    assert first != second
    assert read_token(KEY, first, max_age_s=60, api_key=BANNER.api_key) == ("pv-1", BANNER)
    assert read_token(KEY, second, max_age_s=60, api_key=BANNER.api_key) == ("pv-2", BANNER)
    other = catalog_banner(3)
    assert read_token(
        KEY, issue_token(KEY, "pv-1", other), max_age_s=60, api_key=BANNER.api_key
    ) == ("pv-1", other)


def test_the_tokens_are_signed_exactly_as_itsdangerous_signs(monkeypatch):
    """The signer keeps its HMAC pads and makes a second's timestamp text once; its output
    must stay the library's, second after second (both read the clock through ``time.time``)."""
    library = itsdangerous.TimestampSigner(KEY, salt=tokens.SALT, digest_method=hashlib.sha256)
    value = f"{tokens.seal(BANNER).key}.{PAGE_VIEW}"
    for now in (1_800_000_000, 1_800_000_000, 1_800_000_001, 2**40 + 255, 1):
        monkeypatch.setattr(time, "time", lambda t=now: t + 0.5)
        assert tokens._signer(KEY).sign(value) == library.sign(value)
        assert tokens._signer(KEY).sign(value.encode()) == library.sign(value)
    assert library.unsign(TOKEN.partition(".")[2]).decode() == value


def test_a_twelve_product_banner_token_is_compact():
    assert len(BANNER.items) == 12
    assert len(TOKEN) < 1024


@pytest.mark.parametrize(
    "token, key",
    [
        (TOKEN, "another-key"),
        (TOKEN[:-1], KEY),
        (TOKEN + "A", KEY),
        (TOKEN.replace(".", "", 1), KEY),  # the banner ran into its signature
        (TOKEN.partition(".")[2], KEY),  # the signature alone: a click link's token
        ("", KEY),
        (".", KEY),
        ("a.b.c", KEY),
        ("x" * (tokens.MAX_TOKEN_CHARS + 1), KEY),
        (TOKEN + " ", KEY),
        (None, KEY),
        (b"bytes", KEY),
        # the same key signing something else: a Flask session cookie has its own salt
        (itsdangerous.URLSafeTimedSerializer(KEY, salt="cookie-session").dumps([PAGE_VIEW]), KEY),
    ],
)
def test_tampered_or_foreign_tokens_are_bad(token, key):
    with pytest.raises(BadToken):
        read_token(key, token, max_age_s=60, api_key=BANNER.api_key)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"page_view": PAGE_VIEW},
        ["k", "r", "HOME", "t", "l", "", "", "", "", []],  # a field short
        ["r", "HOME", "t", "l", "", "", "", "", "", "", [["1", "n"]]],  # short item
        ["r", "HOME", "t", "l", "", "", "", "", "", "", [[1, "", "", "", "", "", "", ""]]],
        ["r", "HOME", "t", "l", "", "", "", "", "", 5, [["1", "", "", "", "", "", "", ""]]],
        ["r", "HOME", "t", "l", "", "", "", "", "", "", ["1"]],
        ["r", "HOME", "t", "l", "", "", "", "", "", "", [["", "", "", "", "", "", "", ""]]],
    ],
)
def test_a_signed_payload_of_the_wrong_layout_is_bad(payload):
    with pytest.raises(BadToken):
        read_token(KEY, signed(payload), max_age_s=60, api_key=BANNER.api_key)


def test_the_layout_those_payloads_break_is_the_real_one():
    """The case above would pass on any payload if ``signed`` made unreadable tokens."""
    good = ["r", "HOME", "t", "l", "", "", "", "", "", "", [["1", "", "", "", "", "", "", ""]]]
    assert read_token(KEY, signed(good), 60, api_key="k")[1].items[0].id == "1"


def test_a_banner_that_inflates_past_the_bound_is_bad():
    with pytest.raises(BadToken, match="unreadable"):
        read_token(KEY, signed(["x" * tokens.MAX_BANNER_BYTES]), 60, api_key="k")


@pytest.mark.parametrize("shift_s, max_age_s", [(61, 60), (3600, 60), (-120, 60)])
def test_expired_or_future_tokens_are_bad(monkeypatch, shift_s, max_age_s):
    token = issue_token(KEY, PAGE_VIEW, BANNER)
    now = itsdangerous.timed.time.time()
    monkeypatch.setattr(
        itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(now + shift_s)
    )
    with pytest.raises(BadToken):
        read_token(KEY, token, max_age_s=max_age_s, api_key=BANNER.api_key)


@pytest.mark.parametrize("page_view", ["", "a.b", "a&b", "x" * 65])
def test_a_page_view_id_that_links_could_not_carry_is_refused(page_view):
    with pytest.raises(ValueError, match="page view id"):
        issue_token(KEY, page_view, BANNER)


@pytest.mark.parametrize("key", ["", b"", None])
def test_an_empty_secret_key_is_a_configuration_error(key):
    with pytest.raises(ValueError, match="SECRET_KEY"):
        issue_token(key, PAGE_VIEW, BANNER)


@given(st.text())
def test_arbitrary_text_is_only_ever_a_bad_token(text):
    with pytest.raises(BadToken):
        read_token(KEY, text, max_age_s=60, api_key=BANNER.api_key)


@given(st.text(alphabet=TOKEN_ALPHABET, max_size=400))
def test_arbitrary_token_shaped_text_is_only_ever_a_bad_token(text):
    with pytest.raises(BadToken):
        read_token(KEY, text, max_age_s=60, api_key=BANNER.api_key)


@given(st.data())
def test_any_single_edit_of_a_real_token_is_refused_or_changes_nothing(data):
    """base64 ignores the spare low bits of a last character, so a few edits of the signature's
    last character decode to the very same token: those may read, as the original."""
    position = data.draw(st.integers(0, len(TOKEN) - 1))
    char = data.draw(st.sampled_from(TOKEN_ALPHABET).filter(lambda c: c != TOKEN[position]))
    edited = data.draw(
        st.sampled_from(
            [
                TOKEN[:position] + char + TOKEN[position + 1 :],  # replace
                TOKEN[:position] + TOKEN[position + 1 :],  # delete
                TOKEN[:position] + char + TOKEN[position:],  # insert
            ]
        )
    )
    try:
        result = read_token(KEY, edited, max_age_s=60, api_key=BANNER.api_key)
    except BadToken:
        return
    assert result == (PAGE_VIEW, BANNER)
    assert position == len(TOKEN) - 1


@given(
    page_view=st.from_regex(r"[A-Za-z0-9_\-]{1,64}", fullmatch=True),
    title=st.text(),
    name=st.text(),
)
def test_any_text_round_trips(page_view, title, name):
    banner = BannerView("k", "r", "HOME", title, "l", items=(BannerItem("1", name=name),))
    assert read_token(KEY, issue_token(KEY, page_view, banner), 60, api_key="k") == (
        page_view,
        banner,
    )


@pytest.mark.parametrize(
    "first, second",
    [
        (impression_id("pv1", "k1"), impression_id("pv2", "k1")),  # another page view
        (impression_id("pv1", "k1"), impression_id("pv1", "k2")),  # another banner
        (impression_id("pv1", "k1"), click_id("pv1", "k1", "view")),  # another kind
        (click_id("pv1", "k1", "p1"), click_id("pv1", "k1", "p2")),  # another product
        (click_id("pv1", "k1", "p1"), click_id("pv2", "k1", "p1")),
        (click_id("a|b", "c", "p"), click_id("a", "b|c", "p")),  # no separator ambiguity
        (impression_id("a", "b,c"), impression_id("a,b", "c")),
    ],
)
def test_event_ids_differ_when_the_event_differs(first, second):
    assert first != second


@pytest.mark.parametrize(
    "make",
    [
        lambda: impression_id(PAGE_VIEW, "k-home-picks"),
        lambda: click_id(PAGE_VIEW, "k-home-picks", "10001"),
    ],
)
def test_the_same_event_always_has_the_same_id(make):
    assert make() == make()
    assert re.fullmatch(r"[0-9a-f]{32}", make())


def test_the_api_key_is_not_in_the_token():
    token = issue_token(KEY, PAGE_VIEW, BANNER)
    assert BANNER.api_key not in json.dumps(tokens._inflated(token.partition(".")[0]))
    assert read_token(KEY, token, 60, api_key="the-shops-key")[1].api_key == "the-shops-key"
