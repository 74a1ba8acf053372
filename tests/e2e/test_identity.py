"""Step 1 in Chromium: who the visitor is to Klaviyo decides the banners Klevu shows them.

Email links (``_kx``), consent, the demo persona switcher, "forget me", and whatever a browser
may carry in Klaviyo's ``__kla_id`` cookie. The banner a visitor should see is the simulator's
own config answer for the segments the personas file gives them.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.helpers import exchange_id, persona_segments

HOME_PICKS = "k-home-picks"
KLA_ID = "__kla_id"


def kla_id(payload: object) -> str:
    """A ``__kla_id`` value as Klaviyo writes it: standard base64 of compact JSON."""
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def expect_home_banner_for(shopper, klevu_config, persona_key: str | None) -> str:
    """Open the home page and check its top banner is the variant for the persona's segments."""
    title = klevu_config(HOME_PICKS, persona_segments(persona_key))["metadata"]["title"]
    shopper.page.goto("/")
    expect(shopper.banner(HOME_PICKS).locator(".kuRECS-title")).to_have_text(title)
    expect(shopper.items(HOME_PICKS).first).to_be_visible()
    return title


def expect_anonymous(shopper, klevu_config) -> None:
    expect_home_banner_for(shopper, klevu_config, None)
    badge = shopper.page.get_by_test_id("identity-badge")
    expect(badge).to_have_attribute("data-persona", "")
    expect(badge).to_contain_text("Anonymous")
    assert shopper.segments() == []


def test_email_link_lands_the_visitor_in_their_segment(shopper, page: Page, klevu_config, base_url):
    page.goto("/")
    shopper.accepts_consent()
    anonymous_title = klevu_config(HOME_PICKS)["metadata"]["title"]

    page.goto(f"/?utm_source=klaviyo&_kx={quote(exchange_id('oliver'))}&utm_campaign=vip-edit")

    expect(page).to_have_url(f"{base_url}/?utm_source=klaviyo&utm_campaign=vip-edit")
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "oliver")
    title = klevu_config(HOME_PICKS, persona_segments("oliver"))["metadata"]["title"]
    assert title != anonymous_title, "the demo data should give Oliver his own banner"
    expect(shopper.banner(HOME_PICKS).locator(".kuRECS-title")).to_have_text(title)
    assert sorted(shopper.segments()) == sorted(persona_segments("oliver"))
    assert shopper.cookie(KLA_ID), "Klaviyo's cookie was not written"


def test_email_link_before_the_consent_choice_waits_for_accept(
    shopper, page: Page, klevu_config, base_url
):
    page.goto(f"/c/outdoor-tents?_kx={quote(exchange_id('maya'))}")

    expect(page).to_have_url(f"{base_url}/c/outdoor-tents")
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "")
    assert shopper.cookie(KLA_ID) is None, "identified before the visitor said yes"

    shopper.accepts_consent()
    expect(page).to_have_url(f"{base_url}/c/outdoor-tents")
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "maya")
    expect_home_banner_for(shopper, klevu_config, "maya")
    assert shopper.segments() == persona_segments("maya")


def test_consent_then_persona_shows_the_persona_banner(shopper, page: Page, klevu_config):
    page.goto("/")
    shopper.accepts_consent()
    anonymous_title = expect_home_banner_for(shopper, klevu_config, None)

    shopper.becomes("priya")

    assert expect_home_banner_for(shopper, klevu_config, "priya") != anonymous_title
    assert shopper.segments() == persona_segments("priya")


def test_withdrawing_consent_forgets_the_visitor(shopper, page: Page, klevu_config):
    shopper.becomes("sam")
    expect_home_banner_for(shopper, klevu_config, "sam")
    assert shopper.cookie(KLA_ID)

    page.goto("/demo/personas")
    page.get_by_test_id("privacy-decline").click()

    assert shopper.cookie(KLA_ID) is None, "__kla_id survived the withdrawal of consent"
    expect_anonymous(shopper, klevu_config)
    # A later email link must not identify someone who said no.
    page.goto(f"/?_kx={quote(exchange_id('sam'))}")
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-consent", "denied")
    assert shopper.cookie(KLA_ID) is None
    expect_anonymous(shopper, klevu_config)


def test_declining_on_the_first_visit_removes_klaviyos_cookie(
    shopper, page: Page, context, klevu_config, base_url
):
    # Klaviyo's script identified this browser on an earlier visit.
    context.add_cookies(
        [
            {
                "name": KLA_ID,
                "url": base_url,
                "value": kla_id(
                    {
                        "cid": "ZWY5Y2EzZTgtOTMyNC00ZWEwLWI5MjMtYTAzYzUxNDU2YzAz",
                        "$exchange_id": exchange_id("maya"),
                    }
                ),
            }
        ]
    )
    page.goto("/")
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-consent", "pending")

    shopper.declines_consent()

    assert shopper.cookie(KLA_ID) is None, "__kla_id survived the decline"
    expect_anonymous(shopper, klevu_config)


def test_forget_me_returns_to_anonymous(shopper, page: Page, klevu_config):
    shopper.becomes("sam")
    persona_title = expect_home_banner_for(shopper, klevu_config, "sam")
    assert persona_title != klevu_config(HOME_PICKS)["metadata"]["title"]

    shopper.forgets_me()

    assert shopper.cookie(KLA_ID) is None
    expect_anonymous(shopper, klevu_config)


def test_a_malformed_klaviyo_cookie_is_an_anonymous_visitor(
    shopper, page: Page, context, klevu_config, base_url
):
    page.goto("/")
    shopper.accepts_consent()
    valid = kla_id({"cid": "YWUyOGU5ZjM", "$exchange_id": exchange_id("oliver")})
    # The well-formed cookie identifies Oliver: the cookie is read, so the cases below count.
    context.add_cookies([{"name": KLA_ID, "url": base_url, "value": valid}])
    page.goto("/")
    expect(page.get_by_test_id("identity-badge")).to_have_attribute("data-persona", "oliver")

    malformed = {
        "not base64": "%%%not-base64%%%",
        "cut short": valid[: len(valid) // 2 + 1],
        "not an object": kla_id(["cid", exchange_id("oliver")]),
        "exchange id not a string": kla_id({"cid": "YWUyOGU5ZjM", "$exchange_id": 42}),
        "exchange id of the wrong form": kla_id({"$exchange_id": "<b>oliver</b>"}),
        "too long": "A" * 3600,
    }
    for case, value in malformed.items():
        context.add_cookies([{"name": KLA_ID, "url": base_url, "value": value}])
        response = page.goto("/")
        assert response is not None and response.status == 200, case
        expect(page.get_by_test_id("identity-badge"), case).to_contain_text("Anonymous")
        expect(shopper.banner(HOME_PICKS).locator(".kuRECS-title"), case).to_have_text(
            klevu_config(HOME_PICKS)["metadata"]["title"]
        )
        assert shopper.segments() == [], case
