"""The api key stays on the server: not in the banner tokens every page carries, not in the
log lines a visitor-service outage writes; and an open breaker's refusals are counted in
``/healthz``, not logged once per page."""

from __future__ import annotations

import logging
import re

import requests

from storefront import create_app
from storefront.klevu.analytics import tokens
from storefront.simulator.account import API_KEY
from tests.helpers import PERSONAS, LiveServer, app_config, browser_session


def test_tokens_and_logs_under_an_outage_keep_the_api_key_to_themselves(sim, tmp_path, caplog):
    shop = LiveServer(create_app(app_config(sim.url, tmp_path, OUTBOX_RELAY_IN_APP=False)))
    try:
        home = requests.get(f"{shop.url}/", cookies=browser_session("maya").cookies, timeout=10)
        found = re.findall(r'data-klevu-token="([^"]+)"', home.text)
        assert found
        for token in found:
            assert API_KEY not in str(tokens._inflated(token.partition(".")[0]))

        sim.faults(visitor={"fail_every": 1, "status": 503})
        caplog.clear()
        with caplog.at_level(logging.INFO):
            for n in range(40):  # new identified visitors: each page asks the visitor service
                persona = list(PERSONAS)[n % len(PERSONAS)]
                visitor = browser_session(persona)
                assert requests.get(f"{shop.url}/", cookies=visitor.cookies, timeout=10).ok
        lines = [record.getMessage() for record in caplog.records]
        assert not [line for line in lines if API_KEY in line], "the api key in a log line"
        failures = [line for line in lines if "visitor service failed" in line]
        assert 1 <= len(failures) <= 10, len(failures)  # until the breaker opened, not per page
        breaker = requests.get(f"{shop.url}/healthz", timeout=10).json()["breakers"]["visitor"]
        assert breaker["state"] == "open" and breaker["refused"] >= 25
    finally:
        shop.stop()
