"""Banner tokens and event ids: how a browser's beacon turns back into trustworthy events.

Each rendered banner carries a token binding the page view id to the ``BannerView`` the server
rendered, signed with the app's secret key (itsdangerous, HMAC-SHA256, timestamped), so the
beacon and click routes build every §5 event from what the server showed: a client can replay
a token but cannot forge products, prices or lists, nor move it to another banner or page
view. Signed, not encrypted: it holds only what the page shows (not the api key).

Cheap per page: the banner's part is encoded and compressed once per ``BannerView`` and a page
view only appends its id (a stored deflate block) and the signature. No-JavaScript click links
carry a short token instead (``issue_link_token``: page view id + ``view_key``), and the click
route finds the banner by key (``shown.py``). Sizes and timings: docs/performance.md.

Event ids (the outbox's idempotency keys) come from the token's page view id, never from
anything a client chooses freely: an impression is (page view, recs key); a click is (page
view, recs key, item id), with no client nonce. So a retried beacon, a double click and the
beacon plus the no-JavaScript route each count once without coordinating, and one token can
emit at most one view and one click per product (docs/differences-from-klevu-js.md says how
this compares with JSv2's repeated clicks).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import struct
import zlib
from dataclasses import fields

from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from .events import BannerItem, BannerView

SALT = "storefront.klevu.banner-token.v4"  # bump when the payload layout changes
LINK_SALT = "storefront.klevu.click-link.v1"
MAX_TOKEN_CHARS = 8192
TOKEN_MAX_AGE = 24 * 3600  # seconds a page's banner token is honoured (a tab left open a day)
# itsdangerous' URL-safe output: base64url, "." separators (and a leading "." when compressed).
_TOKEN_RE = re.compile(r"[A-Za-z0-9_\-.]+")
# Not the api key: the server has it, and a token is in every page's HTML.
_BANNER_NAMES = tuple(f.name for f in fields(BannerView) if f.name not in ("items", "api_key"))
_ITEM_NAMES = tuple(f.name for f in fields(BannerItem))
_BANNER_FIELDS = len(_BANNER_NAMES)  # all but items
_ITEM_FIELDS = len(_ITEM_NAMES)


class BadToken(Exception):
    """The token was tampered with, has expired, or is not a token at all."""


def issue_token(secret_key: str | bytes, page_view_id: str, banner: BannerView) -> str:
    """The signed token for one banner rendered in one page view."""
    head, checksum = _compressed_view(banner)
    tail = (json.dumps(page_view_id, separators=(",", ":")) + "]").encode()
    # A final stored deflate block (BFINAL=1, BTYPE=00: the stream is byte-aligned after the
    # sync flush), then the zlib checksum of everything.
    stream = b"".join(
        (
            head,
            b"\x01",
            struct.pack("<HH", len(tail), len(tail) ^ 0xFFFF),
            tail,
            struct.pack(">I", zlib.adler32(tail, checksum)),
        )
    )
    payload = "." + base64.urlsafe_b64encode(stream).decode().rstrip("=")
    return _signer(secret_key).sign(payload).decode()


@functools.lru_cache(maxsize=256)
def _compressed_view(banner: BannerView) -> tuple[bytes, int]:
    """The zlib stream of the token's JSON up to the page view id (header, sync-flushed
    deflate data), and the running checksum of that JSON: the same for every page view."""
    # The same list ``astuple`` would give, without its deep copies.
    items = [[getattr(item, name) for name in _ITEM_NAMES] for item in banner.items]
    encoded = json.dumps(
        [*(getattr(banner, name) for name in _BANNER_NAMES), items], separators=(",", ":")
    )
    head = (encoded[:-1] + ",").encode()  # the list stays open for the page view id
    deflate = zlib.compressobj()
    return deflate.compress(head) + deflate.flush(zlib.Z_SYNC_FLUSH), zlib.adler32(head)


def read_token(
    secret_key: str | bytes, token: str, max_age_s: int, *, api_key: str
) -> tuple[str, BannerView]:
    """``(page_view_id, banner)`` from a token; ``BadToken`` for anything else.

    The signature is checked before the payload is decompressed or parsed, so unsigned input
    never reaches zlib or json. Tokens older than ``max_age_s`` seconds are refused. The
    banner's ``api_key`` is the caller's (the shop's own), never carried in the token.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        raise BadToken("not a banner token")
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age_s)
    except BadData as exc:
        raise BadToken(str(exc)) from exc
    return _decode(data, api_key)


@functools.lru_cache(maxsize=256)
def view_key(banner: BannerView) -> str:
    """22 characters that name what ``banner`` holds (128 bits of SHA-256 of its token part)."""
    head, _ = _compressed_view(banner)
    return base64.urlsafe_b64encode(hashlib.sha256(head).digest()[:16]).decode().rstrip("=")


def issue_link_token(secret_key: str | bytes, page_view_id: str, banner: BannerView) -> str:
    """The short token of a banner's no-JavaScript click links: the page view id and the
    banner's ``view_key``, signed (about 100 characters, where ``issue_token``'s holds every
    product: 570 characters for a 12-product banner, in each of its links)."""
    return _link_signer(secret_key).sign(f"{view_key(banner)}.{page_view_id}").decode()


def read_link_token(secret_key: str | bytes, token: str, max_age_s: int) -> tuple[str, str]:
    """``(page_view_id, view key)`` from a click link's token; ``BadToken`` for anything else."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
        raise BadToken("not a click link token")
    try:
        payload = _link_signer(secret_key).unsign(token, max_age=max_age_s).decode()
    except BadData as exc:
        raise BadToken(str(exc)) from exc
    key, _, page_view_id = payload.partition(".")
    if len(key) != 22 or not page_view_id:
        raise BadToken("click link token has an unexpected layout")
    return page_view_id, key


@functools.lru_cache(maxsize=4)
def _link_signer(secret_key: str | bytes) -> TimestampSigner:
    if not secret_key:
        raise ValueError("banner tokens need the app's SECRET_KEY")
    return TimestampSigner(secret_key, salt=LINK_SALT, digest_method=hashlib.sha256)


def impression_id(page_view_id: str, recs_key: str) -> str:
    """Idempotency key of a banner's impression (see the module docstring)."""
    return _digest("view", page_view_id, recs_key)


def click_id(page_view_id: str, recs_key: str, item_id: str) -> str:
    """Idempotency key of a click on one product of a banner (see the module docstring)."""
    return _digest("select", page_view_id, recs_key, item_id)


def _serializer(secret_key: str | bytes) -> URLSafeTimedSerializer:
    if not secret_key:
        raise ValueError("banner tokens need the app's SECRET_KEY")
    return URLSafeTimedSerializer(
        secret_key, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str | bytes) -> TimestampSigner:
    """The serializer's own signer (``issue_token`` builds the payload ``loads`` reads); it
    holds no state but the key, so one serves every thread."""
    signer = _serializer(secret_key).make_signer()
    assert isinstance(signer, TimestampSigner)
    return signer


def _decode(data: object, api_key: str) -> tuple[str, BannerView]:
    """A signed payload is ours, but check its shape anyway: a layout change without a salt
    bump must read as a bad token, not as a crash in an event route."""
    if not (
        isinstance(data, list)
        and len(data) == 2 + _BANNER_FIELDS
        and all(isinstance(v, str) for v in data[:-2])
        and isinstance(data[-2], list)
        and isinstance(data[-1], str)
        and all(
            isinstance(item, list)
            and len(item) == _ITEM_FIELDS
            and all(isinstance(v, str) for v in item)
            for item in data[-2]
        )
    ):
        raise BadToken("token payload has an unexpected layout")
    *banner, items, page_view_id = data
    try:
        return page_view_id, BannerView(
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
