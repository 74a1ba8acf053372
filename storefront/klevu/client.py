"""The one place the storefront talks HTTP to Klevu.

One ``requests.Session`` (connection pooling), a timeout on every call, and every failure —
connection refused, timeout, non-2xx, an answer that is not the JSON we expect — turned into a
single ``KlevuError``, so callers handle one exception type and never see a traceback page.
The same code serves live Klevu and the offline simulator: only the base URLs differ.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from ..config import KlevuSettings
from . import trace

log = logging.getLogger(__name__)

# (connect, read) seconds. Pages have their own deadline on top of these (recs.py).
DEFAULT_TIMEOUT = (1.0, 2.0)
Timeout = float | tuple[float, float]  # requests: one for both, or (connect, read)
EVENT_IDS_HEADER = "X-Storefront-Event-Ids"


class KlevuError(Exception):
    """A Klevu call failed. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class SessionAnswer:
    session_id: str
    segments: tuple[str, ...]
    ttl: int


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_session_answer(body: object) -> SessionAnswer:
    """Read only what we need from a visitor-service answer (the api key's case varies)."""
    if not isinstance(body, dict) or not isinstance(body.get("sessionId"), str) \
            or not body["sessionId"]:
        raise KlevuError("visitor service answered without a sessionId")
    info = body.get("segmentInfo") or {}
    segments = info.get("segments") if isinstance(info, dict) else None
    ttl = info.get("ttl") if isinstance(info, dict) else None
    if not isinstance(segments, list):
        segments = []
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl < 0:
        ttl = 0
    return SessionAnswer(
        session_id=body["sessionId"],
        segments=tuple(s for s in segments if isinstance(s, str) and s),
        ttl=int(ttl),
    )


def config_query(params: dict[str, str]) -> str:
    """The config request's query string as ``@klevu/core`` writes it (§2): ``sids=a,b`` and
    ``cp=A;B`` keep their separators raw, so a CDN caches one key per segment set and category
    whichever client asked. Anything else that is not URL-safe is still percent-encoded."""
    return "&".join(f"{quote(key, safe='')}={quote(value, safe=',;')}"
                    for key, value in params.items())


class KlevuClient:
    def __init__(self, settings: KlevuSettings, *, timeout: Timeout = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None) -> None:
        self.settings = settings
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = "klevu-klaviyo-storefront/0.1"

    # -- plumbing ---------------------------------------------------------------------------
    def _call(self, method: str, url: str, *, timeout: Timeout | None = None,
              **kwargs: Any) -> requests.Response:
        try:
            response = self.http.request(method, url, timeout=timeout or self.timeout, **kwargs)
            trace.note("http", method=method, url=response.url, status=response.status_code,
                       ms=round(response.elapsed.total_seconds() * 1000, 1))
        except requests.RequestException as exc:
            trace.note("http", method=method, url=getattr(exc.request, "url", None) or url,
                       error=type(exc).__name__)
            raise KlevuError(f"{method} {url}: {type(exc).__name__}") from exc
        if not 200 <= response.status_code < 300:
            raise KlevuError(f"{method} {url}: HTTP {response.status_code}",
                             status=response.status_code,
                             retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return response

    def _json(self, method: str, url: str, **kwargs: Any) -> object:
        response = self._call(method, url, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise KlevuError(f"{method} {url}: answer is not JSON") from exc

    # -- step 1: visitor session and segments (docs/klevu-wire-format.md §1) -----------------------
    def _session_url(self) -> str:
        return f"{self.settings.visitor_url}/{quote(self.settings.api_key, safe='')}/session"

    def start_session(self, session_id: str | None = None, *,
                      timeout: Timeout | None = None) -> SessionAnswer:
        """Open a session, or refresh one by re-posting its id (continuity)."""
        body: dict[str, str] = {"apiKey": self.settings.api_key}
        if session_id:
            body["sessionId"] = session_id
        return parse_session_answer(self._json("POST", self._session_url(), json=body,
                                               timeout=timeout))

    def klaviyo_segments(self, session_id: str, exchange_id: str, *,
                         timeout: Timeout | None = None) -> SessionAnswer:
        body = {"apiKey": self.settings.api_key, "sessionId": session_id,
                "sessionInfo": {"connectorInfo": [
                    {"connectorType": "klaviyo", "exchangeId": exchange_id}]}}
        return parse_session_answer(self._json("POST", self._session_url(), json=body,
                                               timeout=timeout))

    # -- step 2: recommendation settings (docs/klevu-wire-format.md §2) ----------------------------
    def recs_config(self, recs_key: str, params: dict[str, str], *,
                    timeout: Timeout | None = None) -> dict[str, Any]:
        url = (f"{self.settings.config_url}/recommendations/"
               f"{quote(self.settings.api_key, safe='')}/settings/{quote(recs_key, safe='')}")
        if params:
            url = f"{url}?{config_query(params)}"
        body = self._json("GET", url, timeout=timeout)
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise KlevuError(f"config for {recs_key} has no metadata")
        return body

    # -- step 3: search (docs/klevu-wire-format.md §3) ---------------------------------------------
    def search_url(self, base_path: str) -> str:
        """``KLEVU_SEARCH_URL`` when set, else https:// + the config's scheme-less basePath."""
        if self.settings.search_url:
            return self.settings.search_url
        if not base_path or "://" in base_path:
            raise KlevuError(f"config basePath {base_path!r} is not a scheme-less host/path")
        return "https://" + base_path.lstrip("/")

    def search(self, base_path: str, payload: dict[str, Any], *,
               timeout: Timeout | None = None) -> dict[str, Any]:
        body = self._json("POST", self.search_url(base_path),
                          data=json.dumps(payload, separators=(",", ":")),
                          headers={"Content-Type": "application/json"}, timeout=timeout)
        if not isinstance(body, dict) or not isinstance(body.get("queryResults"), list):
            raise KlevuError("search answered without queryResults")
        return body

    # -- step 4: analytics (docs/klevu-wire-format.md §5) ------------------------------------------
    def collect(self, events: list[dict[str, Any]], event_ids: list[str] | None = None, *,
                timeout: Timeout | None = None) -> None:
        """POST a batch of events; ids go in a header Klevu ignores, so duplicates can be
        counted."""
        headers = {"Content-Type": "application/json"}
        if event_ids:
            headers[EVENT_IDS_HEADER] = ",".join(event_ids)
        self._call("POST", self.settings.stats_url,
                   data=json.dumps(events, separators=(",", ":")), headers=headers,
                   timeout=timeout)
