"""``/metrics``: the shop as a Prometheus target.

Counted as they happen (``prometheus_client`` counters, summed over worker processes through
``PROMETHEUS_MULTIPROC_DIR`` when it is set): pages by route and status with their latency
here, Klevu calls and answers-cache results in ``klevu/metrics.py``. Read when scraped,
because they are states rather than events and the shared stores already hold them: each
Klevu service's circuit breaker (this worker's view, plus openings shared through Redis),
and the outbox's depth, oldest event and delivered, retried and dead-lettered events (the
queue's own counters, for every host sharing it).

``STOREFRONT_METRICS=false`` turns all of it off: no counting, no ``/metrics``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .klevu import klevu_client
from .klevu.analytics import delivery
from .klevu.breaker import CLOSED, HALF_OPEN, OPEN
from .klevu.metrics import child

PAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DEAD_LETTER_REASONS = ("dead_letter_attempts", "dead_letter_age", "rejected_4xx")

PAGES = Counter("storefront_pages", "Responses by route and status", ["route", "status"])
PAGE_SECONDS = Histogram(
    "storefront_page_seconds", "Time to answer, by route", ["route"], buckets=PAGE_BUCKETS
)

bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    if not app.config["STOREFRONT_METRICS"]:
        return
    app.before_request(_started)
    app.after_request(_count)
    app.register_blueprint(bp)


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"  # not the path: bounded labels
    child(PAGES, route, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        child(PAGE_SECONDS, route).observe(time.perf_counter() - started)
    return response


class _ProcessMetrics(Collector):
    """This process's counters: the default registry's, or every worker's summed."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()


class _ServiceState(Collector):
    """The app's breakers and outbox, read at scrape time."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "klevu_breaker_state",
            "Circuit breaker per Klevu service: 1 for its current state",
            labels=["service", "state"],
        )
        for service, breaker in klevu_client(self.app).breakers.items():
            now = breaker.stats()["state"]
            for state in (CLOSED, HALF_OPEN, OPEN):
                states.add_metric([service, state], 1.0 if now == state else 0.0)
        yield states
        refused = CounterMetricFamily(
            "klevu_breaker_refused",
            "Calls an open breaker refused (not made), this worker's since start",
            labels=["service"],
        )
        for service, breaker in klevu_client(self.app).breakers.items():
            refused.add_metric([service], breaker.stats()["refused"])
        yield refused
        try:
            stats = delivery.outbox(self.app).stats()
        except Exception:  # the queue is unreachable: /readyz says so; no outbox figures
            return
        yield GaugeMetricFamily(
            "storefront_outbox_depth", "Accepted events not yet delivered", value=stats["depth"]
        )
        yield GaugeMetricFamily(
            "storefront_outbox_oldest_event_age_seconds",
            "Age of the oldest undelivered event (0: queue empty)",
            value=stats["oldest_age_seconds"] or 0.0,
        )
        events = CounterMetricFamily(
            "storefront_outbox_events",
            "Events leaving the queue's hands: delivered, retried (a failed send), dead_lettered",
            labels=["outcome"],
        )
        drops = stats["drops"]
        events.add_metric(["delivered"], stats["delivered"])
        events.add_metric(["retried"], stats.get("retried", 0))
        events.add_metric(["dead_lettered"], sum(drops[r] for r in DEAD_LETTER_REASONS))
        yield events
        refused = CounterMetricFamily(
            "storefront_outbox_refused_events",
            "Events refused at the beacon because the queue was full (answered 503)",
            value=drops["full"],
        )
        yield refused


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(_ServiceState(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
