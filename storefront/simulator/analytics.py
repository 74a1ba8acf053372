"""Analytics events as Klevu's collector receives them, in three dialects.

docs/klevu-wire-format.md §5.

The storefront sends the ``klevu-recs.js`` dialect (``event_data`` with ``tags``,
``user_profile.session_id``); ``@klevu/core`` writes the same with a camelCase
``user_profile.sessionId``; an older flat dialect puts ``event_list_id``, ``event_tags`` and
``items`` at the top. All three are checked with the same rules and reduced to one summary,
so the dashboard and tests read a click the same whichever client sent it.
"""

from __future__ import annotations

RECS_EVENTS = ("view_recs_list", "select_recs_list")
PAGE_TYPE_TAG = "recsPageType:"


class BadEvent(ValueError):
    """An event no dialect accepts; the whole batch is refused (400)."""


def dialect(event: dict) -> str:
    """Which client wrote the event. Both Klevu libraries' events carry ``event_data`` (and
    ``event_version``, which the shop sends too, as ``@klevu/core`` does); ``@klevu/core`` alone
    writes the session id camelCase."""
    profile = event.get("user_profile")
    if isinstance(profile, dict) and "sessionId" in profile:
        return "core"
    if "event_data" in event:
        return "storefront"
    if "event_list_id" in event or "items" in event:
        return "flat"
    raise BadEvent("event has neither event_data nor event_list_id/items")


def _text(obj: dict, key: str, where: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadEvent(f"{where}{key} must be a non-empty string")
    return value


def _object(obj: dict, key: str, *, required: bool) -> dict:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise BadEvent(f"{key} must be an object")
    return value


def _list_fields(event: dict, kind: str) -> dict:
    """The list's fields under one set of names, wherever the dialect keeps them."""
    if kind == "flat":
        return {
            "list_id": event.get("event_list_id"),
            "list_name": event.get("event_list_name"),
            "list_logic": event.get("event_list_logic"),
            "tags": event.get("event_tags"),
            "items": event.get("items"),
        }
    return _object(event, "event_data", required=True)


def _session_id(event: dict, kind: str) -> str | None:
    profile = _object(event, "user_profile", required=False)
    key = {"core": "sessionId", "storefront": "session_id"}.get(kind)
    return _text(profile, key, "user_profile.") if key else None


def _items(data: dict, event_name: str) -> list[dict]:
    """A click names its product, unless it is a static banner's click (JSv2's staticClick
    sends ``static_content`` instead of items)."""
    items = data.get("items")
    if items is None and (event_name != "select_recs_list" or data.get("static_content")):
        return []
    if not isinstance(items, list) or (event_name == "select_recs_list" and not items):
        raise BadEvent(f"{event_name} needs a list of items")
    summary = []
    for position, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise BadEvent(f"items[{position}] must be an object")
        index = item.get("index")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or index < 1
        ):
            raise BadEvent(f"items[{position}].index must be a 1-based position")
        summary.append(
            {
                "item_id": _text(item, "item_id", f"items[{position}].", required=True),
                "item_name": item.get("item_name"),
                "index": index,
                "price": item.get("price"),
            }
        )
    return summary


def summarise(event: object) -> dict:
    """Check one event and reduce it to what a person (or test) wants to see."""
    if not isinstance(event, dict):
        raise BadEvent("each event must be an object")
    kind = dialect(event)
    name = _text(event, "event", "", required=True)
    assert name is not None  # required
    if kind == "core":
        _text(event, "event_version", "")
    data = _list_fields(event, kind)
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BadEvent("tags must be a list of strings")
    is_recs = name in RECS_EVENTS
    page_type = next((t[len(PAGE_TYPE_TAG) :] for t in tags if t.startswith(PAGE_TYPE_TAG)), None)
    return {
        "dialect": kind,
        "event": name,
        "api_key": _text(event, "event_apikey", "", required=True),
        "session_id": _session_id(event, kind),
        "list_id": _text(data, "list_id", "", required=is_recs),
        "list_name": data.get("list_name"),
        "list_logic": data.get("list_logic"),
        "page_type": page_type,
        "spot_id": data.get("spot_id"),
        "segment_id": data.get("segment_id"),
        "segment_name": data.get("segment_name"),
        "items": _items(data, name),
        "static_content": _static_content(data),
        "action": data.get("action"),
    }


def _static_content(data: dict) -> list[dict] | None:
    content = data.get("static_content")
    if content is None:
        return None
    if not isinstance(content, list) or not all(isinstance(c, dict) for c in content):
        raise BadEvent("static_content must be a list of objects")
    return content
