"""Klevu analytics payloads for recommendation banners (docs/klevu-wire-format.md §5), pure.

The storefront sends the first dialect of §5, the one JSv2's ``klevu-recs.js`` posts to
``/analytics/collect``: ``view_recs_list`` when a banner was seen, ``select_recs_list`` when one
of its products was chosen. Events are built from a ``BannerView`` — what the server actually
rendered, carried back to it in a signed token (tokens.py) — never from what a browser says, so
a client cannot invent products, prices or lists.

A STATIC_CONTENT banner (an image the merchant placed instead of products) reports the same
two events with ``action`` and, instead of ``items``, ``event_data.static_content``: one entry
per content shown (a click: the one chosen), for the image the visitor's screen showed, in
``@klevu/core``'s fields (``content_type``, ``resolution``, ``index``, ``banner_image_url``,
``banner_alt_tag``). The browser says which images it showed; an image it does not name (no
JavaScript) is the ``desktop`` one, else the content's first, as ``@klevu/core`` chooses.

Each function returns one event object; the collector's body is a JSON array of them, which
the outbox assembles into batches.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VIEW = "view_recs_list"
SELECT = "select_recs_list"
PAGE_TYPE_TAG = "recsPageType:"  # JSv2 constant RECS_RPT
EVENT_VERSION = "1.0.0"  # @klevu/core's; the guide's examples name no version
DEFAULT_RESOLUTION = "desktop"  # a static image nobody said was shown: @klevu/core's default


class UnknownItem(LookupError):
    """A click names a product (or static content) that was not in the rendered banner."""


@dataclass(frozen=True)
class BannerItem:
    """The record fields an event needs, as Klevu's search returned them (§3 names).

    ``variant_id`` and ``item_group_id`` stay empty when the record has none: the fallback to
    ``id`` is a rule of the event mapping (§5), applied in one place, ``_item``.
    """

    id: str
    name: str = ""
    sale_price: str = ""
    currency: str = ""
    brand: str = ""
    category: str = ""
    variant_id: str = ""
    item_group_id: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> BannerItem:
        return cls(
            id=_text(record.get("id")),
            name=_text(record.get("name")),
            sale_price=_text(record.get("salePrice")),
            currency=_text(record.get("currency")),
            brand=_text(record.get("brand")),
            category=_text(record.get("category")),
            variant_id=_text(record.get("variantId")),
            item_group_id=_text(record.get("itemGroupId")),
        )


@dataclass(frozen=True)
class BannerView:
    """One banner as rendered: the config metadata §5 reports, and its products in order.

    ``items`` may be empty: JSv2 renders (and reports) a banner whose search found nothing.
    A static banner has no products: ``static_content`` holds the config's ``staticContent``
    as compact JSON text (the token carries only strings) and ``action`` says so.
    """

    api_key: str
    recs_key: str
    page_type: str
    title: str
    logic: str
    spot_key: str = ""
    spot_name: str = ""
    segment_key: str = ""
    segment_name: str = ""
    action: str = ""
    static_content: str = ""
    items: tuple[BannerItem, ...] = ()

    def __post_init__(self) -> None:
        if self.static_content:
            if self.items or not isinstance(self.contents(), list) or not self.contents():
                raise ValueError("a static banner shows a list of static content, no products")
        elif not all(item.id for item in self.items):
            raise ValueError("each product of a rendered banner has an id")

    def contents(self) -> object:
        """The static content entries, parsed (empty for a banner of products)."""
        try:
            return json.loads(self.static_content) if self.static_content else []
        except ValueError:
            return None

    @classmethod
    def from_config(
        cls,
        api_key: str,
        recs_key: str,
        metadata: Mapping[str, object],
        records: Iterable[Mapping[str, object]],
    ) -> BannerView:
        """From the config answer's ``metadata`` (§2) and the records shown, in order.

        ``recs_key`` is the key the storefront asked the config CDN for.
        """
        items = tuple(BannerItem.from_record(r) for r in records)
        return cls._labelled(api_key, recs_key, metadata, items=items)

    @classmethod
    def from_static(
        cls,
        api_key: str,
        recs_key: str,
        metadata: Mapping[str, object],
        action: str,
        static_content: list[Any],
    ) -> BannerView:
        """A STATIC_CONTENT banner: its metadata and the content it showed."""
        content = json.dumps(static_content, separators=(",", ":"))
        return cls._labelled(api_key, recs_key, metadata, action=action, static_content=content)

    @classmethod
    def _labelled(
        cls, api_key: str, recs_key: str, metadata: Mapping[str, object], **rest: Any
    ) -> BannerView:
        """The names every event of the banner repeats, from the config's ``metadata`` (§2)."""
        return cls(
            api_key=api_key,
            recs_key=recs_key,
            page_type=_text(metadata.get("pageType")),
            title=_text(metadata.get("title")),
            logic=_text(metadata.get("logic")),
            spot_key=_text(metadata.get("spotKey")),
            spot_name=_text(metadata.get("spotName")),
            segment_key=_text(metadata.get("segmentKey")),
            segment_name=_text(metadata.get("segmentName")),
            **rest,
        )

    @property
    def is_static(self) -> bool:
        return bool(self.static_content)


def impression(
    banner: BannerView, session_id: str | None, shown: Collection[str] = ()
) -> dict[str, Any]:
    """``view_recs_list``: the banner was seen, with all its products (or static content;
    ``shown``: the URLs of the images the browser showed)."""
    if banner.is_static:
        entries = [_static_shown(banner, i, shown) for i in range(len(_static_contents(banner)))]
        return _event(VIEW, banner, session_id, [], static_content=entries)
    return _event(
        VIEW,
        banner,
        session_id,
        [_item(item, index) for index, item in enumerate(banner.items, start=1)],
    )


def click(
    banner: BannerView, session_id: str | None, item_id: str, shown: Collection[str] = ()
) -> dict[str, Any]:
    """``select_recs_list``: one product was chosen; it keeps its position in the banner.

    In a static banner ``item_id`` is the chosen entry's index in ``staticContent`` and
    ``shown`` the URL of the image the visitor clicked.
    """
    if banner.is_static:
        static_entry(banner, item_id)  # UnknownItem for content the banner did not have
        entry = _static_shown(banner, int(item_id), shown)
        return _event(SELECT, banner, session_id, [], static_content=[entry])
    for index, item in enumerate(banner.items, start=1):
        if item.id == item_id:
            return _event(SELECT, banner, session_id, [_item(item, index)])
    raise UnknownItem(f"product {item_id!r} is not in banner {banner.recs_key}")


def static_entry(banner: BannerView, item_id: str) -> dict[str, Any]:
    """The static content entry a click names by its index; ``UnknownItem`` otherwise."""
    contents = banner.contents()
    index = int(item_id) if item_id.isascii() and item_id.isdigit() else -1
    entry = contents[index] if isinstance(contents, list) and 0 <= index < len(contents) else None
    if isinstance(entry, dict):
        return {str(key): value for key, value in entry.items()}
    raise UnknownItem(f"static content {item_id!r} is not in banner {banner.recs_key}")


def _static_contents(banner: BannerView) -> list[Any]:
    contents = banner.contents()
    return contents if isinstance(contents, list) else []


def _static_shown(banner: BannerView, index: int, shown: Collection[str]) -> dict[str, Any]:
    """Content ``index`` as the visitor saw it: the image named in ``shown``, else the desktop
    one, else the first (``@klevu/core``); content without an image has no image fields."""
    content = _static_contents(banner)[index]
    content = content if isinstance(content, dict) else {}
    images = content.get("image")
    images = [i for i in images if isinstance(i, dict)] if isinstance(images, list) else []
    image: dict[str, Any] = next(
        (i for i in images if i.get("url") in shown),
        next((i for i in images if i.get("resolution") == DEFAULT_RESOLUTION), {}),
    ) or (images[0] if images else {})
    return {
        "content_type": _text(content.get("contentType")) or "image",
        "resolution": _text(image.get("resolution")),
        "index": index + 1,
        "banner_image_url": _text(image.get("url")),
        "banner_alt_tag": _text(image.get("altTag")),
    }


def _event(
    name: str,
    banner: BannerView,
    session_id: str | None,
    items: list[dict[str, Any]],
    static_content: object = None,
) -> dict[str, Any]:
    event = _prune(
        {
            "event": name,
            "event_version": EVENT_VERSION,
            "event_apikey": banner.api_key,
            "user_profile": {"session_id": session_id},
            "event_data": {
                "tags": [PAGE_TYPE_TAG + banner.page_type],
                "list_id": banner.recs_key,
                "list_name": banner.title,
                "list_logic": banner.logic,
                "spot_id": banner.spot_key,
                "spot_name": banner.spot_name,
                "segment_id": banner.segment_key,
                "segment_name": banner.segment_name,
                "items": items,
                "static_content": static_content,
                "action": banner.action,
            },
        }
    )
    assert isinstance(event, dict)  # _prune keeps a dict a dict
    return event


def _item(item: BannerItem, index: int) -> dict[str, Any]:
    """klevu-recs.js ``convertEventItems``: price is the sale price, quantity always 1."""
    return {
        "item_id": item.id,
        "item_name": item.name,
        "price": item.sale_price,
        "currency": item.currency,
        "item_brand": item.brand,
        "item_category": item.category,
        "item_variant_id": item.variant_id or item.id,
        "item_group_id": item.item_group_id or item.id,
        "index": index,
        "quantity": 1,
    }


def _prune(value: object) -> object:
    """Leave out empty and null fields at every depth (§5), e.g. a segment that the config did
    not name, a record without a brand, a missing session; a container left empty goes too.
    (False fields were already turned into "" when the record was read, by ``_text``.)"""
    if isinstance(value, dict):
        pruned = {key: _prune(v) for key, v in value.items()}
        return {key: v for key, v in pruned.items() if not _empty(v)}
    if isinstance(value, list):
        return [v for v in map(_prune, value) if not _empty(v)]
    return value


def _empty(value: object) -> bool:
    return value is None or value in ("", [], {})


def _text(value: object) -> str:
    """A record field as the string Klevu sends; absent, null or false fields become ""."""
    if value is None or value is False:
        return ""
    return value if isinstance(value, str) else str(value)
