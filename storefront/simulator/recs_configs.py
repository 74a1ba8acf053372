"""Recommendation banners as Klevu's config CDN serves them (docs/klevu-wire-format.md §2).

A banner (recs key) has a default variant and segment variants in priority order; the CDN
answers the first variant whose segment is among the visitor's ``sids``. Variants differ in
title, logic, look and baked-in record query settings, so switching persona visibly changes
the banner. The demo banners live in ``recs_configs.json`` — data a sales engineer can edit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from . import looks, personas

RECS_LIST_ID = "klevuRECSItemList"
PAGE_TYPES = ("HOME", "CATEGORY", "PRODUCT", "CHECKOUT")
ACTIONS = ("STATIC_CONTENT", "HIDE_RECOMMENDATION")
# Which search request each banner logic becomes (the search service ranks by request type).
REQUEST_FOR_LOGIC = {
    "TRENDING": "RECS_TRENDING",
    "TRENDING_PERSONALIZED": "RECS_TRENDING",
    "NEWEST_ARRIVALS": "RECS_NEW_ARRIVALS",
    "RECENTLY_VIEWED": "RECS_CUSTOM",
    "HAND_PICKED": "RECS_CUSTOM",
    "OTHER_ALSO_VIEWED": "RECS_ALSO_VIEWED",
    "SIMILAR": "RECS_SIMILAR",
    "BOUGHT_TOGETHER": "RECS_ALSO_BOUGHT",
    "BOUGHT_TOGETHER_PDP": "RECS_ALSO_BOUGHT",
    "VISUALLY_SIMILAR": "RECS_SIMILAR_IMAGES",
    "CUSTOM_LOGIC": "RECS_CUSTOM",
}


class BadRecsConfig(ValueError):
    """The demo data is inconsistent: caught at start-up, never as an empty banner."""


@dataclass(frozen=True)
class Variant:
    segment: str | None
    title: str
    logic: str
    look: str
    max_products: int
    product_threshold: int
    settings: dict = field(default_factory=dict)
    action: str | None = None
    static_content: list = field(default_factory=list)


@dataclass(frozen=True)
class RecsConfig:
    recs_key: str
    page_type: str
    spot_key: str
    spot_name: str
    default: Variant
    segment_variants: tuple[Variant, ...]
    # False or True as Klevu's console sets it; None: the answer has no "enabled" at all (an
    # old or hand-made config), which JSv2 reads as "do not show".
    enabled: bool | None = True

    def variant_for(self, sids: Iterable[str]) -> Variant:
        visitor = set(sids)
        return next((v for v in self.segment_variants if v.segment in visitor), self.default)


def _variant(raw: dict, banner: dict, segment: str | None, where: str) -> Variant:
    variant = Variant(
        segment=segment,
        title=raw["title"],
        logic=raw["logic"],
        look=raw["look"],
        max_products=raw.get("maxProducts", banner["maxProducts"]),
        product_threshold=raw.get("productThreshold", banner["productThreshold"]),
        settings=raw.get("settings", {}),
        action=raw.get("action"),
        static_content=raw.get("staticContent", []),
    )
    problems = [
        variant.logic not in REQUEST_FOR_LOGIC and f"logic {variant.logic!r}",
        variant.look not in looks.LOOKS and f"look {variant.look!r}",
        variant.action not in (None, *ACTIONS) and f"action {variant.action!r}",
        segment is not None
        and personas.segment_name(segment) is None
        and f"segment {segment!r} (not in personas.json)",
        (variant.action == "STATIC_CONTENT") != bool(variant.static_content)
        and "staticContent (exactly the STATIC_CONTENT variants have it)",
    ]
    found = [p for p in problems if isinstance(p, str)]
    if found:
        raise BadRecsConfig(f"{where}: bad {', '.join(found)}")
    return variant


def parse_configs(raw: dict) -> dict[str, RecsConfig]:
    configs = {}
    for key, banner in raw.items():
        if banner["pageType"] not in PAGE_TYPES:
            raise BadRecsConfig(f"{key}: bad pageType {banner['pageType']!r}")
        if banner.get("enabled", True) not in (True, False, None):
            raise BadRecsConfig(f"{key}: enabled must be true, false or null")
        configs[key] = RecsConfig(
            recs_key=key,
            page_type=banner["pageType"],
            spot_key=banner["spotKey"],
            spot_name=banner["spotName"],
            default=_variant(banner["default"], banner, None, f"{key} default"),
            segment_variants=tuple(
                _variant(v, banner, v["segment"], f"{key} {v['segment']}")
                for v in banner["segments"]
            ),
            enabled=banner.get("enabled", True),
        )
    return configs


def demo_configs_raw() -> dict:
    """``recs_configs.json`` as written: what scenario packs edit before it is parsed."""
    return json.loads(resources.files(__package__).joinpath("recs_configs.json").read_text("utf-8"))


@cache
def demo_configs() -> dict[str, RecsConfig]:
    return parse_configs(demo_configs_raw())


def search_payload(variant: Variant, api_key: str) -> dict:
    """The record query a banner searches with, before the shop adds its page context."""
    baked = variant.settings
    settings = {
        "limit": variant.max_products,
        "typeOfRecords": ["KLEVU_PRODUCT"],
        **baked,
        "query": {"term": "*", **baked.get("query", {})},
    }
    return {
        "context": {"apiKeys": [api_key]},
        "recordQueries": [
            {
                "id": RECS_LIST_ID,
                "typeOfRequest": REQUEST_FOR_LOGIC[variant.logic],
                "settings": settings,
            }
        ],
    }


def _with_shop_url(static_content: list, shop_url: str) -> list:
    return [
        {
            **content,
            "targetUrl": shop_url + content["targetUrl"],
            "image": [{**image, "url": shop_url + image["url"]} for image in content["image"]],
        }
        for content in static_content
    ]


def settings_answer(
    config: RecsConfig, variant: Variant, *, api_key: str, base_path: str, shop_url: str = ""
) -> dict:
    """The CDN's answer; ``search.payload`` is a JSON string, as Klevu sends it."""
    metadata: dict[str, object] = {
        "title": variant.title,
        "recsKey": config.recs_key,
        "pageType": config.page_type,
        "logic": variant.logic,
        "maxProducts": variant.max_products,
        "productThreshold": variant.product_threshold,
        "enabled": config.enabled,
        "spotKey": config.spot_key,
        "spotName": config.spot_name,
        "segmentKey": variant.segment,
        "segmentName": personas.segment_name(variant.segment) if variant.segment else None,
        "action": variant.action,
    }
    if config.enabled is None:
        del metadata["enabled"]
    return {
        "metadata": metadata,
        "search": {
            "basePath": base_path,
            "payload": json.dumps(search_payload(variant, api_key), separators=(",", ":")),
        },
        "templates": {"base": looks.template(variant.look)},
        "styles": {"base": looks.stylesheet()},
        "scripts": {"recsObject": ""},
        "staticContent": _with_shop_url(variant.static_content, shop_url),
    }
