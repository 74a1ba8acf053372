"""The shop as an observable service, over real sockets: ``/metrics`` read by Prometheus's own
parser, ``/readyz``, ``Server-Timing``, request ids and JSON log lines.

Counters are process-wide, so in-process tests compare a scrape before and after what they do;
the multiprocess test runs ``python -m storefront`` with two gunicorn workers and checks that
any worker's scrape counts the pages both served.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from storefront import create_app
from storefront.klevu import klevu_client
from tests.helpers import (
    LiveServer,
    app_config,
    browser_session,
    free_port,
    shop_processes,
    wait_for,
    wait_until,
)

TOKEN_RE = re.compile(r'data-klevu-token="([^"]+)"')
BEACON_HEADERS = {"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "same-origin"}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) → value, through the real parser."""
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def shop(sim, tmp_path):
    """Answers cached as in production; the in-app relay off, so the queue holds still."""
    app = create_app(app_config(sim.url, tmp_path, OUTBOX_RELAY_IN_APP=False))
    server = LiveServer(app)
    yield server
    server.stop()


def test_metrics_count_pages_klevu_calls_answers_and_the_outbox(shop):
    before = scrape(shop.url)
    browser = browser_session("maya")
    for _ in range(3):
        page = browser.get(f"{shop.url}/", timeout=10)
        assert page.status_code == 200
    token = TOKEN_RE.search(page.text)
    assert token, "the home page shows a banner"
    accepted = browser.post(
        f"{shop.url}/klevu/events",
        data=json.dumps({"type": "view", "token": token.group(1)}),
        headers=BEACON_HEADERS,
        timeout=5,
    )
    assert accepted.status_code == 202
    assert browser.get(f"{shop.url}/no-such-page", timeout=5).status_code == 404
    after = scrape(shop.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("storefront_pages_total", route="/", status="200") == 3
    assert grew("storefront_pages_total", route="/klevu/events", status="202") == 1
    assert grew("storefront_pages_total", route="unmatched", status="404") == 1
    assert grew("storefront_page_seconds_count", route="/") == 3
    # The first page asked Klevu; the next two were served from the answers cache.
    for service in ("visitor", "config", "search"):
        assert grew("klevu_calls_total", service=service, outcome="ok") >= 1, service
        assert grew("klevu_call_seconds_count", service=service) >= 1, service
        assert grew("klevu_call_seconds_bucket", service=service, le="+Inf") >= 1, service
    for service in ("config", "search"):
        assert grew("klevu_answers_total", service=service, result="miss") >= 1
        assert grew("klevu_answers_total", service=service, result="hit") >= 2
    for service in ("visitor", "config", "search"):
        assert value(after, "klevu_breaker_state", service=service, state="closed") == 1
        assert value(after, "klevu_breaker_state", service=service, state="open") == 0
    assert value(after, "storefront_outbox_depth") == 1
    assert value(after, "storefront_outbox_oldest_event_age_seconds") >= 0
    assert value(after, "storefront_outbox_events_total", outcome="delivered") == 0


def test_metrics_show_an_open_breaker_and_failed_calls(sim, shop):
    sim.faults(config={"down": True, "status": 503})
    before = scrape(shop.url)
    for _ in range(8):  # more than the failures in a row that open the breaker
        assert requests.get(f"{shop.url}/", timeout=10).status_code == 200
    after = scrape(shop.url)
    failed = value(after, "klevu_calls_total", service="config", outcome="http_5xx") - value(
        before, "klevu_calls_total", service="config", outcome="http_5xx"
    )
    assert failed >= shop.app.config["KLEVU_BREAKER_FAILURES"]
    refused = ("klevu_breaker_refused_total", (("service", "config"),))
    assert after[refused] == klevu_client(shop.app).breakers["config"].stats()["refused"]
    assert value(after, "klevu_breaker_state", service="config", state="open") == 1
    assert value(after, "klevu_breaker_state", service="config", state="closed") == 0


def test_relayed_events_are_counted_as_delivered(sim, tmp_path):
    app = create_app(app_config(sim.url, tmp_path))  # the in-app relay on
    server = LiveServer(app)
    try:
        browser = browser_session()
        page = browser.get(f"{server.url}/", timeout=10)
        for token in TOKEN_RE.findall(page.text):
            answer = browser.post(
                f"{server.url}/klevu/events",
                data=json.dumps({"type": "view", "token": token}),
                headers=BEACON_HEADERS,
                timeout=5,
            )
            assert answer.status_code == 202
        sent = len(TOKEN_RE.findall(page.text))
        assert sent
        wait_until(
            lambda: (
                value(scrape(server.url), "storefront_outbox_events_total", outcome="delivered")
                == sent
            ),
            15,
        )
        assert value(scrape(server.url), "storefront_outbox_depth") == 0
    finally:
        server.stop()


def test_metrics_off_means_no_endpoint(sim, tmp_path):
    app = create_app(app_config(sim.url, tmp_path, STOREFRONT_METRICS="false"))
    assert app.test_client().get("/metrics").status_code == 404


def test_server_timing_names_the_klevu_steps(shop):
    page = browser_session("maya").get(f"{shop.url}/", timeout=10)
    timing = dict(re.findall(r"([a-z]+);dur=([\d.]+)", page.headers["Server-Timing"]))
    assert {"segments", "config", "search", "render", "total"} <= set(timing)
    assert all(float(ms) >= 0 for ms in timing.values())
    cart = requests.get(f"{shop.url}/cart", timeout=5)
    assert cart.headers["Server-Timing"].startswith("total;dur=")


def test_request_id_comes_back_and_a_bad_one_is_replaced(shop):
    mine = requests.get(f"{shop.url}/", headers={"X-Request-ID": "lb-0123456789"}, timeout=10)
    assert mine.headers["X-Request-ID"] == "lb-0123456789"
    forged = requests.get(
        f"{shop.url}/", headers={"X-Request-ID": 'x" {"level":"ERROR"}'}, timeout=10
    )
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])


def test_readyz_says_what_is_unreachable(sim, tmp_path):
    from tests.helpers import start_redis

    redis_process, redis_url = start_redis()
    app = create_app(app_config(sim.url, tmp_path, CACHE_REDIS_URL=redis_url))
    client = app.test_client()
    try:
        assert client.get("/readyz").get_json() == {"status": "ready"}
    finally:
        redis_process.kill()
        redis_process.wait()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert set(answer.get_json()["failing"]) == {"cache"}
    assert client.get("/healthz").status_code == 200  # alive, though not ready


def test_json_logs_one_line_per_request_with_its_id(sim, tmp_path):
    sim.faults(search={"down": True, "status": 500})  # banners fail: lines from pool threads
    with shop_processes(sim.url, tmp_path, count=1, STOREFRONT_LOG_FORMAT="json") as urls:
        answer = requests.get(f"{urls[0]}/", headers={"X-Request-ID": "req-json-0001"}, timeout=10)
        assert answer.status_code == 200
        log_file = next(tmp_path.glob("shop-*.log"))

        def lines() -> list[dict]:
            return [json.loads(line) for line in log_file.read_text().splitlines() if line]

        wait_until(lambda: any(line.get("http") for line in lines()), 5)
    mine = [line for line in lines() if line["request_id"] == "req-json-0001"]
    requests_logged = [line for line in mine if "http" in line]
    assert len(requests_logged) == 1
    http = requests_logged[0]["http"]
    assert (http["route"], http["status"]) == ("/", 200)
    assert {"config", "search"} <= set(http["steps_ms"])
    failures = [line for line in mine if "left out" in line["message"]]
    assert failures, "the banner failures of that request carry its id"
    assert all(line["level"] == "WARNING" for line in failures)


def test_metrics_are_summed_over_worker_processes(tmp_path):
    port, simulator_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "STOREFRONT_DATA_DIR": str(tmp_path),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),  # where the launcher makes its metrics directory
    }
    launcher = subprocess.Popen(
        [
            *(sys.executable, "-m", "storefront", "--port", str(port)),
            *("--simulator-port", str(simulator_port), "--workers", "2"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "launcher.log", "wb"),  # noqa: SIM115
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/healthz", 30)
        for _ in range(40):  # new connections: both workers take some
            assert requests.get(f"{url}/cart", timeout=10).status_code == 200
        # Whichever worker answers the scrape, it counts both workers' pages.
        counts = {value(scrape(url), "storefront_pages_total", route="/cart", status="200")}
        for _ in range(5):
            time.sleep(0.05)
            counts.add(value(scrape(url), "storefront_pages_total", route="/cart", status="200"))
        assert counts == {40.0}
        assert len(list(tmp_path.glob("storefront-metrics-*/counter_*.db"))) == 2  # a file each
    finally:
        launcher.terminate()  # stops the simulator and gunicorn, and removes its metrics dir
        launcher.wait(timeout=20)
    try:
        wait_until(lambda: not group_alive(launcher.pid), 20, "the launcher left processes")
    finally:
        if group_alive(launcher.pid):
            os.killpg(launcher.pid, signal.SIGKILL)
    assert not list(tmp_path.glob("storefront-metrics-*"))


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
