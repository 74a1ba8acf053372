"""The dashboard's analytics check: does an event carry what Klevu's reports need?

Klevu's collector answers 200 to events it cannot use, which is why "analytics not showing
up" is a common question. The collector route refuses only what no dialect can read
(``analytics.py``); this checks every event it accepted against the guide's example
(docs/klevu-wire-format.md §5) and the account's banners, and gives each problem as one line
a person can act on. An empty list: the event passes.
"""

from __future__ import annotations

from collections.abc import Mapping

from .analytics import RECS_EVENTS
from .recs_configs import RecsConfig, Variant

ITEM_IDS = ("item_id", "item_group_id", "item_variant_id")


def _banner(list_id: str | None, recs: Mapping[str, RecsConfig]) -> RecsConfig | None:
    """The banner an event's ``list_id`` names: its spot key (what JSv2 sends) or recs key."""
    return next((c for c in recs.values() if list_id in (c.spot_key, c.recs_key)), None)


def _variant(config: RecsConfig, segment_id: object) -> Variant:
    return next((v for v in config.segment_variants if v.segment == segment_id), config.default)


def _price(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def item_problems(event_name: str, items: object) -> list[str]:
    found: list[str] = []
    if not isinstance(items, list):
        return found  # the collector refused anything else
    for position, item in enumerate(items, 1):
        where = f"items[{position}]"
        for key in ITEM_IDS:
            if not isinstance(item.get(key), str) or not item.get(key):
                found.append(f"{where}.{key} missing: Klevu matches products by it")
        index = item.get("index")
        if index is None:
            found.append(f"{where}.index missing: the product's 1-based position in the banner")
        elif event_name == "view_recs_list" and index != position:
            found.append(f"{where}.index is {index}, expected {position}: indexes run from 1")
        if "price" in item and not _price(item["price"]):
            found.append(f"{where}.price {item['price']!r} is not a number")
        if "price" in item and not item.get("currency"):
            found.append(f"{where} has a price without a currency")
    return found


def problems(payload: dict, summary: dict, recs: Mapping[str, RecsConfig]) -> list[str]:
    """What Klevu would be missing in this event; ``summary`` is ``analytics.summarise``'s."""
    name = summary["event"]
    if name not in RECS_EVENTS:
        return [f"event {name!r}: Klevu's recommendation reports read only {RECS_EVENTS}"]
    found = []
    if not summary["session_id"]:
        found.append("no session id: Klevu cannot tie the event to a visitor and their segments")
    for key in ("list_name", "list_logic"):
        if not isinstance(summary[key], str) or not summary[key]:
            found.append(
                f"{key} missing (the config's {'title' if key == 'list_name' else 'logic'})"
            )
    config = _banner(summary["list_id"], recs)
    if config is None:
        found.append(
            f"list_id {summary['list_id']!r} is neither a recs key nor a spot key of this "
            "account: Klevu cannot attribute the event to a banner"
        )
    if summary["dialect"] != "core" and summary["page_type"] is None:
        found.append("tags lack recsPageType:<page type>")
    elif config is not None and summary["page_type"] not in (None, config.page_type):
        found.append(
            f"recsPageType:{summary['page_type']}, but the banner is on {config.page_type}"
        )
    segment = summary["segment_id"]
    if config is not None and segment and _variant(config, segment).segment != segment:
        found.append(f"segment_id {segment!r} has no variant in banner {config.recs_key}")
    static = config is not None and _variant(config, segment).action == "STATIC_CONTENT"
    data = payload.get("event_data") or payload  # the flat dialect keeps items at the top
    if static:
        if not summary["static_content"]:
            found.append("a static-content banner's event without static_content")
        if summary["action"] != "STATIC_CONTENT":
            found.append("a static-content banner's event without action STATIC_CONTENT")
    elif summary["static_content"]:
        found.append("static_content in an event for a product banner")
    elif not data.get("items"):
        found.append(f"{name} without items: Klevu counts no product")
    return found + item_problems(name, data.get("items"))
