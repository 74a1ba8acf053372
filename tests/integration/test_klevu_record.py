"""``flask klevu record`` against a Klevu stand-in on another port (an account with its own
api key and banner titles, not the simulator's demo data), then the shop served offline from
the pack (``python -m storefront --pack``, what ``make run PACK=`` runs) with the stand-in
gone: the stand-in's titles show, and ``flask klevu check`` passes against it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
import requests

from storefront.__main__ import pack_environment
from storefront.pytest_plugin import launch, offline_environment, stop
from storefront.simulator import create_app as create_simulator
from storefront.simulator.account import shop_environment
from tests.helpers import LiveServer, browser_session, free_port

LIVE_KEY = "klevu-17000000000001"
TITLES = {"default": "Stand-in: our bestsellers", "seg_outdoor": "Stand-in: for the hills"}
STAND_IN_PACK = {
    "title": "A prospect's account",
    "description": "Other titles than the demo's, under another api key.",
    "recs": {
        "k-home-picks": {
            "default": {"title": TITLES["default"], "logic": "TRENDING", "look": "grid"},
            "segments": [
                {
                    "segment": "seg_outdoor",
                    "title": TITLES["seg_outdoor"],
                    "logic": "TRENDING",
                    "look": "strip",
                }
            ],
        }
    },
}


@pytest.fixture
def stand_in(tmp_path):
    """A Klevu stand-in: its own port, api key and banners."""
    pack = tmp_path / "stand-in.json"
    pack.write_text(json.dumps(STAND_IN_PACK))
    server = LiveServer(
        create_simulator({"SIMULATOR_API_KEY": LIVE_KEY, "SIMULATOR_SCENARIO": str(pack)})
    )
    yield server
    server.stop()


def flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "storefront", "klevu", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def banner_title(html: str) -> str | None:
    found = re.search(r'data-klevu-banner="k-home-picks"[^>]*aria-label="([^"]*)"', html)
    return unescape(found.group(1)) if found else None


def test_a_recorded_account_is_served_offline(stand_in, tmp_path):
    live_env = {
        **shop_environment(stand_in.url),
        "KLEVU_API_KEY": LIVE_KEY,
        "STOREFRONT_DATA_DIR": str(tmp_path / "recording"),
        "SECRET_KEY": "a-secret-that-must-not-be-recorded",
    }
    out = tmp_path / "prospect.json"
    done = flask("record", "--out", str(out), env=live_env)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    assert LIVE_KEY in text and "a-secret-that-must-not-be-recorded" not in text
    pack = json.loads(text)
    assert pack["account"]["recs"]["HOME"] == live_env["KLEVU_RECS_HOME"]
    assert set(pack["recorded"]["configs"]["k-home-picks"]) >= {"", "seg_outdoor"}
    stand_in.stop()  # from here on, no Klevu but the pack

    # Each first page asks the pack's simulator afresh (and Maya's, the visitor service too):
    # a budget a loaded machine cannot miss, since this test is about what is served.
    env = {**offline_environment(), "KLEVU_PAGE_BUDGET_MS": "5000"}
    served, launcher = launch(tmp_path / "offline", "--pack", str(out), env=env)
    shop, simulator = served.url, served.simulator_url
    try:
        for persona, title in ((None, TITLES["default"]), ("maya", TITLES["seg_outdoor"])):
            html = browser_session(persona).get(f"{shop}/", timeout=30).text
            assert banner_title(html) == title, persona
        active = requests.get(f"{simulator}/_sim/scenario", timeout=5).json()["active"]
        assert active["name"] == "prospect"

        offline_env = {
            **shop_environment(simulator),
            **pack_environment(str(out)),
            "STOREFRONT_DATA_DIR": str(tmp_path / "check"),
        }
        checked = flask("check", env=offline_env)
        assert checked.returncode == 0, checked.stdout[-3000:]
    finally:
        stop(launcher)


def test_recording_stops_with_the_reason_and_writes_nothing(tmp_path):
    out = tmp_path / "nothing.json"
    env = {
        **shop_environment(f"http://127.0.0.1:{free_port()}"),  # nobody listens there
        "STOREFRONT_DATA_DIR": str(tmp_path),
    }
    done = flask("record", "--out", str(out), env=env)
    assert done.returncode == 1
    assert "recording stopped, nothing written" in done.stderr
    assert not Path(out).exists()
