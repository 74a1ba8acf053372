"""The record-query edits each page makes before searching (docs/klevu-wire-format.md §2, §3).

The config answer carries the merchant's search as a JSON-encoded string (``search.payload``).
Before posting it to search, the page adds what only it knows — the category it lists, the
product it shows, the cart, the visitor's recent products — to the ``settings`` of the query
whose id is ``klevuRECSItemList``, following the table in docs/klevu-wire-format.md §2.
Everything here is a
pure function of plain data: the config's strings and mappings plus a ``PageContext``; the
caller (recs.py) does the HTTP.

Which rule applies is decided by the banner's own ``metadata.pageType`` and ``metadata.logic``,
as both Klevu libraries do (``@klevu/core`` ``kmcRecommendation()`` and JSv2's
``klevu-recs.js`` request chain); the page supplies only the inputs. Like JSv2, a banner placed
on a page of another type is not refused: its rules still follow its own ``pageType`` (a
PRODUCT banner on the home page lacks its product and is hidden as a missing input), and its
events say ``recsPageType:<its type>`` (§5). docs/differences-from-klevu-js.md has the reasoning.

Precedence when the merchant's payload already holds settings of its own:
  * keys the table does not name (``query.term``, ``typeOfRequest``, ``sort``, ``fields``, ...)
    are kept as they are;
  * a scalar the table sets (``customANDQuery``, ``query.categoryPath``, ``limit``) is ours:
    it describes this page, as in both Klevu libraries, which overwrite it;
  * an object (``query``, ``context``, ``personalisation``) is merged key by key, ours winning;
  * a list (``excludeIds``, ``topIds``, ``context.recentObjects``, ``context.sourceObjects``) is
    ours first, then the payload's entries that are not already there: JSv2 also keeps the
    merchant's excludeIds and recentObjects ("we do not want to remove forced source").
``limit`` is the payload's own, except for ``RECENTLY_VIEWED``, where it is the number of ids:
the only place JSv2 sets it (it never caps it at ``maxProducts``; recs.py shows at most that
many records).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RECS_QUERY_ID = "klevuRECSItemList"
PRODUCT_RECORD = "KLEVU_PRODUCT"
DEFAULT_MAX_PRODUCTS = 12
DEFAULT_PRODUCT_THRESHOLD = 4
# TRENDING_PERSONALIZED sends at most the 10 newest clicks (@klevu/core
# getLastClickedLatestsFirst(10)); RECENTLY_VIEWED uses up to maxProducts of them (JSv2).
MAX_RECENT_IDS = 10


class QueryError(ValueError):
    """This banner's query cannot be built: hide the banner, log the message, keep the page."""


class MalformedPayload(QueryError):
    """``search.payload`` is not the JSON-encoded ``{"recordQueries": [...]}`` of §2."""


class MissingInput(QueryError):
    """The banner's logic needs page data the page does not have (§2: a configuration error)."""

    def __init__(self, missing: str, page_type: str, logic: str):
        super().__init__(f"{page_type} banner with logic {logic} needs {missing}")
        self.missing = missing


@dataclass(frozen=True)
class PageContext:
    """What the page knows that a banner's query may need (the "needs" column of §2)."""

    page_type: str  # HOME, CATEGORY, PRODUCT or CHECKOUT
    category_path: tuple[str, ...] = ()  # names from the root, e.g. ("Outdoor", "Tents")
    product_id: str | None = None
    item_group_id: str | None = None
    cart: tuple[tuple[str, str | None], ...] = ()  # (product id, item group id) per cart line
    # Products clicked in Klevu's banners, newest first, as recently_viewed.parse returns them:
    # its id alphabet is what makes it safe to quote them into customANDQuery 'id:("a" OR "b")'.
    recently_viewed: tuple[str, ...] = ()
    recent_clicks: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecsMetadata:
    """The config metadata fields that shape the query, with §2's defaults applied."""

    page_type: str
    logic: str
    max_products: int = DEFAULT_MAX_PRODUCTS
    product_threshold: int = DEFAULT_PRODUCT_THRESHOLD  # recs.py hides smaller result sets

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
    ``QueryError`` (one of its subclasses) when the banner cannot be built. Only the payload's
    ``recordQueries`` are used (§2); the context names the storefront's own api key.
    """
    queries = _record_queries(payload)
    meta = RecsMetadata.from_config(metadata)
    maybe_edits = [edit(page, meta) for edit in _edits_for(meta)]
    edits = [edit for edit in maybe_edits if edit is not None]
    if len(edits) < len(maybe_edits):
        return None
    edited = [
        _edit_query(query, edits) if query.get("id") == RECS_QUERY_ID else query
        for query in queries
    ]
    return {"context": {"apiKeys": [api_key]}, "recordQueries": edited}


# -- the §2 table -----------------------------------------------------------------------------
# Each edit reads the page and returns the settings it contributes, or None for "no search".


def _recently_viewed(page: PageContext, meta: RecsMetadata) -> dict[str, Any] | None:
    """JSv2: each id quoted, the category on category pages, ``limit`` = the number of ids."""
    ids = _unique(page.recently_viewed)[: meta.max_products]
    if not ids:
        return None
    quoted = " OR ".join(f'"{i}"' for i in ids)
    settings: dict[str, Any] = {
        "customANDQuery": f"id:({quoted})",
        "topIds": [{"key": "id", "value": i} for i in ids],
        "limit": len(ids),
    }
    if meta.page_type == "CATEGORY" and page.category_path:
        settings["query"] = {"categoryPath": ";".join(page.category_path)}
    return settings


def _category_path(page: PageContext, meta: RecsMetadata) -> dict[str, Any]:
    if not page.category_path:
        raise MissingInput("category_path", meta.page_type, meta.logic)
    return {"query": {"categoryPath": ";".join(page.category_path)}}


def _personalisation(page: PageContext, meta: RecsMetadata) -> dict[str, Any]:
    # @klevu/core's personalisation() modifier adds recentObjects only when there are clicks.
    settings: dict[str, Any] = {"personalisation": {"enablePersonalisation": True}}
    clicks = _unique(page.recent_clicks)[:MAX_RECENT_IDS]
    if clicks:
        settings["context"] = {"recentObjects": [_products({"id": i} for i in clicks)]}
    return settings


def _current_product(page: PageContext, meta: RecsMetadata) -> dict[str, Any]:
    """JSv2 excludes the product's group only when the page knows it."""
    product_id, group_id = _product(page, meta)
    settings: dict[str, Any] = {"context": {"recentObjects": [_products([{"id": product_id}])]}}
    if group_id:
        settings["excludeIds"] = [_group(group_id)]
    return settings


def _visual_source(page: PageContext, meta: RecsMetadata) -> dict[str, Any]:
    """JSv2: source records ``[{itemGroupId}, {id}]``; exclude the group, else the product."""
    product_id, group_id = _product(page, meta)
    records = ([{"itemGroupId": group_id}] if group_id else []) + [{"id": product_id}]
    exclude = _group(group_id) if group_id else {"key": "id", "value": product_id}
    return {"context": {"sourceObjects": [_products(records)]}, "excludeIds": [exclude]}


def _cart(page: PageContext, meta: RecsMetadata) -> dict[str, Any]:
    ids = _unique(product_id for product_id, _ in page.cart)
    if not ids:
        raise MissingInput("cart", meta.page_type, meta.logic)
    groups = _unique(group_id or product_id for product_id, group_id in page.cart)
    return {
        "context": {"recentObjects": [_products({"id": i} for i in ids)]},
        "excludeIds": [_group(g) for g in groups],
    }


_ANY_PAGE = None
_Edit = Callable[[PageContext, RecsMetadata], dict[str, Any] | None]
# (page type or _ANY_PAGE, logics, edit) — one line per row of the §2 table. HAND_PICKED has
# no row: it needs nothing and changes nothing.
_TABLE: tuple[tuple[str | None, frozenset[str], _Edit], ...] = (
    (_ANY_PAGE, frozenset({"RECENTLY_VIEWED"}), _recently_viewed),
    (
        "CATEGORY",
        frozenset({"TRENDING", "TRENDING_PERSONALIZED", "NEWEST_ARRIVALS", "CUSTOM_LOGIC"}),
        _category_path,
    ),
    (_ANY_PAGE, frozenset({"TRENDING_PERSONALIZED"}), _personalisation),
    (
        "PRODUCT",
        frozenset({"OTHER_ALSO_VIEWED", "SIMILAR", "BOUGHT_TOGETHER_PDP", "CUSTOM_LOGIC"}),
        _current_product,
    ),
    ("PRODUCT", frozenset({"VISUALLY_SIMILAR"}), _visual_source),
    ("CHECKOUT", frozenset({"BOUGHT_TOGETHER", "CUSTOM_LOGIC"}), _cart),
)


def _edits_for(meta: RecsMetadata) -> list[_Edit]:
    return [
        edit
        for page_type, logics, edit in _TABLE
        if page_type in (_ANY_PAGE, meta.page_type) and meta.logic in logics
    ]


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


def _edit_query(query: dict[str, Any], edits: list[dict[str, Any]]) -> dict[str, Any]:
    settings = query.get("settings", {})
    for edit in edits:
        settings = _merge(edit, settings)
    return {**query, "settings": settings}


def _merge(ours: object, theirs: object) -> object:
    """Ours over theirs, without touching either (the precedence in the module docstring)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return {
            **theirs,
            **{
                key: _merge(value, theirs[key]) if key in theirs else value
                for key, value in ours.items()
            },
        }
    if isinstance(ours, list) and isinstance(theirs, list):
        return ours + [item for item in theirs if item not in ours]
    return ours


def _count(value: object, default: int, *, minimum: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return value
    return default


def _product(page: PageContext, meta: RecsMetadata) -> tuple[str, str | None]:
    """The shown product's id, and its group id when the page knows one."""
    if not page.product_id:
        raise MissingInput("product_id", meta.page_type, meta.logic)
    return page.product_id, page.item_group_id or None


def _products(records: Iterable[dict[str, str]]) -> dict[str, Any]:
    return {"typeOfRecord": PRODUCT_RECORD, "records": list(records)}


def _group(group_id: str) -> dict[str, Any]:
    return {"key": "itemGroupId", "value": group_id}


def _unique(ids: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))
