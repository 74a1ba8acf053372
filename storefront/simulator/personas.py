"""Klaviyo segments of the demo personas: what Klevu's Klaviyo connector would look up.

Klevu resolves an exchange id to a Klaviyo profile and its segments; offline, the personas
in ``storefront/data/personas.json`` play the profiles. Only the identifier (the part before
the ``.``) is matched, so the demo works whatever company id the shop is configured with.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def _personas() -> dict:
    return json.loads(
        resources.files("storefront").joinpath("data/personas.json").read_text("utf-8")
    )


def _identifier(exchange_id: str) -> str:
    """Email links may carry the identifier's base64 padding (``=``); profiles do not."""
    return exchange_id.split(".", 1)[0].rstrip("=")


def segments_for(exchange_id: str) -> list[str]:
    """The persona's segment ids; an unknown exchange id is a profile with no segments."""
    wanted = _identifier(exchange_id)
    for persona in _personas()["personas"]:
        if persona["identifier"].rstrip("=") == wanted:
            return list(persona["segments"])
    return []


def segment_name(segment_id: str) -> str | None:
    return _personas()["segments"].get(segment_id)
