"""The ``__kla_id`` / ``_kx`` codec against the real values in docs/klaviyo-identity.md."""

from __future__ import annotations

import base64
import json
import logging
import re
import string
import uuid
from urllib.parse import quote

import pytest
from hypothesis import given, strategies as st

from storefront import klaviyo
from storefront.klaviyo import ANONYMOUS, KlaId, decode_kla_id, encode_kla_id, parse_kx

# The identified visitor from the docs, raw cookie and decoded fields.
REAL_RAW = (
    "eyJjaWQiOiJZV1V5T0dVNVpqTXRNekkyTVMwMFpUUTVMVGd6Tm1FdE9HTm1ORGt5T1dRM01UTXgiLCIk"
    "ZXhjaGFuZ2VfaWQiOiI4MkpDc0JNUFNZdTREUHo0RVNfVExXQkEyS3gtMVl3bVI0c0JzcXh5cHhZLlczN21CVyJ9"
)
REAL_CID = "YWUyOGU5ZjMtMzI2MS00ZTQ5LTgzNmEtOGNmNDkyOWQ3MTMx"
REAL_XID = "82JCsBMPSYu4DPz4ES_TLWBA2Kx-1YwmR4sBsqxypxY.W37mBW"
ANON_CID = "ZWY5Y2EzZTgtOTMyNC00ZWEwLWI5MjMtYTAzYzUxNDU2YzAz"
REAL = KlaId(cid=REAL_CID, exchange_id=REAL_XID)


def b64(value) -> str:
    """Standard base64 of raw bytes, of UTF-8 text, or of the JSON of anything else."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, bytes):
        value = json.dumps(value).encode("ascii")
    return base64.b64encode(value).decode("ascii")


# A legacy cookie whose base64 holds "+" and "/" (from "???~~~" in the referrer), so that its
# URL-safe form really differs from the standard one.
LEGACY = {
    "cid": REAL_CID,
    "$referrer": {
        "ts": 1693824000,
        "value": "https://mail.example/???~~~",
        "first_page": "https://shop.example/",
    },
    "$last_referrer": {"ts": 1693824500, "value": ""},
    "$first_name": "José",
    "$last_name": "Øster",
    "$email": "jose@example.com",
    "$exchange_id": REAL_XID,
}
LEGACY_RAW = b64(LEGACY)
assert "+" in LEGACY_RAW and "/" in LEGACY_RAW


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param(REAL_RAW, REAL, id="real identified cookie"),
        pytest.param(b64({"cid": ANON_CID}), KlaId(cid=ANON_CID), id="real anonymous cookie"),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": REAL_XID + "x"}).rstrip("="),
            KlaId(REAL_CID, REAL_XID + "x"),
            id="padding stripped",
        ),
        pytest.param(
            quote(b64({"cid": "abc", "$exchange_id": REAL_XID + "x"}), safe=""),
            KlaId("abc", REAL_XID + "x"),
            id="url-encoded %3D",
        ),
        pytest.param(f'"{REAL_RAW}"', REAL, id="double-quoted"),
        pytest.param(f"'{REAL_RAW}'", REAL, id="single-quoted"),
        pytest.param(f" {REAL_RAW}\n", REAL, id="whitespace around"),
        pytest.param(LEGACY_RAW, REAL, id="legacy keys: referrer, names, email"),
        pytest.param(
            LEGACY_RAW.translate(str.maketrans("+/", "-_")).rstrip("="),
            REAL,
            id="url-safe alphabet, unpadded",
        ),
        pytest.param(quote(LEGACY_RAW, safe=""), REAL, id="url-encoded + / ="),
        pytest.param(b64(json.dumps(LEGACY, ensure_ascii=False)), REAL, id="utf-8 names"),
        pytest.param(
            b64(json.dumps(LEGACY, ensure_ascii=False).encode("latin-1")),
            REAL,
            id="latin-1 names (btoa)",
        ),
        pytest.param(
            b64({"$exchange_id": "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers=.McN66"}),
            KlaId(exchange_id="J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers=.McN66"),
            id="44-char identifier, no cid",
        ),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": "A" * 64 + ".W37mBW"}),
            KlaId(REAL_CID, "A" * 64 + ".W37mBW"),
            id="64-char identifier",
        ),
        pytest.param(
            b64({"cid": 42, "$exchange_id": REAL_XID}),
            KlaId(exchange_id=REAL_XID),
            id="cid not a string: exchange id still read",
        ),
    ],
)
def test_real_cookie_variants_decode(raw, expected):
    assert decode_kla_id(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param(None, ANONYMOUS, id="absent"),
        pytest.param("", ANONYMOUS, id="empty"),
        pytest.param("!!!not base64!!!", ANONYMOUS, id="not base64"),
        pytest.param("eyJjaWQiOiJhYmMifQ=x", ANONYMOUS, id="padding inside"),
        pytest.param(REAL_RAW[:-3], ANONYMOUS, id="truncated (length 4n+1)"),
        pytest.param("eyJjaWQiOiJh", ANONYMOUS, id="truncated JSON"),
        pytest.param(b64("not json"), ANONYMOUS, id="invalid JSON"),
        pytest.param(b64([REAL_XID]), ANONYMOUS, id="JSON array"),
        pytest.param(b64('"' + REAL_XID + '"'), ANONYMOUS, id="JSON string"),
        pytest.param(b64("null"), ANONYMOUS, id="JSON null"),
        pytest.param(b64("[" * 2500), ANONYMOUS, id="nested past the recursion limit"),
        pytest.param(b64(b"\x00\xff{"), ANONYMOUS, id="binary"),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": 12345}),
            KlaId(cid=REAL_CID),
            id="exchange id a number",
        ),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": None}), KlaId(cid=REAL_CID), id="exchange id null"
        ),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": [REAL_XID]}),
            KlaId(cid=REAL_CID),
            id="exchange id a list",
        ),
        pytest.param(
            b64({"cid": REAL_CID, "$email": "a@b.c"}), KlaId(cid=REAL_CID), id="exchange id missing"
        ),
        pytest.param(
            b64({"cid": "x" * 200, "$exchange_id": REAL_XID}),
            KlaId(exchange_id=REAL_XID),
            id="cid too long to keep",
        ),
        pytest.param(
            b64({"cid": "a>b?c~", "$exchange_id": REAL_XID}),
            KlaId(exchange_id=REAL_XID),
            id="cid with characters we could not write back",
        ),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": "A" * 300 + ".W37mBW"}),
            KlaId(cid=REAL_CID),
            id="exchange id absurdly long",
        ),
        pytest.param(
            b64({"cid": REAL_CID, "$exchange_id": REAL_XID, "$referrer": "x" * 2200}),
            ANONYMOUS,
            id="cookie over 3000 characters",
        ),
    ],
)
def test_broken_cookies_are_anonymous(raw, expected):
    assert decode_kla_id(raw) == expected


@pytest.mark.parametrize(
    "exchange_id",
    [
        "",
        "noDot",
        "ident.",
        ".W37mBW",
        "a.b.c",
        "a b.W37mBW",
        "ab+c.W37mBW",
        "ab/c.W37mBW",
        "ab.W37-BW",
        REAL_XID + "\n",
        "é" + REAL_XID,
        REAL_XID + "٣",
        "ab.W37mBW;x",
    ],
)
def test_malformed_exchange_ids_are_rejected(exchange_id):
    assert not klaviyo.is_exchange_id(exchange_id)
    assert decode_kla_id(b64({"cid": REAL_CID, "$exchange_id": exchange_id})) == KlaId(REAL_CID)


def test_decoding_logs_nothing(caplog):
    caplog.set_level(logging.DEBUG)
    for raw in (REAL_RAW, LEGACY_RAW, "!!!", b64("[" * 2500)):
        decode_kla_id(raw)
    assert caplog.records == []


# -- writing ---------------------------------------------------------------------------------


def test_encode_reproduces_klaviyos_cookie_byte_for_byte():
    assert encode_kla_id(REAL_XID, REAL_CID) == REAL_RAW


def test_encode_writes_cid_first_then_exchange_id_as_compact_json():
    text = base64.b64decode(encode_kla_id(REAL_XID, REAL_CID)).decode("ascii")
    assert text == f'{{"cid":"{REAL_CID}","$exchange_id":"{REAL_XID}"}}'


@pytest.mark.parametrize("cid", [None, "", 42, "a>b", "x" * 129])
def test_new_or_unusable_cid_gets_a_fresh_uuid_cid(cid):
    decoded = decode_kla_id(encode_kla_id(REAL_XID, cid))
    assert decoded.exchange_id == REAL_XID
    assert decoded.cid is not None
    uuid.UUID(base64.b64decode(decoded.cid).decode("ascii"))  # base64 of a UUID string


def test_encode_refuses_a_malformed_exchange_id():
    with pytest.raises(ValueError, match="not a Klaviyo exchange id"):
        encode_kla_id("not an exchange id", REAL_CID)


def test_cookie_attributes_match_klaviyos():
    assert klaviyo.kla_id_cookie("v") == {
        "key": "__kla_id",
        "value": "v",
        "max_age": 730 * 24 * 3600,
        "path": "/",
        "httponly": False,
        "samesite": "Lax",
    }


# -- _kx, __kla_off, onsite ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, company_id, expected",
    [
        (
            "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers=.McN66",
            "McN66",
            "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers=.McN66",
        ),
        (
            "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers%3D.McN66",
            "McN66",
            "J8fjcn003Wy6b-3ILNlOyZXabW6dcFwTyeuxrowMers=.McN66",
        ),
        (REAL_XID, "W37mBW", REAL_XID),
        (REAL_XID, "w37mbw", None),  # company ids are case-sensitive public keys
        (REAL_XID, "DemoCo", None),  # another account's link
        (REAL_XID, None, None),  # no Klaviyo account configured
        ("J8fjcn003Wy6b.McN66.McN66", "McN66", None),
        ("<script>.McN66", "McN66", None),
        ("", "McN66", None),
        (None, "McN66", None),
    ],
)
def test_parse_kx(value, company_id, expected):
    assert parse_kx(value, company_id) == expected


@pytest.mark.parametrize(
    "value, off",
    [
        ("true", True),
        ("TRUE", True),
        (" true ", True),
        ("false", False),
        ("1", False),
        ("", False),
        (None, False),
    ],
)
def test_tracking_off(value, off):
    assert klaviyo.tracking_off(value) is off


def test_onsite_script_url():
    assert klaviyo.onsite_script_url("W37mBW") == (
        "https://static.klaviyo.com/onsite/js/klaviyo.js?company_id=W37mBW"
    )


# -- properties ------------------------------------------------------------------------------

ID_CHARS = string.ascii_letters + string.digits + "_-="
identifiers = st.text(ID_CHARS, min_size=1, max_size=64)
company_ids = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=10)
exchange_ids = st.builds(lambda i, c: f"{i}.{c}", identifiers, company_ids)
cids = st.text(string.ascii_letters + string.digits + "+/=_-", min_size=1, max_size=128)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@given(exchange_ids, cids)
def test_round_trip(exchange_id, cid):
    raw = encode_kla_id(exchange_id, cid)
    assert decode_kla_id(raw) == KlaId(cid, exchange_id)
    # Klaviyo's reader breaks on "-", "_" and "+": we only ever emit letters, digits, padding.
    assert re.fullmatch(r"[A-Za-z0-9]+={0,2}", raw) and len(raw) % 4 == 0


@given(exchange_ids, cids, st.sampled_from(["strip", "urlsafe", "quote", "percent"]))
def test_round_trip_through_real_world_wrappings(exchange_id, cid, wrapping):
    raw = encode_kla_id(exchange_id, cid)
    wrapped = {
        "strip": raw.rstrip("="),
        "urlsafe": raw.translate(str.maketrans("+/", "-_")).rstrip("="),
        "quote": f'"{raw}"',
        "percent": quote(raw, safe=""),
    }[wrapping]
    assert decode_kla_id(wrapped) == KlaId(cid, exchange_id)


@given(
    st.one_of(
        st.text(),
        st.binary().map(lambda b: b.decode("latin-1")),
        st.binary().map(lambda b: base64.b64encode(b).decode()),
        st.binary().map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
        json_values.map(lambda v: b64(json.dumps(v))),
        st.dictionaries(st.sampled_from(["cid", "$exchange_id", "$email"]), json_values).map(
            lambda d: quote(b64(json.dumps(d)))
        ),
    )
)
def test_any_input_decodes_without_raising(raw):
    decoded = decode_kla_id(raw)
    assert decoded.exchange_id is None or klaviyo.is_exchange_id(decoded.exchange_id)


@given(st.text(), company_ids)
def test_parse_kx_never_raises_and_only_returns_own_ids(value, company_id):
    result = parse_kx(value, company_id)
    assert result is None or (klaviyo.is_exchange_id(result) and result.endswith("." + company_id))


@given(identifiers, company_ids)
def test_parse_kx_accepts_own_company_links(identifier, company_id):
    exchange_id = klaviyo.persona_exchange_id(identifier, company_id)
    assert parse_kx(exchange_id, company_id) == exchange_id
    assert parse_kx(quote(exchange_id, safe="."), company_id) == exchange_id
