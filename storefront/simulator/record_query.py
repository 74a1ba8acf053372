"""One record query of a search request, run against the simulator's index.

docs/klevu-wire-format.md §3.

Pure: settings in, a page of indexed products out. The order of work mirrors what Klevu
documents for its settings: filter (term, categoryPath, customANDQuery, typeOfRecords), add
``includeIds``, drop ``excludeIds``, rank by the request type, let an explicit ``sort`` win
over that ranking, then — only for relevance order — boost by personalisation and pin
``topIds``, and finally page with ``offset``/``limit``. Unknown settings keys are ignored, as
Klevu ignores them; known keys with a wrong shape are rejected, so a broken client is noticed.

Ranking is a stand-in for Klevu's A.I., simple enough to predict in a test:
trending = ``popularity``; new arrivals = ``added``; also-viewed / similar = nearest to the
context products (same category, then same department); also-bought = complementary
departments; visually similar = same colour as the source products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .custom_query import QueryError, compile_query
from .records import Indexed

REQUEST_TYPES = frozenset(
    {
        "SEARCH",
        "CATNAV",
        "RECS_NEW_ARRIVALS",
        "RECS_SIMILAR",
        "RECS_TRENDING",
        "RECS_ALSO_VIEWED",
        "RECS_ALSO_BOUGHT",
        "RECS_SIMILAR_IMAGES",
        "RECS_CUSTOM",
    }
)
RELEVANCE = "RELEVANCE"
PRODUCT = "KLEVU_PRODUCT"
# Small on purpose: a query that forgets its limit shows up as a short banner, not the catalog.
DEFAULT_LIMIT = 5
ID_KEYS = ("id", "itemGroupId")
# Requests about "the products in context": showing those very products back would be useless.
RELATED_TYPES = frozenset(
    {"RECS_ALSO_VIEWED", "RECS_SIMILAR", "RECS_ALSO_BOUGHT", "RECS_SIMILAR_IMAGES"}
)


class BadRecordQuery(ValueError):
    """The record query is malformed; the message is returned as ``meta.error``."""


@dataclass(frozen=True)
class QueryResult:
    page: list[Indexed]
    total: int
    term: str
    personalised: bool


# -- reading settings -----------------------------------------------------------------------
def _whole(settings: dict, key: str, default: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRecordQuery(f"settings.{key} must be a whole number >= 0")
    return value


def _object(parent: dict, key: str, where: str) -> dict:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRecordQuery(f"{where}{key} must be an object")
    return value


def _string(parent: dict, key: str, where: str, default: str = "") -> str:
    value = parent.get(key, default)
    if not isinstance(value, str):
        raise BadRecordQuery(f"{where}{key} must be a string")
    return value


def _id_refs(settings: dict, key: str) -> list[tuple[str, str]]:
    """``[{key: "id"|"itemGroupId", value}]`` as (key, value) pairs, in the given order."""
    refs = settings.get(key, [])
    if not isinstance(refs, list) or not all(
        isinstance(r, dict) and r.get("key") in ID_KEYS and isinstance(r.get("value"), str)
        for r in refs
    ):
        raise BadRecordQuery(
            f"settings.{key} must be a list of {{key: 'id'|'itemGroupId', value: string}}"
        )
    return [(r["key"], r["value"]) for r in refs]


def _context_refs(context: dict, key: str) -> list[tuple[str, str]]:
    """Product references from ``recentObjects``/``sourceObjects``, newest first."""
    groups = context.get(key, [])
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("records"), list) for g in groups
    ):
        raise BadRecordQuery(f"context.{key} must be a list of {{typeOfRecord, records: [...]}}")
    refs = []
    for group in groups:
        if group.get("typeOfRecord", PRODUCT) != PRODUCT:
            continue
        for record in group["records"]:
            if not isinstance(record, dict):
                raise BadRecordQuery(f"context.{key} records must be objects")
            refs += [(k, record[k]) for k in ID_KEYS if isinstance(record.get(k), str)]
    return refs


def _matches(item: Indexed, refs: list[tuple[str, str]]) -> bool:
    return any(item.record[key] == value for key, value in refs)


def _context_products(index: Sequence[Indexed], refs: list[tuple[str, str]]) -> list[Indexed]:
    """The products a context names. ``[{id}, {itemGroupId}]`` describes one product: its id
    is the precise reference, the group only counts when no id is given (else every sibling
    variant, in other colours, would become a source too)."""
    ids = [ref for ref in refs if ref[0] == "id"]
    return [item for item in index if _matches(item, ids or refs)]


# -- filtering ------------------------------------------------------------------------------
def _term_words(term: str) -> list[str]:
    return [] if term.strip() in ("", "*") else term.lower().split()


def _haystack(item: Indexed) -> str:
    r = item.record
    return " ".join((r["name"], r["brand"], r["category"], r["shortDesc"], r["color"])).lower()


def _in_category(item: Indexed, category_path: str) -> bool:
    wanted = [part.casefold() for part in category_path.split(";") if part]
    have = [part.casefold() for part in item.product.category.path]
    return have[: len(wanted)] == wanted


def _filtered(
    index: Sequence[Indexed], settings: dict, query: dict, words: list[str]
) -> list[Indexed]:
    types = settings.get("typeOfRecords", [PRODUCT])
    if not isinstance(types, list):
        raise BadRecordQuery("settings.typeOfRecords must be a list")
    category_path = _string(query, "categoryPath", "settings.query.")
    try:
        custom = compile_query(
            _string(settings, "customANDQuery", "settings."), index[0].record if index else ()
        )
    except QueryError as exc:
        raise BadRecordQuery(str(exc)) from exc
    if PRODUCT not in types:
        return []
    return [
        item
        for item in index
        if all(word in _haystack(item) for word in words)
        and (not category_path or _in_category(item, category_path))
        and custom(item.record)
    ]


# -- ranking --------------------------------------------------------------------------------
def _nearness(item: Indexed, sources: list[Indexed]) -> int:
    """0: a source's category; 1: a source's department; 2: elsewhere (or no sources)."""
    path = item.product.category.path
    if any(s.product.category.path == path for s in sources):
        return 0
    if any(s.product.category.path[0] == path[0] for s in sources):
        return 1
    return 2


def _complementarity(item: Indexed, sources: list[Indexed]) -> int:
    """What goes with the sources: 0 their department's other categories (tent → backpack),
    1 other departments, 2 the very categories the visitor already has."""
    nearness = _nearness(item, sources)
    if not sources or nearness == 1:
        return 0
    return 1 if nearness == 2 else 2


def _price_gap(item: Indexed, sources: list[Indexed]) -> float:
    price = float(item.record["salePrice"])
    return min((abs(price - float(s.record["salePrice"])) for s in sources), default=0.0)


def _colour_match(item: Indexed, sources: list[Indexed]) -> int:
    return 0 if any(s.product.color == item.product.color for s in sources) else 1


def _name_hits(item: Indexed, words: list[str]) -> int:
    """Search relevance: words found in the name count more than words found elsewhere."""
    return sum(word in item.record["name"].lower() for word in words)


def _unpopularity(item: Indexed) -> int:
    return -item.product.popularity


def _newest_first(item: Indexed) -> int:
    """ISO dates order as their digits do: no date parsing needed."""
    return -int(item.product.added.replace("-", ""))


RankKey = Callable[[Indexed], tuple]


def _rank_key(request_type: str, sources: list[Indexed], words: list[str]) -> RankKey:
    """Popularity breaks every tie, so equal candidates still come in a stable order."""
    keys: dict[str, RankKey] = {
        "SEARCH": lambda i: (-_name_hits(i, words), _unpopularity(i)),
        "RECS_NEW_ARRIVALS": lambda i: (_newest_first(i), _unpopularity(i)),
        "RECS_ALSO_VIEWED": lambda i: (_nearness(i, sources), _unpopularity(i)),
        "RECS_SIMILAR": lambda i: (_nearness(i, sources), _price_gap(i, sources), _unpopularity(i)),
        "RECS_ALSO_BOUGHT": lambda i: (_complementarity(i, sources), _unpopularity(i)),
        "RECS_SIMILAR_IMAGES": lambda i: (
            _colour_match(i, sources),
            _nearness(i, sources),
            _unpopularity(i),
        ),
    }
    return keys.get(request_type, lambda i: (_unpopularity(i),))


SORTS: dict[str, tuple[Callable[[Indexed], Any], bool]] = {
    "PRICE_ASC": (lambda i: float(i.record["salePrice"]), False),
    "PRICE_DESC": (lambda i: float(i.record["salePrice"]), True),
    "NAME_ASC": (lambda i: i.record["name"].casefold(), False),
    "NAME_DESC": (lambda i: i.record["name"].casefold(), True),
    "NEW_ARRIVAL_ASC": (lambda i: i.product.added, False),
    "NEW_ARRIVAL_DESC": (lambda i: i.product.added, True),
}
# The catalog has no ratings: these sorts are accepted and keep the relevance order.
UNRATED_SORTS = frozenset({"RATING_ASC", "RATING_DESC"})


def _pin(items: list[Indexed], top: list[tuple[str, str]]) -> list[Indexed]:
    pinned = [item for ref in top for item in items if _matches(item, [ref])]
    pinned = list(dict.fromkeys(pinned))
    return pinned + [item for item in items if item not in pinned]


# -- the query ------------------------------------------------------------------------------
def run_record_query(
    record_query: dict, index: Sequence[Indexed], request_context: dict | None = None
) -> QueryResult:
    """``request_context`` is the request's top-level ``context``; the query's own wins."""
    request_type = record_query.get("typeOfRequest")
    if request_type not in REQUEST_TYPES:
        raise BadRecordQuery(f"typeOfRequest must be one of {sorted(REQUEST_TYPES)}")
    settings = _object(record_query, "settings", "")
    query = _object(settings, "query", "settings.")
    context = {**(request_context or {}), **_object(settings, "context", "settings.")}
    limit, offset = _whole(settings, "limit", DEFAULT_LIMIT), _whole(settings, "offset", 0)
    sort = _string(settings, "sort", "settings.", RELEVANCE)
    if sort not in SORTS and sort not in UNRATED_SORTS and sort != RELEVANCE:
        raise BadRecordQuery(f"settings.sort {sort!r} is not a Klevu sort")
    personalisation = _object(settings, "personalisation", "settings.")
    include, exclude = _id_refs(settings, "includeIds"), _id_refs(settings, "excludeIds")
    top = _id_refs(settings, "topIds")
    recent_refs = _context_refs(context, "recentObjects")
    source_refs = (
        _context_refs(context, "sourceObjects")
        if request_type == "RECS_SIMILAR_IMAGES"
        else recent_refs
    )
    term = _string(query, "term", "settings.query.", "*")
    words = _term_words(term)

    sources = _context_products(index, source_refs)
    hidden = sources if request_type in RELATED_TYPES else []
    pool = _filtered(index, settings, query, words)
    pool += [item for item in index if _matches(item, include) and item not in pool]
    pool = [item for item in pool if not _matches(item, exclude) and item not in hidden]

    ranked = sorted(pool, key=_rank_key(request_type, sources, words))
    personalised = False
    if sort in SORTS:
        key, reverse = SORTS[sort]
        ranked = sorted(ranked, key=key, reverse=reverse)
    else:
        recent = _context_products(index, recent_refs)
        if personalisation.get("enablePersonalisation") is True and recent:
            ranked = sorted(ranked, key=lambda item: _nearness(item, recent))
            personalised = True
        ranked = _pin(ranked, top)
    return QueryResult(
        page=ranked[offset : offset + limit],
        total=len(ranked),
        term=term,
        personalised=personalised,
    )
