"""The one place the storefront talks HTTP to Klevu.

One ``requests.Session`` (connection pooling), a timeout on every call, and every failure —
connection refused, timeout, non-2xx, an answer that is not the JSON we expect — turned into a
single ``KlevuError``, so callers handle one exception type and never see a traceback page.
The same code serves live Klevu and the offline simulator: only the base URLs differ.
Framework-free: whoever builds the client sees its calls through ``on_call`` hooks (as
httpx's ``event_hooks``), so the client can be used, and tested, without Flask.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from ..config import KlevuSettings
from .breaker import CircuitBreaker

log = logging.getLogger(__name__)

# (connect, read) seconds. Pages have their own deadline on top of these (recs.py).
DEFAULT_TIMEOUT = (1.0, 2.0)
Timeout = float | tuple[float, float]  # requests: one for both, or (connect, read)
EVENT_IDS_HEADER = "X-Storefront-Event-Ids"
BREAKER_SERVICES = ("visitor", "config", "search")  # the collector has its own backoff
MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class KlevuError(Exception):
    """A Klevu call failed. ``status`` is the HTTP status when there was one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BreakerOpen(KlevuError):
    """The service's circuit breaker is open: the call was not made at all."""

    def __init__(self, message: str, *, service: str | None = None):
        super().__init__(message)
        self.service = service  # which breaker refused, where the caller knows it


@dataclass(frozen=True)
class Reply:
    """A config or search answer, and how long Klevu says it stays fresh (None: not said)."""

    body: dict[str, Any]
    max_age: int | None = None


# An answer without a ttl: JSv2 keeps the session for its ``user.sessionRefresh`` default.
DEFAULT_SESSION_TTL = 300


@dataclass(frozen=True)
class Call:
    """One HTTP call as the ``on_call`` hooks see it: ``status`` and ``ms`` when Klevu
    answered, ``error`` (the exception's name) when it did not."""

    method: str
    url: str
    status: int | None = None
    ms: float | None = None
    error: str | None = None
    service: str = "collect"  # visitor, config, search, or the collector


OnCall = Callable[[Call], None]


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


def parse_max_age(cache_control: str | None) -> int | None:
    """Seconds from ``Cache-Control: max-age``; ``no-store``/``no-cache`` mean 0."""
    if not cache_control:
        return None
    if re.search(r"no-store|no-cache", cache_control, re.IGNORECASE):
        return 0
    match = MAX_AGE_RE.search(cache_control)
    return int(match.group(1)) if match else None


def parse_session_answer(body: object) -> SessionAnswer:
    """Read only what we need from a visitor-service answer (the api key's case varies)."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("sessionId"), str)
        or not body["sessionId"]
    ):
        raise KlevuError("visitor service answered without a sessionId")
    info = body.get("segmentInfo") or {}
    segments = info.get("segments") if isinstance(info, dict) else None
    ttl = info.get("ttl", DEFAULT_SESSION_TTL) if isinstance(info, dict) else DEFAULT_SESSION_TTL
    if not isinstance(segments, list):
        segments = []
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl < 0:
        ttl = 0  # present but unreadable: as JSv2, ask again on the next page
    return SessionAnswer(
        session_id=body["sessionId"],
        segments=tuple(s for s in segments if isinstance(s, str) and s),
        ttl=int(ttl),
    )


def config_query(params: dict[str, str]) -> str:
    """The config request's query string as ``@klevu/core`` writes it (§2): ``sids=a,b`` and
    ``cp=A;B`` keep their separators raw, so a CDN caches one key per segment set and category
    whichever client asked. Anything else that is not URL-safe is still percent-encoded."""
    return "&".join(
        f"{quote(key, safe='')}={quote(value, safe=',;')}" for key, value in params.items()
    )


class KlevuClient:
    def __init__(
        self,
        settings: KlevuSettings,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        breaker_failures: int = 3,
        breaker_cooldown: float = 10.0,
        shared: Any = None,
        on_call: Iterable[OnCall] = (),
    ) -> None:
        """``shared``: a cachelib-style store where breakers tell other workers they opened;
        ``on_call``: called after every HTTP call, answered or not, in the caller's thread."""
        self.settings = settings
        self.on_call = tuple(on_call)
        self.timeout = timeout
        self.http = session or requests.Session()
        self.http.headers["User-Agent"] = "klevu-klaviyo-storefront/0.1"
        self.breakers = {
            service: CircuitBreaker(
                service, failures=breaker_failures, cooldown=breaker_cooldown, shared=shared
            )
            for service in BREAKER_SERVICES
        }

    # -- plumbing ---------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        url: str,
        *,
        service: str | None = None,
        timeout: Timeout | None = None,
        due: float | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP call; ``service`` names the breaker that guards it (None: unguarded);
        ``due`` (``time.monotonic``): when the page waiting for it stops waiting, after which
        the breaker counts it as failed (``CircuitBreaker.overdue``)."""
        breaker = self.breakers.get(service) if service else None
        # What errors say of the call: logs must not carry the api key (it is in the path).
        shown = mask_api_key(url, self.settings.api_key)
        if breaker is not None and not breaker.allow():
            raise BreakerOpen(f"{method} {shown}: {service} circuit open")
        call = breaker.started(due) if breaker is not None else None
        try:
            response = self.http.request(method, url, timeout=timeout or self.timeout, **kwargs)
            self._called(
                Call(
                    method,
                    response.url,
                    status=response.status_code,
                    ms=round(response.elapsed.total_seconds() * 1000, 1),
                    service=service or "collect",
                )
            )
        except requests.RequestException as exc:
            url_sent = getattr(exc.request, "url", None) or url
            self._called(
                Call(method, url_sent, error=type(exc).__name__, service=service or "collect")
            )
            if breaker is not None:
                breaker.ended(call, ok=False)
            raise KlevuError(f"{method} {shown}: {type(exc).__name__}") from exc
        if breaker is not None:
            breaker.ended(call, ok=response.status_code != 429 and response.status_code < 500)
        if not 200 <= response.status_code < 300:
            raise KlevuError(
                f"{method} {shown}: HTTP {response.status_code}",
                status=response.status_code,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _called(self, call: Call) -> None:
        for hook in self.on_call:
            try:
                hook(call)
            except Exception:  # an observer's fault must not fail the call it observes
                log.exception("on_call hook %r failed", hook)

    def _json(self, method: str, url: str, **kwargs: Any) -> tuple[object, requests.Response]:
        response = self._call(method, url, **kwargs)
        try:
            return response.json(), response
        except ValueError as exc:
            shown = mask_api_key(url, self.settings.api_key)
            raise KlevuError(f"{method} {shown}: answer is not JSON") from exc

    # -- step 1: visitor session and segments (docs/klevu-wire-format.md §1) -----------------------
    def _session_url(self) -> str:
        return f"{self.settings.visitor_url}/{quote(self.settings.api_key, safe='')}/session"

    def start_session(
        self,
        session_id: str | None = None,
        exchange_id: str | None = None,
        *,
        timeout: Timeout | None = None,
        due: float | None = None,
    ) -> SessionAnswer:
        """Open a session, or refresh one by re-posting its id (continuity); with the
        Klaviyo exchange id, the same one call also answers the visitor's segments
        (docs/klevu-wire-format.md §1: one call, not two)."""
        body: dict[str, Any] = {"apiKey": self.settings.api_key}
        if session_id:
            body["sessionId"] = session_id
        # Both Klevu libraries always send the connector list, empty without an exchange id.
        klaviyo = {"connectorType": "klaviyo", "exchangeId": exchange_id}
        body["sessionInfo"] = {"connectorInfo": [klaviyo] if exchange_id else []}
        answer, _ = self._json(
            "POST", self._session_url(), service="visitor", json=body, timeout=timeout, due=due
        )
        return parse_session_answer(answer)

    # -- step 2: recommendation settings (docs/klevu-wire-format.md §2) ----------------------------
    def recs_config(
        self,
        recs_key: str,
        params: dict[str, str],
        *,
        timeout: Timeout | None = None,
        due: float | None = None,
    ) -> Reply:
        url = (
            f"{self.settings.config_url}/recommendations/"
            f"{quote(self.settings.api_key, safe='')}/settings/{quote(recs_key, safe='')}"
        )
        if params:
            url = f"{url}?{config_query(params)}"
        body, response = self._json("GET", url, service="config", timeout=timeout, due=due)
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise KlevuError(f"config for {recs_key} has no metadata")
        return Reply(body, parse_max_age(response.headers.get("Cache-Control")))

    # -- step 3: search (docs/klevu-wire-format.md §3) ---------------------------------------------
    def search_url(self, base_path: str) -> str:
        """``KLEVU_SEARCH_URL`` when set, else https:// + the config's scheme-less basePath."""
        if self.settings.search_url:
            return self.settings.search_url
        if not base_path or "://" in base_path:
            raise KlevuError(f"config basePath {base_path!r} is not a scheme-less host/path")
        return "https://" + base_path.lstrip("/")

    @staticmethod
    def search_body(payload: dict[str, Any]) -> str:
        """The exact request body: also the search answer's key in the answers cache."""
        return json.dumps(payload, separators=(",", ":"), sort_keys=True)

    def search(
        self, url: str, body: str, *, timeout: Timeout | None = None, due: float | None = None
    ) -> Reply:
        """``url`` from ``search_url``, ``body`` from ``search_body``."""
        answer, response = self._json(
            "POST",
            url,
            service="search",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            due=due,
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("queryResults"), list):
            raise KlevuError("search answered without queryResults")
        return Reply(answer, parse_max_age(response.headers.get("Cache-Control")))

    def overdue(self, due: float) -> None:
        """A page stops waiting at ``due``: its calls still in flight count as failed."""
        for breaker in self.breakers.values():
            breaker.overdue(due)

    # -- step 4: analytics (docs/klevu-wire-format.md §5) ------------------------------------------
    def collect(
        self,
        events: list[dict[str, Any]],
        event_ids: list[str] | None = None,
        *,
        timeout: Timeout | None = None,
    ) -> None:
        """POST a batch of events; ids go in a header Klevu ignores, so duplicates can be
        counted."""
        headers = {"Content-Type": "application/json"}
        if event_ids:
            headers[EVENT_IDS_HEADER] = ",".join(event_ids)
        self._call(
            "POST",
            self.settings.stats_url,
            data=json.dumps(events, separators=(",", ":")),
            headers=headers,
            timeout=timeout,
        )


def mask_api_key(text: str, api_key: str) -> str:
    """``text`` with the api key shortened to its start and last four characters: what the
    inspector and ``klevu check`` show of URLs, bodies and errors."""
    if not api_key or len(api_key) < 8:
        return text.replace(api_key, "••••") if api_key else text
    head = api_key.split("-", 1)[0] + "-" if "-" in api_key[:-4] else api_key[:2]
    return text.replace(api_key, f"{head}…{api_key[-4:]}")
