"""Scenario packs in the simulator: loading and checking packs, applying them (API, URL,
command line), and what each sets. What the shop then shows is tested over real sockets in
tests/integration/test_scenario_packs.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from markupsafe import escape

from storefront.simulator import API_KEY, create_app, scenarios
from storefront.simulator.__main__ import parse_args
from tests.helpers import free_port, wait_for

PACKS_IN_THE_ISSUE = {
    "visitor-down",
    "segments-expire-now",
    "segment-hides-banner",
    "static-content-for-segment",
    "fewer-results-than-threshold",
    "collector-failing-then-back",
    "klevu-slow",
}


def test_the_shipped_packs_load_and_describe_themselves():
    packs = scenarios.catalogue()
    assert set(packs) >= PACKS_IN_THE_ISSUE
    for pack in packs.values():
        assert pack.title and len(pack.description) > 80, pack.name
        assert pack.faults or pack.settings or pack.recs, f"{pack.name} changes nothing"


def variant_title(client, recs_key: str, sids: str = "") -> tuple[str, str | None]:
    answer = client.get(f"/recommendations/{API_KEY}/settings/{recs_key}?sids={sids}").get_json()
    return answer["metadata"]["title"], answer["metadata"]["action"]


def test_applying_a_pack_changes_the_config_cdn_and_a_reset_ends_it(client):
    before = variant_title(client, "k-home-picks", "seg_outdoor")
    answer = client.post("/_sim/scenario", json={"name": "segment-hides-banner"})
    assert answer.status_code == 200
    assert answer.get_json()["active"]["name"] == "segment-hides-banner"
    assert variant_title(client, "k-home-picks", "seg_outdoor")[1] == "HIDE_RECOMMENDATION"
    # The other segments' variants stay, after the pack's.
    assert variant_title(client, "k-home-picks", "seg_vip")[0] == "The premium edit, for our VIPs"

    client.post("/_sim/reset")
    assert client.get("/_sim/scenario").get_json()["active"] is None
    assert variant_title(client, "k-home-picks", "seg_outdoor") == before


def test_a_pack_sets_faults_and_ttls_on_a_fresh_state(client):
    client.post("/_sim/faults", json={"search": {"down": True}})
    client.post("/_sim/scenario", json={"name": "collector-failing-then-back"})
    faults = client.get("/_sim/faults").get_json()
    assert set(faults) == {"collect"}  # the earlier search fault went with the reset
    assert faults["collect"]["fail_first"] == 4
    statuses = [
        client.post("/analytics/collect", json=[{"event": "x"}]).status_code for _ in range(5)
    ]
    assert statuses[:4] == [503] * 4 and statuses[4] == 400  # back: the body is then read

    client.post("/_sim/scenario", json={"name": "segments-expire-now"})
    assert client.get("/_sim/settings").get_json()["segment_ttl"] == 1
    assert client.get("/_sim/faults").get_json() == {}
    client.post("/_sim/scenario", json={"name": None})
    assert client.get("/_sim/settings").get_json()["segment_ttl"] == 300


@pytest.mark.parametrize("body", [{}, {"name": "no-such-pack"}, {"name": 3}, [], "visitor-down"])
def test_an_unknown_pack_is_400_and_changes_nothing(client, body):
    client.post("/_sim/scenario", json={"name": "visitor-down"})
    answer = client.post("/_sim/scenario", json=body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]
    assert client.get("/_sim/scenario").get_json()["active"]["name"] == "visitor-down"


def test_a_pack_by_url_applies_and_shows_the_dashboard_with_its_description(client):
    answer = client.get("/_sim/scenario/klevu-slow")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/_sim/")
    page = client.get("/_sim/").get_data(as_text=True)
    description = scenarios.builtin("klevu-slow").description
    assert 'data-testid="active-scenario"' in page
    assert escape(description) in page
    assert client.get("/_sim/faults").get_json()["config"]["latency_ms"] == 1000
    assert client.get("/_sim/scenario/no-such-pack").status_code == 400


def test_a_pack_by_url_from_another_site_is_refused(client):
    answer = client.get("/_sim/scenario/visitor-down", headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert client.get("/_sim/scenario").get_json()["active"] is None


@pytest.mark.parametrize(
    "body, reason",
    [
        ([], "a pack is an object"),
        ({"title": "t"}, "title and a description"),
        ({"title": "t", "description": "d", "extra": 1}, "keys among"),
        ({"title": "t", "description": "d", "faults": {"cdn": {}}}, "keyed by services"),
        ({"title": "t", "description": "d", "faults": {"search": {"down": 1}}}, "down"),
        ({"title": "t", "description": "d", "settings": {"segment_ttl": -1}}, "whole seconds"),
        ({"title": "t", "description": "d", "recs": {"k-home-picks": {"pageType": "X"}}}, "X"),
        (
            {"title": "t", "description": "d", "recs": {"k-new": {"pageType": "HOME"}}},
            "spotKey",
        ),
        (
            {
                "title": "t",
                "description": "d",
                "recs": {"k-home-picks": {"segments": [{"segment": "seg_vip", "title": "x"}]}},
            },
            "lacks 'logic'",
        ),
        (
            {
                "title": "t",
                "description": "d",
                "recs": {
                    "k-home-picks": {
                        "segments": [
                            {
                                "segment": "seg_nobody",
                                "title": "x",
                                "logic": "TRENDING",
                                "look": "grid",
                            }
                        ]
                    }
                },
            },
            "seg_nobody",
        ),
    ],
)
def test_a_bad_pack_says_what_is_wrong(body, reason):
    with pytest.raises(scenarios.BadPack, match=reason):
        scenarios.parse_pack("bad", body)


def test_a_pack_file_by_path_is_started_in_and_offered_by_the_console(tmp_path):
    path = tmp_path / "my-demo.json"
    path.write_text(
        json.dumps(
            {
                "title": "My demo",
                "description": "Search is down.",
                "faults": {"search": {"down": True}},
            }
        )
    )
    client = create_app({"SIMULATOR_SCENARIO": str(path)}).test_client()
    assert client.get("/_sim/scenario").get_json()["active"]["name"] == "my-demo"
    assert client.get("/_sim/faults").get_json()["search"]["down"] is True
    client.post("/_sim/reset")
    assert "my-demo" in {p["name"] for p in client.get("/_sim/scenario").get_json()["packs"]}
    assert client.post("/_sim/scenario", json={"name": "my-demo"}).status_code == 200


def test_the_command_line_names_a_pack_and_lists_them():
    assert parse_args(["--scenario", "visitor-down"]).scenario == "visitor-down"
    assert parse_args([], env={"SIMULATOR_SCENARIO": "klevu-slow"}).scenario == "klevu-slow"
    listed = subprocess.run(
        [sys.executable, "-m", "storefront.simulator", "--list-scenarios"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert {line.split()[0] for line in listed.splitlines()} >= PACKS_IN_THE_ISSUE


def test_the_command_line_refuses_a_bad_pack_with_its_reason(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "storefront.simulator", "--port", "1", "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "broken.json" in done.stderr


def test_a_simulator_started_with_a_pack_is_in_it_over_http():
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storefront.simulator",
            "--port",
            str(port),
            "--scenario",
            "klevu-slow",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz")
        assert (
            requests.get(f"{url}/_sim/scenario", timeout=5).json()["active"]["name"] == "klevu-slow"
        )
        assert requests.get(f"{url}/_sim/faults", timeout=5).json()["search"]["latency_ms"] == 1000
    finally:
        process.terminate()
        process.wait(timeout=10)
