"""A banner's CSS as a cacheable stylesheet, over real sockets: the shop on a real server, its
Klevu config from a CDN served here (a real server in front of the simulator's config service,
whose CSS the test changes), search and visitor service from the simulator."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from storefront import create_app
from tests.helpers import LiveServer, app_config, browser_session, shop_processes

STYLESHEET_RE = re.compile(r'<link rel="stylesheet" href="([^"]+)" data-klevu-css="k-home-picks">')


class ConfigCDN:
    """The simulator's config answers, with ``styles.base`` replaced by ``css``."""

    def __init__(self, simulator_url: str):
        self.simulator_url = simulator_url
        self.css = ".kuRECS-title { color: rgb(1, 2, 3); }"
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wsgi(self, environ, start_response):
        return self.answer(Request(environ))(environ, start_response)

    def answer(self, request: Request) -> Response:
        upstream = requests.get(
            f"{self.simulator_url}{request.full_path}", timeout=5
        ).json()  # a config, as Klevu's CDN sends it
        upstream["styles"] = {"base": self.css}
        return Response(
            json.dumps(upstream),
            mimetype="application/json",
        )


@pytest.fixture
def cdn(sim) -> Iterator[ConfigCDN]:
    cdn = ConfigCDN(sim.url)
    yield cdn
    cdn.server.shutdown()


def stylesheet(html: str) -> str:
    found = STYLESHEET_RE.search(html)
    assert found, "the banner's stylesheet is not linked from the page"
    return found.group(1)


def test_a_changed_config_css_is_a_new_stylesheet_url_on_the_next_page(sim, cdn, tmp_path):
    shop = LiveServer(
        create_app(
            app_config(
                sim.url,
                tmp_path,
                KLEVU_CONFIG_URL=cdn.url,
                KLEVU_CONFIG_TTL="0",  # every page asks for the config: the next sees the change
                OUTBOX_RELAY_IN_APP=False,
            )
        )
    )
    try:
        visitor = browser_session("maya")
        page = visitor.get(f"{shop.url}/", timeout=10).text
        first = stylesheet(page)
        served = requests.get(f"{shop.url}{first}", timeout=10)

        cdn.css = ".kuRECS-title { color: rgb(4, 5, 6); }"
        second = stylesheet(visitor.get(f"{shop.url}/", timeout=10).text)
        changed = requests.get(f"{shop.url}{second}", timeout=10)
        again = requests.get(f"{shop.url}{first}", timeout=10)  # a page cached somewhere
    finally:
        shop.stop()

    assert "<style" not in page and "rgb(1, 2, 3)" not in page  # not inlined any more
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/css")
    assert '[data-klevu-banner="k-home-picks"] .kuRECS-title' in served.text  # scoped
    assert "rgb(1, 2, 3)" in served.text
    cache_control = served.headers["Cache-Control"]
    assert "immutable" in cache_control and "max-age=31536000" in cache_control
    assert served.headers["Content-Encoding"] == "gzip"  # requests accepts gzip
    assert second != first
    assert "rgb(4, 5, 6)" in changed.text and "rgb(1, 2, 3)" not in changed.text
    assert again.text == served.text


@pytest.mark.redis
def test_a_stylesheet_named_by_one_process_is_served_by_another(sim, redis_url, tmp_path):
    with shop_processes(sim.url, tmp_path, CACHE_REDIS_URL=redis_url) as (one, other):
        href = stylesheet(browser_session("maya").get(f"{one}/", timeout=10).text)
        plain = requests.get(f"{other}{href}", timeout=10, headers={"Accept-Encoding": "identity"})
        zipped = requests.get(f"{other}{href}", timeout=10, stream=True)
        unknown = requests.get(f"{other}/klevu/css/{'0' * 32}.css", timeout=10)

    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert '[data-klevu-banner="k-home-picks"]' in plain.text
    assert gzip.decompress(zipped.raw.read()).decode() == plain.text
    assert unknown.status_code == 404
