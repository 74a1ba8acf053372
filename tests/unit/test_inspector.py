"""The page inspector: its reasons follow the facts, it is off for live keys, it keeps secrets.

``story.py`` is pure, so each reason a banner can be missing is checked from a list of notes;
the Flask glue is checked with the test client: off with a live api key unless asked for,
the api key masked, and step 4's data only for the browser that made the page view.
"""

from __future__ import annotations

import re

import pytest
import responses

from storefront import create_app
from storefront.config import from_env
from storefront.inspector.story import banner_story, mask
from storefront.klaviyo import encode_kla_id
from storefront.klevu.trace import Note
from tests.helpers import DEMO_ENV, app_config, exchange_id, free_port

KEY = "k-home-picks"
API_KEY = "klevu-1234567890"
CONFIG_URL = f"https://config-cdn.ksearchnet.com/recommendations/{API_KEY}/settings/{KEY}?sids=a"


def notes(*steps: tuple[str, dict]) -> list[Note]:
    return [Note(step, float(i), {"banner": KEY, **facts}) for i, (step, facts) in enumerate(steps)]


def config(hidden: str | None = None, **metadata) -> tuple[str, dict]:
    return (
        "config",
        {
            "metadata": {"title": "T", "logic": "TRENDING", **metadata},
            "source": "fresh",
            "hidden": hidden,
        },
    )


def search(records: int, threshold: int = 4) -> tuple[str, dict]:
    return (
        "search",
        {"body": {"context": {"apiKeys": [API_KEY]}}, "records": records, "threshold": threshold},
    )


@pytest.mark.parametrize(
    "steps, source, shown, reason",
    [
        (
            [config(), search(8), ("outcome", {"result": "shown", "token": "t"})],
            "fresh",
            True,
            None,
        ),
        (
            [config("metadata.enabled is not true", enabled=False)],
            "fresh",
            False,
            "the config's rules: metadata.enabled is not true",
        ),
        (
            [config("action HIDE_RECOMMENDATION", action="HIDE_RECOMMENDATION")],
            "fresh",
            False,
            "the config's rules: action HIDE_RECOMMENDATION",
        ),
        (
            [config(), search(2)],
            "fresh",
            False,
            "threshold: 2 records, fewer than productThreshold 4",
        ),
        ([config()], "fresh", False, "no search"),
        ([config(), ("outcome", {"result": "late"})], "late", False, "page deadline"),
        (
            [("outcome", {"result": "failed", "error": f"GET /x/{API_KEY}: HTTP 503"})],
            "failed",
            False,
            "Klevu call failed: GET /x/klevu-…7890: HTTP 503",
        ),
        ([config(), ("outcome", {"result": "breaker-open"})], "breaker-open", False, "breaker"),
        (
            [config(), ("outcome", {"result": "unbuildable", "error": "needs cart"})],
            "fresh",
            False,
            "cannot build the banner's query: needs cart",
        ),
        (
            [
                config(),
                search(8),
                ("template", {"error": "TypeError: not a function"}),
                ("outcome", {"result": "shown", "token": "t"}),
            ],
            "fresh",
            True,
            "template failed (TypeError: not a function)",
        ),
        (
            [
                ("config", {"metadata": {"title": "T"}, "source": "stale"}),
                search(8),
                ("outcome", {"result": "shown"}),
            ],
            "stale",
            True,
            None,
        ),
    ],
)
def test_each_reason_comes_from_the_facts(steps, source, shown, reason):
    story = banner_story(KEY, notes(*steps), API_KEY)
    assert (story.source, story.shown) == (source, shown)
    if reason is None:
        assert story.reason is None
    else:
        assert story.reason is not None and reason in story.reason


def test_calls_and_bodies_are_shown_with_the_key_masked():
    story = banner_story(
        KEY,
        notes(
            ("http", {"method": "GET", "url": CONFIG_URL, "status": 200, "ms": 12.5}),
            config(),
            search(8),
            ("outcome", {"result": "shown"}),
        ),
        API_KEY,
    )
    assert story.config is not None and story.search_body is not None
    assert story.config.url == CONFIG_URL.replace(API_KEY, "klevu-…7890")
    assert API_KEY not in story.search_body and "klevu-…7890" in story.search_body
    assert mask("no key here", API_KEY) == "no key here"


def test_other_banners_notes_are_not_mixed_in():
    mixed = [
        *notes(config(title="Mine")),
        Note("config", 1.0, {"banner": "k-other", "metadata": {"title": "X"}}),
    ]
    assert banner_story(KEY, mixed, API_KEY).title == "Mine"


@pytest.mark.parametrize(
    "env, expected",
    [
        (DEMO_ENV, True),
        ({"KLEVU_API_KEY": API_KEY}, False),
        ({"KLEVU_API_KEY": API_KEY, "STOREFRONT_INSPECTOR": "true"}, True),
        ({**DEMO_ENV, "STOREFRONT_INSPECTOR": "false"}, False),
    ],
)
def test_on_with_the_simulator_off_with_a_live_key_unless_asked(env, expected):
    assert from_env(env)["STOREFRONT_INSPECTOR"] is expected


@responses.activate
def test_live_mode_shows_no_inspector_and_serves_no_data(tmp_path):
    responses.add_passthru(re.compile(r"http://127\.0\.0\.1.*"))
    responses.add(
        responses.POST,
        re.compile(r"https://visitor\.service.*"),
        json={"sessionId": "s1", "segmentInfo": {"segments": [], "ttl": 60}},
    )
    app = create_app(
        app_config(
            f"http://127.0.0.1:{free_port()}",
            tmp_path,
            KLEVU_SIMULATOR_URL="",
            KLEVU_API_KEY=API_KEY,
            KLEVU_RECS_HOME="",
            OUTBOX_RELAY_IN_APP=False,
        )
    )
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert b'data-testid="inspector"' not in page.data
    assert b"inspector.js" not in page.data
    assert client.get("/inspector/events?pv=x").status_code == 404
    assert "shop_inspector" not in page.headers.get("Set-Cookie", "")


def test_step_four_answers_only_the_browser_that_made_the_page_view(app):
    mine = app.test_client()
    page = mine.get("/").get_data(as_text=True)
    found = re.search(r'data-page-view="(\w+)"', page)
    assert found, "no inspector on the page"
    page_view = found.group(1)
    assert mine.get(f"/inspector/events?pv={page_view}").status_code == 200

    stranger = app.test_client()
    assert stranger.get(f"/inspector/events?pv={page_view}").status_code == 404
    stranger.set_cookie("shop_inspector", "A" * 32)
    assert stranger.get(f"/inspector/events?pv={page_view}").status_code == 404


def test_klevu_unreachable_is_told_as_failed_and_the_page_renders(app):
    page = app.test_client().get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-recs-key="k-home-picks" data-source="failed"' in html
    panel = html[html.index('data-testid="inspector"') : html.index("inspector-analytics")]
    assert "klevu-simulator" not in panel and "klevu-…ator" in panel


def test_every_klevu_call_of_the_page_is_in_its_panel(app):
    """The client reports its calls through the hook the extension wires to the trace: a
    call that got no answer is shown too, with why."""
    html = app.test_client().get("/").get_data(as_text=True)
    banners = re.findall(r'data-recs-key="([\w-]+)" data-source=', html)
    calls = re.findall(
        r'data-testid="inspector-config-url">GET http://127\.0\.0\.1:\d+/recommendations/'
        r"klevu-…ator/settings/([\w-]+)</code>\s*&rarr; ConnectionError",
        html,
    )
    assert banners and calls == banners


@pytest.mark.parametrize(
    "arrive, source",
    [
        (lambda client: client.get(f"/?_kx={exchange_id('maya')}"), "from _kx email link"),
        (
            lambda client: client.post(
                "/demo/persona", data={"persona": "maya"}, headers={"Sec-Fetch-Site": "same-origin"}
            ),
            "from demo persona switcher",
        ),
        (
            lambda client: client.set_cookie("__kla_id", encode_kla_id(exchange_id("maya"))),
            "from Klaviyo cookie __kla_id",
        ),
    ],
)
def test_step_zero_says_where_the_exchange_id_came_from(app, arrive, source):
    client = app.test_client()
    client.set_cookie("shop_consent", "granted")
    arrive(client)
    html = client.get("/").get_data(as_text=True)
    assert f'data-exchange="{exchange_id("maya")[:6]}…"' in html
    assert source in html


def test_a_failing_inspector_leaves_the_page_whole(app, monkeypatch):
    def broken(**_):
        raise RuntimeError("a story nobody planned for")

    monkeypatch.setattr("storefront.inspector.build_story", broken)
    page = app.test_client().get("/")
    assert page.status_code == 200
    assert b'data-testid="inspector"' not in page.data and b"New this season" in page.data
