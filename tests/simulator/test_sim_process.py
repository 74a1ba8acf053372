"""The simulator as the shop meets it: its own process, real HTTP, the storefront's client."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from storefront.config import KlevuSettings
from storefront.klevu.client import KlevuClient, KlevuError
from storefront.simulator import API_KEY
from storefront.simulator.__main__ import parse_args
from tests.helpers import exchange_id, free_port, wait_for

SHOP_URL = "http://shop.test:5000"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory):
    """Base URL of a simulator process; the port comes from SIMULATOR_PORT, as in `make run`."""
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "storefront.simulator",
                "--host",
                "127.0.0.1",
                "--shop-url",
                SHOP_URL,
            ],
            env={**os.environ, "SIMULATOR_PORT": str(port)},
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", 15)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def klevu(simulator):
    requests.post(f"{simulator}/_sim/reset", timeout=2).raise_for_status()
    client = KlevuClient(
        KlevuSettings(
            api_key=API_KEY,
            visitor_url=f"{simulator}/visitor/public/1.0",
            config_url=simulator,
            search_url=f"{simulator}/cs/v2/search",
            stats_url=f"{simulator}/analytics/collect",
        )
    )
    yield client
    client.http.close()


def sim_json(simulator, path):
    return requests.get(f"{simulator}{path}", timeout=2).json()


def test_a_page_view_end_to_end(simulator, klevu):
    session = klevu.start_session()
    assert session.segments == () and session.ttl == 3600
    answer = klevu.start_session(session.session_id, exchange_id("oliver"))
    assert answer.session_id == session.session_id
    assert answer.segments == ("seg_vip", "seg_style") and answer.ttl == 300
    assert klevu.start_session(session.session_id).session_id == session.session_id

    config = klevu.recs_config("k-home-picks", {"sids": ",".join(answer.segments)}).body
    assert config["metadata"]["segmentKey"] == "seg_vip"
    base_path = config["search"]["basePath"]
    assert base_path == simulator.split("://", 1)[1] + "/cs/v2/search"
    result = klevu.search(
        klevu.search_url(base_path), klevu.search_body(json.loads(config["search"]["payload"]))
    ).body
    records = result["queryResults"][0]["records"]
    prices = [float(r["salePrice"]) for r in records]
    assert len(records) == config["metadata"]["maxProducts"] and prices == sorted(
        prices, reverse=True
    )
    assert records[0]["url"].startswith(SHOP_URL + "/p/")

    event = {
        "event": "view_recs_list",
        "event_apikey": API_KEY,
        "user_profile": {"session_id": session.session_id},
        "event_data": {
            "tags": ["recsPageType:HOME"],
            "list_id": "spot-home-picks",
            "list_name": config["metadata"]["title"],
            "list_logic": config["metadata"]["logic"],
            "segment_id": "seg_vip",
            "segment_name": "VIP customers",
            "items": [
                {
                    "item_id": r["id"],
                    "item_name": r["name"],
                    "price": r["salePrice"],
                    "index": i,
                    "quantity": 1,
                }
                for i, r in enumerate(records, 1)
            ],
        },
    }
    klevu.collect([event], ["ev-1"])
    klevu.collect([event], ["ev-1"])  # a retry after a lost answer
    received = sim_json(simulator, "/_sim/events")
    assert received["totals"] == {"received": 2, "unique": 1, "duplicates": 1}
    assert received["events"][0]["payload"] == event
    counts = sim_json(simulator, "/_sim/state")["counts"]
    assert (
        counts["session_new"],
        counts["connector"],
        counts["session_refresh"],
        counts["config"],
        counts["search"],
        counts["collect_requests"],
    ) == (1, 1, 1, 1, 1, 2)


def test_client_sees_faults_as_klevu_errors(simulator, klevu):
    requests.post(
        f"{simulator}/_sim/faults",
        timeout=2,
        json={"collect": {"fail_every": 1, "status": 503, "retry_after": 4}},
    )
    with pytest.raises(KlevuError) as failure:
        klevu.collect(
            [
                {
                    "event": "view_recs_list",
                    "event_apikey": API_KEY,
                    "event_data": {"list_id": "k-home-picks"},
                }
            ]
        )
    assert (failure.value.status, failure.value.retry_after) == (503, 4.0)


def test_parallel_deliveries_are_all_counted(simulator, klevu):
    """The server is threaded: concurrent batches must neither lose nor double-count events."""

    def deliver(n):
        events = [
            {
                "event": "view_recs_list",
                "event_apikey": API_KEY,
                "event_data": {"list_id": "k-home-picks"},
            }
        ] * 2
        klevu.collect(events, [f"ev-{n % 10}-a", f"ev-{n % 10}-b"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(deliver, range(30)))
    assert sim_json(simulator, "/_sim/events")["totals"] == {
        "received": 60,
        "unique": 20,
        "duplicates": 40,
    }


def test_unknown_recs_key_is_a_klevu_error(klevu):
    with pytest.raises(KlevuError) as failure:
        klevu.recs_config("k-missing", {})
    assert failure.value.status == 404


def test_command_line_falls_back_to_the_environment():
    args = parse_args([], env={"SIMULATOR_PORT": "6001", "SIMULATOR_SHOP_URL": SHOP_URL})
    assert (args.host, args.port, args.shop_url) == ("127.0.0.1", 6001, SHOP_URL)
    args = parse_args(["--port", "7001", "--shop-url", ""], env={"SIMULATOR_PORT": "6001"})
    assert (args.port, args.shop_url) == (7001, "")


def test_control_routes_refuse_cross_site_posts_over_http(simulator):
    """Over a real socket: the listening address is loopback, and a browser's cross-site post
    is refused while the dashboard's own (same-origin) post goes through."""
    assert parse_args([], env={}).host == "127.0.0.1"
    requests.post(f"{simulator}/_sim/settings", json={"segment_ttl": 7}, timeout=2)
    refused = requests.post(
        f"{simulator}/_sim/reset",
        timeout=2,
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert refused.status_code == 403
    assert sim_json(simulator, "/_sim/settings")["segment_ttl"] == 7
    own = requests.post(
        f"{simulator}/_sim/reset",
        timeout=2,
        headers={"Origin": simulator, "Sec-Fetch-Site": "same-origin"},
    )
    assert own.status_code == 200
    assert sim_json(simulator, "/_sim/settings")["segment_ttl"] == 300
