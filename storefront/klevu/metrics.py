"""Prometheus counters of the Klevu steps: calls to each service and the answers cache.

The metric objects are process-wide (a Prometheus registry holds one of each name); each
app decides whether to count (``observe`` among the client's ``on_call`` hooks, and
``KlevuAnswers(metrics=True)``, from ``STOREFRONT_METRICS``). With
``PROMETHEUS_MULTIPROC_DIR`` set before this module is imported (``python -m storefront``
sets it for its workers), each process writes its counts to a file there and ``/metrics``
sums them: any worker answers for all of them.

What is read at scrape time instead (breaker state, outbox depth and age, delivered and
dead-lettered events) is the shop's collector's business (``storefront/metrics.py``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

from .client import Call

# Latency buckets (seconds) around the page's Klevu budget (800 ms by default) and the
# client's timeouts (1 s to connect, 2 s to read).
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.0, 3.0)

CALLS = Counter(
    "klevu_calls",
    "Calls to Klevu's services by outcome: ok, http_4xx, http_5xx, or error (no answer, "
    "timeout); refusals of an open breaker are klevu_breaker_refused_total",
    ["service", "outcome"],
)
CALL_SECONDS = Histogram(
    "klevu_call_seconds",
    "Time to Klevu's answer (calls it answered)",
    ["service"],
    buckets=CALL_BUCKETS,
)
ANSWERS = Counter(
    "klevu_answers",
    "Config and search answers through the answers cache: hit, miss, stale (served past "
    "freshness), refreshed (in the background), failed",
    ["service", "result"],
)


# Each labelled child looked up once: ``labels()`` costs 5-13 µs a call, a cached child's
# ``inc`` under 1 µs, and a warm banner page counts two answers per banner.
@cache
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    return metric.labels(*labels)


def observe(call: Call) -> None:
    """The client's ``on_call`` hook (``KlevuClient(on_call=...)``)."""
    if call.status is None:
        child(CALLS, call.service, "error").inc()
        return
    child(CALLS, call.service, outcome(call.status)).inc()
    if call.ms is not None:
        child(CALL_SECONDS, call.service).observe(call.ms / 1000)


def answer(service: str, result: str) -> None:
    child(ANSWERS, service, result).inc()


def outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    return "http_4xx" if status < 500 else "http_5xx"
