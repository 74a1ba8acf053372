"""Klevu analytics payloads for recommendation banners (docs/klevu-wire-format.md §5), pure.

The storefront sends the first dialect of §5, the one JSv2's ``klevu-recs.js`` posts to
``/analytics/collect``: ``view_recs_list`` when a banner was seen, ``select_recs_list`` when one
of its products was chosen. Events are built from a ``BannerView`` — what the server actually
rendered, carried back to it in a signed token (tokens.py) — never from what a browser says, so
a client cannot invent products, prices or lists.

Each function returns one event object; the collector's body is a JSON array of them, which
the outbox assembles into batches.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

VIEW = "view_recs_list"
SELECT = "select_recs_list"
PAGE_TYPE_TAG = "recsPageType:"  # JSv2 constant RECS_RPT


class UnknownItem(LookupError):
    """A click names a product that was not in the rendered banner."""


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
        return cls(id=_text(record.get("id")), name=_text(record.get("name")),
                   sale_price=_text(record.get("salePrice")),
                   currency=_text(record.get("currency")), brand=_text(record.get("brand")),
                   category=_text(record.get("category")),
                   variant_id=_text(record.get("variantId")),
                   item_group_id=_text(record.get("itemGroupId")))


@dataclass(frozen=True)
class BannerView:
    """One banner as rendered: the config metadata §5 reports, and its products in order.

    A banner with no products is never rendered (§2 hides it below ``productThreshold``) and
    JSv2 sends no view for an empty list, so ``items`` may not be empty.
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
    items: tuple[BannerItem, ...] = ()

    def __post_init__(self) -> None:
        if not self.items or not all(item.id for item in self.items):
            raise ValueError("a rendered banner has at least one product, each with an id")

    @classmethod
    def from_config(cls, api_key: str, recs_key: str, metadata: Mapping[str, object],
                    records: Iterable[Mapping[str, object]]) -> BannerView:
        """From the config answer's ``metadata`` (§2) and the records shown, in order.

        ``recs_key`` is the key the storefront asked the config CDN for.
        """
        return cls(api_key=api_key, recs_key=recs_key,
                   page_type=_text(metadata.get("pageType")), title=_text(metadata.get("title")),
                   logic=_text(metadata.get("logic")), spot_key=_text(metadata.get("spotKey")),
                   spot_name=_text(metadata.get("spotName")),
                   segment_key=_text(metadata.get("segmentKey")),
                   segment_name=_text(metadata.get("segmentName")),
                   items=tuple(BannerItem.from_record(r) for r in records))


def impression(banner: BannerView, session_id: str | None) -> dict[str, Any]:
    """``view_recs_list``: the banner was seen, with all its products."""
    return _event(VIEW, banner, session_id,
                  [_item(item, index) for index, item in enumerate(banner.items, start=1)])


def click(banner: BannerView, session_id: str | None, item_id: str) -> dict[str, Any]:
    """``select_recs_list``: one product was chosen; it keeps its position in the banner."""
    for index, item in enumerate(banner.items, start=1):
        if item.id == item_id:
            return _event(SELECT, banner, session_id, [_item(item, index)])
    raise UnknownItem(f"product {item_id!r} is not in banner {banner.recs_key}")


def _event(name: str, banner: BannerView, session_id: str | None,
           items: list[dict[str, Any]]) -> dict[str, Any]:
    event = _prune({
        "event": name,
        "event_apikey": banner.api_key,
        "user_profile": {"session_id": session_id},
        "event_data": {
            "tags": [PAGE_TYPE_TAG + banner.page_type],
            "list_id": banner.spot_key or banner.recs_key,
            "list_name": banner.title,
            "list_logic": banner.logic,
            "spot_id": banner.spot_key,
            "spot_name": banner.spot_name,
            "segment_id": banner.segment_key,
            "segment_name": banner.segment_name,
            "items": items,
        },
    })
    assert isinstance(event, dict)  # _prune keeps a dict a dict
    return event


def _item(item: BannerItem, index: int) -> dict[str, Any]:
    """klevu-recs.js ``convertEventItems``: price is the sale price, quantity always 1."""
    return {"item_id": item.id, "item_name": item.name, "price": item.sale_price,
            "currency": item.currency, "item_brand": item.brand,
            "item_category": item.category, "item_variant_id": item.variant_id or item.id,
            "item_group_id": item.item_group_id or item.id, "index": index, "quantity": 1}


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
