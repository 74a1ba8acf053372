"""Klaviyo's browser identity, read and written exactly as Klaviyo does: a pure codec, no I/O.

Klaviyo keeps a visitor's identity in its own cookie ``__kla_id``: standard base64 of compact
ASCII JSON, ``{"cid": ..., "$exchange_id": ...}``. Email links carry the exchange id as ``_kx``.
Readers in the wild meet every mangled variant of the cookie (padding stripped, URL-encoded,
quoted, URL-safe alphabet, old builds with extra keys and even ``$email``), so reading accepts
them all and turns anything broken into "anonymous" — never an exception, and never a log line
holding the value, which may be personal data. Writing emits only the plain form, because
Klaviyo's own script breaks on anything else. See docs/klaviyo-identity.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

KLA_ID_COOKIE = "__kla_id"
KLA_OFF_COOKIE = "__kla_off"
KX_PARAM = "_kx"

COOKIE_MAX_AGE = 730 * 24 * 3600  # seconds: Klaviyo keeps its cookie for two years
MAX_COOKIE_CHARS = 3000  # Klaviyo's script deletes longer values; so do we
MAX_EXCHANGE_ID_CHARS = 200  # real ids are ≤ 71; the cap keeps our cookie far under 3000

ONSITE_SCRIPT_URL = "https://static.klaviyo.com/onsite/js/klaviyo.js"

# re.ASCII: Klaviyo's pattern is JavaScript, where \w is [A-Za-z0-9_]; Python's \w would let
# any Unicode letter through. fullmatch, because Python's $ also matches before a newline.
_EXCHANGE_ID = re.compile(r"[\w\-=]+\.\w+", re.ASCII)
# A cid we keep must not bring characters that would put "+" or "/" into our base64 output
# (see encode_kla_id); Klaviyo's own cids are base64 of a UUID string, well inside this.
_CID = re.compile(r"[A-Za-z0-9+/=_\-]{1,128}", re.ASCII)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*", re.ASCII)
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class KlaId:
    """What the shop needs from ``__kla_id``; both fields are None for an unreadable cookie."""

    cid: str | None = None
    exchange_id: str | None = None


ANONYMOUS = KlaId()


def is_exchange_id(value: object) -> bool:
    """Whether ``value`` has the ``<identifier>.<company id>`` form of a Klaviyo exchange id."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_EXCHANGE_ID_CHARS
        and _EXCHANGE_ID.fullmatch(value) is not None
    )


def decode_kla_id(raw: str | None) -> KlaId:
    """Read a ``__kla_id`` cookie value in any real-world variant; anything broken → ANONYMOUS.

    Extra keys (``$referrer``, names, ``$email``) are ignored. A readable cookie without a valid
    exchange id still yields its ``cid``, so that a later write keeps Klaviyo's visitor id.
    """
    if not raw or len(raw) > MAX_COOKIE_CHARS:
        return ANONYMOUS
    data = _json_object(_base64_text(raw))
    if data is None:
        return ANONYMOUS
    cid = data.get("cid")
    exchange_id = data.get("$exchange_id")
    return KlaId(
        cid=cid if _is_cid(cid) else None,
        exchange_id=exchange_id if is_exchange_id(exchange_id) else None,
    )


def _base64_text(raw: str) -> str:
    """Undo the wrappings seen in the wild: whitespace, quotes, URL-encoding, URL-safe alphabet."""
    text = raw.strip().strip("\"'")
    if "%" in text:
        text = unquote(text)
    return text.translate(_URLSAFE_TO_STANDARD).rstrip("=")


def _json_object(text: str) -> dict[str, Any] | None:
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    try:
        # Klaviyo writes ASCII, but old builds put names through btoa(), i.e. Latin-1 bytes.
        data = json.loads(_text(decoded))
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the limit
        return None
    return data if isinstance(data, dict) else None


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _is_cid(value: object) -> bool:
    return isinstance(value, str) and _CID.fullmatch(value) is not None


def new_cid() -> str:
    """A fresh anonymous Klaviyo visitor id, made as Klaviyo makes it: base64 of a UUID string."""
    return base64.b64encode(str(uuid.uuid4()).encode("ascii")).decode("ascii")


def encode_kla_id(exchange_id: str, cid: str | None = None) -> str:
    """``__kla_id`` exactly as Klaviyo writes it: standard padded base64 of compact ASCII JSON,
    ``cid`` first, then ``$exchange_id``. A visitor without a (valid) ``cid`` gets a new one.

    Klaviyo's reader breaks on ``-``, ``_`` and ``+``. Base64 of ASCII only yields ``+`` or ``/``
    for a ``>``, ``?``, ``~`` or DEL in the JSON, which the checked exchange id and cid cannot
    contain, so the result is always ``[A-Za-z0-9]`` plus ``=`` padding.
    """
    if not is_exchange_id(exchange_id):
        raise ValueError("not a Klaviyo exchange id")
    payload = {"cid": cid if _is_cid(cid) else new_cid(), "$exchange_id": exchange_id}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def kla_id_cookie(value: str) -> dict[str, Any]:
    """Keyword arguments for ``Response.set_cookie`` that store ``__kla_id`` the way Klaviyo's
    script does: path ``/``, host-only, two years, readable by that script (not HttpOnly), Lax.

    Set as a plain cookie, never through Flask's signed session: the value is Klaviyo's.
    """
    return {
        "key": KLA_ID_COOKIE,
        "value": value,
        "max_age": COOKIE_MAX_AGE,
        "path": "/",
        "httponly": False,
        "samesite": "Lax",
    }


def parse_kx(value: str | None, company_id: str | None) -> str | None:
    """The exchange id in an email link's ``_kx`` parameter, if it is meant for this shop.

    ``value`` is the query parameter as the framework decoded it; links that were
    percent-encoded twice (``%253D``) are decoded once more. Klaviyo's script ignores a ``_kx``
    whose company id is another account's, and so does this.
    """
    if not value or not company_id:
        return None
    exchange_id = unquote(value) if "%" in value else value
    if not is_exchange_id(exchange_id):
        return None
    return exchange_id if exchange_id.rpartition(".")[2] == company_id else None


def persona_exchange_id(identifier: str, company_id: str) -> str:
    """The exchange id a Klaviyo account ``company_id`` gives the profile ``identifier``."""
    return f"{identifier}.{company_id}"


def tracking_off(value: str | None) -> bool:
    """``__kla_off=true``: the visitor turned Klaviyo tracking off; Klaviyo honours it, so do we."""
    return (value or "").strip().lower() == "true"


def onsite_script_url(company_id: str) -> str:
    """Klaviyo's onsite script for the account ``company_id`` (the live Klaviyo mode)."""
    return f"{ONSITE_SCRIPT_URL}?company_id={quote(company_id, safe='')}"
