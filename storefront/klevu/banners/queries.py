"""The record-query edits each page makes before searching (docs/klevu-wire-format.md §2, §3).

The config answer carries the merchant's search as a JSON-encoded string (``search.payload``).
Before posting it to search, the page adds what only it knows — the category it lists, the
product it shows, the cart, the visitor's recent products — to the ``settings`` of the query
whose id is ``klevuRECSItemList``, as JSv2's recommendations module does (its request chain,
one step per logic), then cleans the body as JSv2's ``klevu.clean`` does. Everything here is a
pure function of plain data: the config's strings and mappings plus a ``PageContext``; the
caller (placement.py) does the HTTP.

Which edit applies is decided by the banner's ``metadata.logic`` (and, for ``CUSTOM_LOGIC``
and the category path, its ``metadata.pageType``); the page supplies only the inputs, and an
input the page does not have leaves the payload as the merchant wrote it (JSv2 searches it
unedited), except ``RECENTLY_VIEWED`` without recent products, which is not searched. A
category-page banner on another page gets an empty category path, which the cleaning removes.

How an edit meets settings the merchant's payload already holds, as in JSv2:
  * ``customANDQuery``, ``topIds``, ``limit`` and ``query.categoryPath`` are set, replacing
    the payload's (``limit`` only for ``RECENTLY_VIEWED``: the number of ids);
  * ``context.recentObjects`` / ``context.sourceObjects``: the payload's entries, then ours;
  * ``excludeIds``: ours, then the payload's.
The body is then cleaned: ``null``, ``false``, ``0``, ``""`` and empty objects and lists are
dropped at every depth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RECS_QUERY_ID = "klevuRECSItemList"
PRODUCT_RECORD = "KLEVU_PRODUCT"
DEFAULT_MAX_PRODUCTS = 12
DEFAULT_PRODUCT_THRESHOLD = 4


class QueryError(ValueError):
    """This banner's query cannot be built: hide the banner, log the message, keep the page."""


class MalformedPayload(QueryError):
    """``search.payload`` is not the JSON-encoded ``{"recordQueries": [...]}`` of §2."""


@dataclass(frozen=True)
class PageContext:
    """What the page knows that a banner's query may need (the "needs" column of §2)."""

    page_type: str  # HOME, CATEGORY, PRODUCT or CHECKOUT
    category_path: tuple[str, ...] = ()  # names from the root, e.g. ("Outdoor", "Tents")
    product_id: str | None = None
    item_group_id: str | None = None
    cart: tuple[tuple[str, str | None], ...] = ()  # (product id, item group id) per cart line
    # Products clicked in Klevu's banners, newest first, as recently_viewed.parse returns them.
    recently_viewed: tuple[str, ...] = ()
    recent_clicks: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecsMetadata:
    """The config metadata fields that shape the query, with §2's defaults applied."""

    page_type: str
    logic: str
    max_products: int = DEFAULT_MAX_PRODUCTS
    product_threshold: int = DEFAULT_PRODUCT_THRESHOLD  # placement.py hides smaller result sets

    @classmethod
    def from_config(cls, metadata: Mapping[str, Any]) -> RecsMetadata:
        """Read ``metadata``; a missing or nonsensical count falls back to §2's default."""
        return cls(
            page_type=str(metadata.get("pageType") or ""),
            logic=str(metadata.get("logic") or ""),
            max_products=_count(metadata.get("maxProducts"), DEFAULT_MAX_PRODUCTS, minimum=1),
            product_threshold=_count(
                metadata.get("productThreshold"), DEFAULT_PRODUCT_THRESHOLD, minimum=0
            ),
        )


def build_search(
    payload: str, metadata: Mapping[str, Any], page: PageContext, api_key: str
) -> dict[str, Any] | None:
    """The search body (§3) for one banner, or ``None`` when there is nothing to search.

    ``None`` happens for a ``RECENTLY_VIEWED`` banner of a visitor with no recent products:
    JSv2 sets ``doSearch = false`` then, and the banner is simply not shown. Raises
    ``MalformedPayload`` for a payload that is not §2's. Only the payload's ``recordQueries``
    are used (§2); the context names the storefront's own api key.
    """
    queries = _record_queries(payload)
    meta = RecsMetadata.from_config(metadata)
    if meta.logic == "RECENTLY_VIEWED" and not _stored_ids(page.recently_viewed, meta):
        return None
    edited = [
        {**query, "settings": _edited(query.get("settings", {}), meta, page)}
        if query.get("id") == RECS_QUERY_ID
        else query
        for query in queries
    ]
    cleaned = clean({"context": {"apiKeys": [api_key]}, "recordQueries": edited})
    assert isinstance(cleaned, dict)  # an api key and one recs query: never cleaned away
    return cleaned


def clean(value: object) -> object:
    """JSv2's ``klevu.clean``: without ``null``, ``false``, ``0``, ``""`` and the objects and
    lists that are (or become) empty, at every depth; ``true`` and other numbers stay."""
    if isinstance(value, dict):
        kept = {key: clean(item) for key, item in value.items() if not _cleaned_away(item)}
        return {key: item for key, item in kept.items() if not _cleaned_away(item)}
    if isinstance(value, list):
        kept_items = [clean(item) for item in value if not _cleaned_away(item)]
        return [item for item in kept_items if not _cleaned_away(item)]
    return value


def _cleaned_away(value: object) -> bool:
    if value is None or value is False or value == "":
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, dict | list) and not value


# -- JSv2's request chain, one edit per logic ---------------------------------------------------


def _edited(settings: dict[str, Any], meta: RecsMetadata, page: PageContext) -> dict[str, Any]:
    settings = json.loads(json.dumps(settings))  # ours to change: the payload stays as it was
    logic = meta.logic
    if logic == "CUSTOM_LOGIC":
        logic = {"PRODUCT": "OTHER_ALSO_VIEWED", "CHECKOUT": "BOUGHT_TOGETHER"}.get(
            meta.page_type, logic
        )
    if logic == "RECENTLY_VIEWED":
        ids = _stored_ids(page.recently_viewed, meta)
        quoted = " OR ".join(f'"{_quote(i)}"' for i in ids)
        settings["customANDQuery"] = f"id:({quoted})"
        settings["topIds"] = [{"key": "id", "value": i} for i in ids]
        settings["limit"] = len(ids)
    elif logic == "TRENDING_PERSONALIZED":
        ids = _stored_ids(page.recent_clicks, meta)
        _append(settings, "recentObjects", _products({"id": i} for i in ids) if ids else None)
    elif logic in ("OTHER_ALSO_VIEWED", "SIMILAR", "BOUGHT_TOGETHER_PDP"):
        _shown_product(settings, page)
    elif logic == "VISUALLY_SIMILAR":
        _visual_source(settings, page)
    elif logic == "BOUGHT_TOGETHER":
        _cart(settings, page)
    if meta.page_type == "CATEGORY" and logic in (
        "RECENTLY_VIEWED",
        "TRENDING",
        "TRENDING_PERSONALIZED",
        "NEWEST_ARRIVALS",
        "CUSTOM_LOGIC",
    ):
        path = ";".join(page.category_path) if page.page_type == "CATEGORY" else ""
        query = settings.get("query")
        settings["query"] = {**(query if isinstance(query, dict) else {}), "categoryPath": path}
    return settings


def _shown_product(settings: dict[str, Any], page: PageContext) -> None:
    """The product page's product as the recent object; its group excluded when known."""
    product_id, group_id = _product(page)
    if not product_id:
        return
    _append(settings, "recentObjects", _products([{"id": product_id}]))
    if group_id:
        _exclude(settings, [_group(group_id)])


def _visual_source(settings: dict[str, Any], page: PageContext) -> None:
    """Source records ``[{itemGroupId}, {id}]``, each if known; exclude the group, else the id."""
    product_id, group_id = _product(page)
    if not product_id and not group_id:
        return
    records = ([{"itemGroupId": group_id}] if group_id else []) + (
        [{"id": product_id}] if product_id else []
    )
    _append(settings, "sourceObjects", _products(records))
    _exclude(settings, [_group(group_id) if group_id else {"key": "id", "value": product_id}])


def _cart(settings: dict[str, Any], page: PageContext) -> None:
    """The cart's products as recent objects; the groups of lines that have one excluded."""
    lines = page.cart if page.page_type == "CHECKOUT" else ()
    ids = [product_id for product_id, _ in lines if product_id]
    if not ids:
        return
    _append(settings, "recentObjects", _products({"id": i} for i in ids))
    groups = [group_id for _, group_id in lines if group_id]
    if groups:
        _exclude(settings, [_group(g) for g in groups])


# -- helpers ----------------------------------------------------------------------------------


def _record_queries(payload: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(payload)
    except (TypeError, ValueError) as exc:
        raise MalformedPayload(f"search.payload is not a JSON string: {exc}") from exc
    queries = parsed.get("recordQueries") if isinstance(parsed, dict) else None
    if not isinstance(queries, list) or not all(isinstance(q, dict) for q in queries):
        raise MalformedPayload("search.payload has no recordQueries list of objects")
    recs = [q for q in queries if q.get("id") == RECS_QUERY_ID]
    if len(recs) != 1:
        raise MalformedPayload(
            f"search.payload needs exactly one {RECS_QUERY_ID} query, found {len(recs)}"
        )
    if not isinstance(recs[0].get("settings", {}), dict):
        raise MalformedPayload(f"{RECS_QUERY_ID} settings is not an object")
    return queries


def _stored_ids(ids: Iterable[str], meta: RecsMetadata) -> tuple[str, ...]:
    """JSv2 uses at most ``maxProducts`` of the visitor's recent products, newest first."""
    return _unique(ids)[: meta.max_products]


def _quote(product_id: str) -> str:
    """An id inside a double-quoted term of ``customANDQuery``."""
    return product_id.replace("\\", "\\\\").replace('"', '\\"')


def _context(settings: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(settings.get("context"), dict):
        settings["context"] = {}
    context: dict[str, Any] = settings["context"]
    return context


def _append(settings: dict[str, Any], name: str, ours: dict[str, Any] | None) -> None:
    """``context.<name>``: the payload's own entries (JSv2 keeps a source the merchant
    forced), then ours if any; set even when empty, as JSv2 sets it (cleaning drops it)."""
    context = _context(settings)
    theirs = context.get(name)
    context[name] = [*(theirs if isinstance(theirs, list) else []), *([ours] if ours else [])]


def _exclude(settings: dict[str, Any], ours: list[dict[str, Any]]) -> None:
    theirs = settings.get("excludeIds")
    settings["excludeIds"] = ours + (theirs if isinstance(theirs, list) else [])


def _count(value: object, default: int, *, minimum: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    return default


def _product(page: PageContext) -> tuple[str | None, str | None]:
    """The product page's product id and group id, when the page is a product page."""
    if page.page_type != "PRODUCT":
        return None, None
    return page.product_id or None, page.item_group_id or None


def _products(records: Iterable[dict[str, str]]) -> dict[str, Any]:
    return {"typeOfRecord": PRODUCT_RECORD, "records": list(records)}


def _group(group_id: str) -> dict[str, Any]:
    return {"key": "itemGroupId", "value": group_id}


def _unique(ids: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))
