"""Whether a config answer shows a banner: JSv2's checks (docs/klevu-wire-format.md §2)."""

from __future__ import annotations

import pytest

from storefront.klevu.banners.rules import Show, banner_verdict

STATIC = [{"targetUrl": "/sale", "contentType": "image", "image": []}]


def answer(search=None, static=STATIC, **metadata):
    base = {
        "recsKey": "k-1",
        "logic": "TRENDING",
        "pageType": "HOME",
        "enabled": True,
        "action": None,
    }
    return {"metadata": {**base, **metadata}, "search": search or {}, "staticContent": static}


@pytest.mark.parametrize(
    "config, show, why",
    [
        # JSv2 shows a banner only when enabled is true: missing, null or false hide it
        (answer(), Show.PRODUCTS, "enabled and complete"),
        (answer(enabled=False), Show.NOTHING, "disabled"),
        (answer(enabled=None), Show.NOTHING, "enabled null"),
        (
            {"metadata": {"recsKey": "k-1", "logic": "TRENDING", "pageType": "HOME"}},
            Show.NOTHING,
            "enabled missing",
        ),
        (answer(enabled="true"), Show.NOTHING, "enabled as text is not true"),
        # a missing recsKey, logic or pageType hides it too
        (answer(recsKey=None), Show.NOTHING, "no recsKey"),
        (answer(logic=""), Show.NOTHING, "no logic"),
        (answer(pageType=None), Show.NOTHING, "no pageType"),
        # metadata.action; search.recsAction only hides (JSv2 reads it for nothing else)
        (answer(action="HIDE_RECOMMENDATION"), Show.NOTHING, "hidden by metadata.action"),
        (
            answer(search={"recsAction": "HIDE_RECOMMENDATION"}),
            Show.NOTHING,
            "hidden by search.recsAction",
        ),
        (answer(action="STATIC_CONTENT"), Show.STATIC_CONTENT, "static by metadata.action"),
        (
            answer(search={"recsAction": "STATIC_CONTENT"}),
            Show.PRODUCTS,
            "search.recsAction does not make a banner static",
        ),
        (
            answer(action="STATIC_CONTENT", search={"recsAction": "HIDE_RECOMMENDATION"}),
            Show.STATIC_CONTENT,
            "metadata.action decides before search.recsAction is read",
        ),
        (answer(action="STATIC_CONTENT", static=[]), Show.NOTHING, "static without content"),
        (answer(action="STATIC_CONTENT", static=None), Show.NOTHING, "static content not a list"),
        (answer(action="SOMETHING_NEW"), Show.PRODUCTS, "an unknown action shows products"),
        ({"metadata": "broken"}, Show.NOTHING, "metadata not an object"),
        ({}, Show.NOTHING, "no metadata"),
    ],
)
def test_banner_verdict(config, show, why):
    verdict = banner_verdict(config)
    assert verdict.show is show, why
    assert bool(verdict.reason) == (show is Show.NOTHING)
