"""What the simulator received: counts per call kind, recent calls, every analytics event.

This is the evidence a demo or a test looks at ("did the shop ask for the VIP variant?",
"was that click delivered twice?"), so it is kept whole and read as consistent snapshots.
Events carry the storefront's own event ids (a header Klevu ignores); an id seen before marks
a duplicate delivery, the cost of the outbox's at-least-once retries. Klevu's events carry no
time of their own, so an event's delivery delay is counted from the first collect request
that carried its id, failed or not: how long the shop's outbox took to get it through.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from datetime import datetime

KINDS = (
    "session_new",
    "session_refresh",
    "connector",
    "config",
    "search",
    "collect_requests",
    "events",
    "rejected",
    "faulted",
)


class Journal:
    def __init__(self, recent_size: int = 50):
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._recent: deque[dict] = deque(maxlen=recent_size)
        self._events: list[dict] = []
        self._seen_ids: set[str] = set()
        self._first_tried: dict[str, float] = {}
        self._seq = 0

    def _entry(self, service: str, kind: str, status: int, detail: dict) -> dict:
        self._seq += 1
        self._counts[kind] += 1
        entry = {
            "seq": self._seq,
            "at": datetime.now().isoformat(timespec="milliseconds"),
            "service": service,
            "kind": kind,
            "status": status,
            "detail": detail,
        }
        self._recent.append(entry)
        return entry

    def call(self, service: str, kind: str, status: int, detail: dict) -> None:
        with self._lock:
            self._entry(service, kind, status, detail)

    def attempted(self, event_ids: list[str]) -> None:
        """A collect request carried these ids (before any fault decides its fate)."""
        now = time.time()
        with self._lock:
            for event_id in event_ids:
                self._first_tried.setdefault(event_id, now)

    def collected(
        self,
        events: list[dict],
        summaries: list[dict],
        event_ids: list[str | None],
        problems: list[list[str]],
    ) -> None:
        """One accepted collect request and its events (each with what Klevu would miss in
        it, ``validator.py``), recorded together."""
        with self._lock:
            entry = self._entry(
                "collect",
                "collect_requests",
                200,
                {"events": len(events), "ids": [i for i in event_ids if i]},
            )
            now = time.time()
            for payload, summary, event_id, found in zip(
                events, summaries, event_ids, problems, strict=True
            ):
                duplicate = event_id is not None and event_id in self._seen_ids
                if event_id is not None:
                    self._seen_ids.add(event_id)
                self._counts["events"] += 1
                first = self._first_tried.get(event_id, now) if event_id else now
                self._events.append(
                    {
                        "seq": len(self._events) + 1,
                        "request": entry["seq"],
                        "event_id": event_id,
                        "duplicate": duplicate,
                        "received_at": entry["at"],
                        "delay_s": round(now - first, 3),
                        "summary": summary,
                        "problems": found,
                        "payload": payload,
                    }
                )

    def state(self) -> dict:
        with self._lock:
            return {
                "counts": {kind: self._counts[kind] for kind in KINDS},
                "recent": list(reversed(self._recent)),
            }

    def events(self) -> dict:
        with self._lock:
            events = list(self._events)
        duplicates = sum(e["duplicate"] for e in events)
        return {
            "events": events,
            "totals": {
                "received": len(events),
                "unique": len(events) - duplicates,
                "duplicates": duplicates,
            },
            "failing": sum(bool(e["problems"]) for e in events),
        }
