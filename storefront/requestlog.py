"""Each request's id, its ``Server-Timing`` header, and (opt-in) one JSON log line for it.

An operator following one slow page needs the lines that belong to it: every request gets an
id (a load balancer's ``X-Request-ID`` when it sends a sane one, else a new one), returned in
the ``X-Request-ID`` header and carried by every log line written while the request runs, on
the pool threads that fetch its banners too (they run in a copy of its context). With
``STOREFRONT_LOG_FORMAT=json`` each line is one JSON object, and each request ends with one
line saying what it was, how it ended and what its Klevu steps took; the default stays the
human-readable format, for ``make run``.

``Server-Timing`` names the Klevu steps summed from ``klevu.trace.timed`` (segments, config,
search, render) and the whole request (``total``), so the browser's DevTools show them next
to the page.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, current_app, g, has_app_context, request
from flask.wrappers import Response

from .klevu import trace

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")  # nothing that could forge a log line

log = logging.getLogger("storefront.request")


class RequestIdFilter(logging.Filter):
    """Stamps a record with the id of the request it was written in (None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id") if has_app_context() else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            line["http"] = http
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


JsonFormatter.converter = time.gmtime


def log_handler(log_format: str) -> logging.Handler:
    """The root logger's handler: the human format, or one JSON object per line."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(HUMAN_FORMAT)
    )
    return handler


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_finish)


def _begin() -> None:
    offered = request.headers.get("X-Request-ID", "")
    g.request_id = offered if REQUEST_ID_RE.match(offered) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    trace.time_request()


def _finish(response: Response) -> Response:
    started = g.get("request_started")
    timings = trace.timings()
    if timings is None or started is None:  # a before_request hook answered before ours ran
        return response
    total_ms = (time.perf_counter() - started) * 1000
    steps = timings.header()
    response.headers["Server-Timing"] = (
        f"{steps}, total;dur={total_ms:.1f}" if steps else f"total;dur={total_ms:.1f}"
    )
    response.headers["X-Request-ID"] = g.request_id
    if current_app.config["STOREFRONT_LOG_FORMAT"] == "json":
        rule = request.url_rule
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "route": rule.rule if rule is not None else None,
                    "status": response.status_code,
                    "ms": round(total_ms, 1),
                    "steps_ms": {
                        step: round(seconds * 1000, 1)
                        for step, (seconds, _count) in timings.spent.items()
                    },
                }
            },
        )
    return response
