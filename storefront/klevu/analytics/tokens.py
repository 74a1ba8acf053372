"""Banner tokens and event ids: how a browser's beacon turns back into trustworthy events.

Each rendered banner carries a token binding the page view id to the ``BannerView`` the server
rendered, signed with the app's secret key (itsdangerous, HMAC-SHA256, timestamped), so the
beacon and click routes build every §5 event from what the server showed: a client can replay
a token but cannot forge products, prices or lists, nor move it to another banner or page
view. Signed, not encrypted: it holds only what the page shows (not the api key).

Cheap per page: what a banner's tokens share is made once per ``BannerView`` (``seal``: the
banner as compact JSON, compressed, base64url, and its ``key``, 128 bits of SHA-256 of that
text). A page view signs one short text, the key and its own id: that is the banner's click
link token (``shown.py`` finds the banner by key), and the beacon's token is the sealed banner
followed by it, so the signature covers the banner through its key. One signature per banner
and page view; sizes and timings: docs/performance.md.

Event ids (the outbox's idempotency keys) come from the token's page view id, never from
anything a client chooses freely: an impression is (page view, recs key); a click is (page
view, recs key, item id), with no client nonce. So a retried beacon, a double click and the
beacon plus the no-JavaScript route each count once without coordinating, and one token can
emit at most one view and one click per product (docs/differences-from-klevu-js.md says how
this compares with JSv2's repeated clicks).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import time
import zlib
from dataclasses import dataclass, fields

from itsdangerous import BadData, TimestampSigner
from itsdangerous.encoding import int_to_bytes, want_bytes

from .events import BannerItem, BannerView

SALT = "storefront.klevu.banner-token.v5"  # bump when the layout changes
MAX_TOKEN_CHARS = 8192
MAX_BANNER_BYTES = 64 * 1024  # a sealed banner inflates to at most this (12 products: 1.5 KB)
TOKEN_MAX_AGE = 24 * 3600  # seconds a page's banner token is honoured (a tab left open a day)
# base64url and the signer's "." separators.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-.]+")
# A page view id goes into links as it is (``budget.py`` makes 32 hex digits).
_PAGE_VIEW_RE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
# Not the api key: the server has it, and a token is in every page's HTML.
_BANNER_NAMES = tuple(f.name for f in fields(BannerView) if f.name not in ("items", "api_key"))
_ITEM_NAMES = tuple(f.name for f in fields(BannerItem))
_BANNER_FIELDS = len(_BANNER_NAMES)  # all but items
_ITEM_FIELDS = len(_ITEM_NAMES)


class BadToken(Exception):
    """The token was tampered with, has expired, or is not a token at all."""


@dataclass(frozen=True)
class Sealed:
    """What every token of one banner shares, whatever the page view."""

    view: BannerView
    text: str  # the banner's JSON, zlib-compressed, base64url without padding
    key: str  # 22 characters naming ``text`` (``view_key``)


def seal(banner: BannerView) -> Sealed:
    """The banner's share of its tokens: made once per banner by whoever shows it."""
    # The same list ``astuple`` would give, without its deep copies.
    items = [[getattr(item, name) for name in _ITEM_NAMES] for item in banner.items]
    encoded = json.dumps(
        [*(getattr(banner, name) for name in _BANNER_NAMES), items], separators=(",", ":")
    )
    text = base64.urlsafe_b64encode(zlib.compress(encoded.encode())).decode().rstrip("=")
    return Sealed(banner, text, _key(text))


def view_key(banner: BannerView) -> str:
    """22 characters that name what ``banner`` holds (``Sealed.key``)."""
    return seal(banner).key


def issue_tokens(secret_key: str | bytes, page_view_id: str, sealed: Sealed) -> tuple[str, str]:
    """``(beacon token, click link token)`` of one banner in one page view.

    The link token is the banner's key and the page view id, signed (about 110 characters,
    in each of its links); the beacon's is the sealed banner, ".", and the link token."""
    if not _PAGE_VIEW_RE.fullmatch(page_view_id):
        raise ValueError(f"a page view id is 1-64 URL-safe characters, not {page_view_id!r}")
    link = _signer(secret_key).sign(f"{sealed.key}.{page_view_id}").decode()
    return f"{sealed.text}.{link}", link


def read_token(
    secret_key: str | bytes, token: str, max_age_s: int, *, api_key: str
) -> tuple[str, BannerView]:
    """``(page_view_id, banner)`` from a beacon token; ``BadToken`` for anything else.

    The signature is checked, and the banner's text matched with the key it covers, before
    that text is decompressed or parsed, so unsigned input never reaches zlib or json. Tokens
    older than ``max_age_s`` seconds are refused. The banner's ``api_key`` is the caller's (the
    shop's own), never carried in the token.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        raise BadToken("not a banner token")
    text, _, link = token.partition(".")
    page_view_id, key = read_link_token(secret_key, link, max_age_s)
    if not hmac.compare_digest(key, _key(text)):
        raise BadToken("the token's banner is not the one its signature names")
    return page_view_id, _decode(_inflated(text), api_key)


def read_link_token(secret_key: str | bytes, token: str, max_age_s: int) -> tuple[str, str]:
    """``(page_view_id, view key)`` from a click link's token; ``BadToken`` for anything else."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        raise BadToken("not a click link token")
    try:
        payload = _signer(secret_key).unsign(token, max_age=max_age_s).decode()
    except BadData as exc:
        raise BadToken(str(exc)) from exc
    key, _, page_view_id = payload.partition(".")
    if len(key) != 22 or not _PAGE_VIEW_RE.fullmatch(page_view_id):
        raise BadToken("click link token has an unexpected layout")
    return page_view_id, key


class _Signer(TimestampSigner):
    """itsdangerous' timestamp signer (HMAC-SHA256), its signatures byte for byte (the library
    verifies them, ``unsign``; tests check both ways), made with less per signature: the
    derived key's HMAC pads hashed once (RFC 2104: each signature copies the two SHA-256
    states, 0.6 µs, where the ``hmac`` module's copy and digest took 1.1 µs), and the library's
    way of signing (about forty Python calls) as a few C calls, with the timestamp's text made
    once per second."""

    def __init__(self, secret_key: str | bytes):
        super().__init__(secret_key, salt=SALT, digest_method=hashlib.sha256)
        key = self.derive_key().ljust(64, b"\0")  # a SHA-256 block; derived keys are 32 bytes
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._sep = want_bytes(self.sep)
        self._stamp = (-1, b"")  # (timestamp, its text): replaced whole, never edited

    def sign(self, value: str | bytes) -> bytes:
        now = int(time.time())  # ``get_timestamp``, without its call
        stamped, stamp = self._stamp
        if stamped != now:
            stamp = _b64(int_to_bytes(now))
            self._stamp = (now, stamp)
        signed = (value.encode() if isinstance(value, str) else value) + self._sep + stamp
        return signed + self._sep + self._signature(signed)

    def get_signature(self, value: str | bytes) -> bytes:
        return self._signature(want_bytes(value))

    def _signature(self, value: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(value)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _b64(outer.digest())


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """``itsdangerous.encoding.base64_encode``: base64url, no padding, in C calls only."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str | bytes) -> TimestampSigner:
    """One per key serves every thread: it holds the key's hashed HMAC pads, read only (each
    signature copies them), and the current second's timestamp text, replaced whole."""
    if not secret_key:
        raise ValueError("banner tokens need the app's SECRET_KEY")
    return _Signer(secret_key)


def _inflated(text: str) -> object:
    """The JSON a sealed banner's text holds; ``BadToken`` if it is not whole within the
    bound."""
    try:
        inflate = zlib.decompressobj()
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        encoded = inflate.decompress(raw, MAX_BANNER_BYTES)
        if inflate.eof and not inflate.unconsumed_tail:
            return json.loads(encoded)
    except (ValueError, zlib.error):  # binascii.Error and UnicodeDecodeError among them
        pass
    raise BadToken("the token's banner is unreadable")


def _key(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:16]).decode()[:22]


def impression_id(page_view_id: str, recs_key: str) -> str:
    """Idempotency key of a banner's impression (see the module docstring)."""
    return _digest("view", page_view_id, recs_key)


def click_id(page_view_id: str, recs_key: str, item_id: str) -> str:
    """Idempotency key of a click on one product of a banner (see the module docstring)."""
    return _digest("select", page_view_id, recs_key, item_id)


def _decode(data: object, api_key: str) -> BannerView:
    """A sealed banner is ours, but check its shape anyway: a layout change without a salt
    bump must read as a bad token, not as a crash in an event route."""
    if not (
        isinstance(data, list)
        and len(data) == 1 + _BANNER_FIELDS
        and all(isinstance(v, str) for v in data[:-1])
        and isinstance(data[-1], list)
        and all(
            isinstance(item, list)
            and len(item) == _ITEM_FIELDS
            and all(isinstance(v, str) for v in item)
            for item in data[-1]
        )
    ):
        raise BadToken("token payload has an unexpected layout")
    *banner, items = data
    try:
        return BannerView(
            api_key=api_key,
            **dict(zip(_BANNER_NAMES, banner, strict=True)),
            items=tuple(BannerItem(*i) for i in items),
        )
    except ValueError as exc:
        raise BadToken(str(exc)) from exc


def _digest(*parts: str) -> str:
    """128 bits of SHA-256 over the JSON list of parts (unambiguous: no separator tricks)."""
    encoded = json.dumps(parts, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]
