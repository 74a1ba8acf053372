"""Planned faults: deterministic failures, status, Retry-After, down, latency."""

import time

import pytest

from storefront.simulator import API_KEY

CALLS = {
    "visitor": lambda c: c.post(f"/visitor/public/1.0/{API_KEY}/session", json={"apiKey": API_KEY}),
    "config": lambda c: c.get(f"/recommendations/{API_KEY}/settings/k-home-picks"),
    "search": lambda c: c.post(
        "/cs/v2/search",
        json={
            "context": {"apiKeys": [API_KEY]},
            "recordQueries": [{"id": "q", "typeOfRequest": "RECS_TRENDING"}],
        },
    ),
    "collect": lambda c: c.post(
        "/analytics/collect",
        json=[
            {
                "event": "view_recs_list",
                "event_apikey": API_KEY,
                "event_data": {"list_id": "k-home-picks", "items": []},
            }
        ],
    ),
}


def faults(client, **plans):
    response = client.post("/_sim/faults", json=plans)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("service", sorted(CALLS))
def test_every_nth_request_fails(client, service):
    faults(client, **{service: {"fail_every": 3}})
    statuses = [CALLS[service](client).status_code for _ in range(7)]
    assert statuses == [200, 200, 503, 200, 200, 503, 200]


def test_status_and_retry_after_are_as_planned(client):
    faults(client, search={"fail_every": 1, "status": 429, "retry_after": 7})
    response = CALLS["search"](client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert "simulated" in response.get_json()["error"]


def test_a_failed_collect_keeps_nothing(client):
    faults(client, collect={"fail_every": 1})
    assert CALLS["collect"](client).status_code == 503
    assert client.get("/_sim/events").get_json()["totals"]["received"] == 0


def test_down_fails_everything_until_cleared(client):
    faults(client, config={"down": True})
    assert [CALLS["config"](client).status_code for _ in range(3)] == [503] * 3
    assert CALLS["search"](client).status_code == 200  # other services are unaffected
    assert faults(client, config=None) == {}
    assert CALLS["config"](client).status_code == 200


def test_latency_delays_the_answer(client):
    faults(client, visitor={"latency_ms": 120})
    started = time.perf_counter()
    assert CALLS["visitor"](client).status_code == 200
    assert time.perf_counter() - started >= 0.12


def test_faults_are_counted_and_described(client):
    faults(client, visitor={"fail_every": 2, "status": 500})
    for _ in range(4):
        CALLS["visitor"](client)
    state = client.get("/_sim/state").get_json()
    assert state["counts"]["faulted"] == 2 and state["counts"]["session_new"] == 2
    assert state["faults"]["visitor"] | {"requests": 4} == {
        "fail_every": 2,
        "status": 500,
        "retry_after": None,
        "down": False,
        "latency_ms": 0,
        "requests": 4,
    }


def test_setting_a_plan_restarts_its_count(client):
    faults(client, search={"fail_every": 2})
    assert CALLS["search"](client).status_code == 200
    faults(client, search={"fail_every": 2})
    assert [CALLS["search"](client).status_code for _ in range(2)] == [200, 503]


def test_reset_clears_faults_and_journal(client):
    faults(client, search={"down": True})
    CALLS["search"](client)
    client.post("/_sim/reset")
    assert CALLS["search"](client).status_code == 200
    state = client.get("/_sim/state").get_json()
    assert state["faults"] == {} and state["counts"]["faulted"] == 0


def test_control_endpoints_never_fail(client):
    faults(client, **{service: {"down": True} for service in CALLS})
    assert client.get("/_sim/state").status_code == 200
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "plans",
    [
        {"stats": {"down": True}},
        {"search": {"fail_every": -1}},
        {"search": {"status": 200}},
        {"search": {"down": "yes"}},
        {"search": {"latency_ms": 120_000}},
        {"search": {"retry_after": "soon"}},
        {"search": {"explode": True}},
        {"search": [1]},
    ],
)
def test_bad_plans_are_400(client, plans):
    response = client.post("/_sim/faults", json=plans)
    assert response.status_code == 400
    assert client.get("/_sim/faults").get_json() == {}
