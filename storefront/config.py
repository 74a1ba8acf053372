"""Settings from the environment, checked once at start-up.

``KLEVU_API_KEY`` is the one required setting. With ``KLEVU_SIMULATOR_URL`` set, every Klevu
service is reached at that URL (offline: the Klevu simulator, which ``make run`` starts and
configures the shop for); without it, at Klevu's own hosts. The shop knows nothing else of
the simulator: its api key and recs keys arrive as settings, like a live account's. A bad
value stops start-up with a message naming the variable: a typo must not become a shop that
silently shows no banners. Every setting, with its default: the README's "Configuration".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LIVE_VISITOR_URL = "https://visitor.service.ksearchnet.com/public/1.0"
LIVE_CONFIG_URL = "https://config-cdn.ksearchnet.com"
LIVE_STATS_URL = "https://stats.ksearchnet.com/analytics/collect"

PAGE_TYPES = ("HOME", "CATEGORY", "PRODUCT", "CHECKOUT")

COMPANY_ID_RE = re.compile(r"^[A-Za-z0-9]{6}$")
CURRENCY_CODE_RE = re.compile(r"^[A-Za-z]{3}$")
# The fields of a currency in JSv2's currency map, and the type each must have.
CURRENCY_FIELDS: dict[str, type] = {
    "string": str,
    "format": str,
    "atEnd": bool,
    "precision": int,
    "grouping": int,
    "decimal": str,
    "thousand": str,
}
VIEW_RULES = ("rendered", "visible")
LOG_FORMATS = ("human", "json")
# A CSP source for images: an origin (``https://cdn.example.com``, ``https://*.example.com``,
# a port allowed) or a bare scheme (``https:``). Nothing else, so that no value can smuggle a
# keyword or another directive into the policy.
IMAGE_HOST_RE = re.compile(
    r"^(?:https?:|https?://(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?(?::\d{1,5})?)$"
)
# A BCP 47 language tag as browsers send it: "en-US", "de", "fr-CA", "zh-Hant-TW".
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
RECS_KEY_RE = re.compile(r"^[\w\-]{1,100}$")


class ConfigError(ValueError):
    """A setting is malformed; the message names the environment variable."""


@dataclass(frozen=True)
class KlevuSettings:
    api_key: str
    visitor_url: str
    config_url: str
    search_url: str | None  # None: https:// + the config's basePath
    stats_url: str
    recs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    offline: bool = True


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _recs_keys(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for key in keys:
        if not RECS_KEY_RE.match(key):
            raise ConfigError(f"{name} holds a malformed recs key {key!r}")
    return keys


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def currency_formats(env: dict, name: str = "KLEVU_CURRENCY_FORMATS") -> dict[str, dict]:
    """The shop's own currency formats for ``helper.processCurrency``, as JSv2 registers them.

    A JSON object, e.g. ``{"EUR": {"string": "€"}, "SEK": {"string": " kr", "atEnd": true}}``.
    Unset, every currency is shown as Klevu's recommendations module shows one it does not
    know: "EUR 850.00". A symbol is a choice the shop makes here, never a built-in guess.
    """
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        formats = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} is not JSON: {exc}") from None
    if not isinstance(formats, dict):
        raise ConfigError(f"{name} must be a JSON object of currency code → format")
    for code, fmt in formats.items():
        if not CURRENCY_CODE_RE.match(code) or not isinstance(fmt, dict):
            raise ConfigError(f"{name}: {code!r} must be a 3-letter code with an object")
        for key, value in fmt.items():
            expected = CURRENCY_FIELDS.get(key)
            if expected is None:
                raise ConfigError(f"{name}: {code} has an unknown field {key!r}")
            if type(value) is not expected:
                raise ConfigError(f"{name}: {code}.{key} must be {expected.__name__}")
        if not 0 <= fmt.get("precision", 2) <= 6 or not 1 <= fmt.get("grouping", 3) <= 9:
            raise ConfigError(f"{name}: {code} precision is 0-6 and grouping 1-9")
        if fmt.get("format", "%s%s").count("%s") != 2:
            raise ConfigError(f"{name}: {code}.format needs two %s (symbol and amount)")
    return formats


def _choice(env: dict, name: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _int(env: dict, name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _locale(env: dict, name: str = "STOREFRONT_LOCALE") -> str:
    value = env.get(name, "").strip() or "en-US"
    if not LOCALE_RE.match(value):
        raise ConfigError(f"{name} must be a language tag such as en-US, got {value!r}")
    return value


def _image_hosts(env: dict) -> tuple[str, ...]:
    """``KLEVU_IMAGE_HOSTS``: where banner images may load from, besides the shop itself.

    Offline, every image (catalog and simulator records) is the shop's own ``/img/...``; a live
    Klevu index holds the merchant's image URLs, whose hosts only the merchant knows.
    """
    hosts = tuple(
        h.strip().rstrip("/") for h in env.get("KLEVU_IMAGE_HOSTS", "").split(",") if h.strip()
    )
    for host in hosts:
        if not IMAGE_HOST_RE.match(host):
            raise ConfigError(
                f"KLEVU_IMAGE_HOSTS holds {host!r}, which is not an origin "
                "(https://cdn.example.com) or a scheme (https:)"
            )
    return hosts


def _outbox_url(env: dict) -> str | None:
    value = env.get("OUTBOX_URL", "").strip()
    if "://" in value and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"OUTBOX_URL must be a directory or a redis:// URL, got {value!r}")
    return value or None


def _scheme(env: dict) -> str:
    scheme = env.get("PREFERRED_URL_SCHEME", "").strip().lower() or "http"
    if scheme not in ("http", "https"):
        raise ConfigError(f"PREFERRED_URL_SCHEME must be http or https, got {scheme!r}")
    return scheme


def klevu_settings(env: Mapping[str, str]) -> KlevuSettings:
    api_key = env.get("KLEVU_API_KEY", "").strip()
    if not api_key:
        raise ConfigError(
            "KLEVU_API_KEY is not set: give your Klevu api key, or start the "
            "shop with `make run`, which starts the Klevu simulator and points "
            "the shop at it"
        )
    if not re.match(r"^[\w\-]{1,100}$", api_key):
        raise ConfigError("KLEVU_API_KEY holds characters an api key cannot have")
    offline = bool(env.get("KLEVU_SIMULATOR_URL", "").strip())
    if offline:
        sim = _url(env, "KLEVU_SIMULATOR_URL", "")
        defaults = {
            "visitor": f"{sim}/visitor/public/1.0",
            "config": sim,
            "search": f"{sim}/cs/v2/search",
            "stats": f"{sim}/analytics/collect",
        }
    else:
        defaults = {
            "visitor": LIVE_VISITOR_URL,
            "config": LIVE_CONFIG_URL,
            "search": "",
            "stats": LIVE_STATS_URL,
        }
    search = env.get("KLEVU_SEARCH_URL", "").strip() or defaults["search"]
    return KlevuSettings(
        api_key=api_key,
        visitor_url=_url(env, "KLEVU_VISITOR_URL", defaults["visitor"]),
        config_url=_url(env, "KLEVU_CONFIG_URL", defaults["config"]),
        search_url=_url({"KLEVU_SEARCH_URL": search}, "KLEVU_SEARCH_URL", "") if search else None,
        stats_url=_url(env, "KLEVU_STATS_URL", defaults["stats"]),
        recs={page: _recs_keys(env, f"KLEVU_RECS_{page}") for page in PAGE_TYPES},
        offline=offline,
    )


def from_env(env: dict | None = None) -> dict:
    """Flask config keys built from the environment (``os.environ`` by default)."""
    env = dict(os.environ if env is None else env)
    klevu = klevu_settings(env)
    company_id = env.get("KLAVIYO_COMPANY_ID", "").strip()
    if company_id and not COMPANY_ID_RE.match(company_id):
        raise ConfigError(f"KLAVIYO_COMPANY_ID must be 6 letters or digits, got {company_id!r}")
    scheme = _scheme(env)
    config: dict[str, Any] = {
        "KLEVU": klevu,
        "KLAVIYO_COMPANY_ID": company_id or None,
        "KLAVIYO_ONSITE": _bool(env, "KLAVIYO_ONSITE", False),
        "CONSENT_REQUIRED": _bool(env, "CONSENT_REQUIRED", True),
        "STOREFRONT_DATA_DIR": os.path.abspath(
            env.get("STOREFRONT_DATA_DIR", "").strip() or "instance"
        ),
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "CACHE_REDIS_URL": env.get("CACHE_REDIS_URL", "").strip() or None,
        # Klevu answers cache and resilience (docs/operations.md, "Klevu answers"): seconds
        # an answer is fresh without a Cache-Control max-age (0: no cache), how long a stale
        # answer may stand in when Klevu fails, and one time budget per page for all Klevu work.
        "KLEVU_CONFIG_TTL": _int(env, "KLEVU_CONFIG_TTL", 300, low=0, high=86_400),
        "KLEVU_SEARCH_TTL": _int(env, "KLEVU_SEARCH_TTL", 60, low=0, high=86_400),
        "KLEVU_STALE_LIMIT": _int(env, "KLEVU_STALE_LIMIT", 3600, low=0, high=7 * 86_400),
        "KLEVU_PAGE_BUDGET_MS": _int(env, "KLEVU_PAGE_BUDGET_MS", 800, low=1, high=60_000),
        # Circuit breaker per Klevu service: failures in a row that open it (across workers; a
        # call its page stopped waiting for is one), seconds it stays open before one probe
        # call decides. 3: with a service hung, at most three pages wait the whole budget.
        "KLEVU_BREAKER_FAILURES": _int(env, "KLEVU_BREAKER_FAILURES", 3, low=1, high=1000),
        "KLEVU_BREAKER_COOLDOWN": _int(env, "KLEVU_BREAKER_COOLDOWN", 10, low=1, high=3600),
        # Run the analytics relay inside the app (one per data dir); off when it runs alone
        # under `flask --app storefront relay`.
        "OUTBOX_RELAY_IN_APP": _bool(env, "OUTBOX_RELAY_IN_APP", True),
        # The outbox's bounds: events it holds before refusing new ones (503), and when an
        # undelivered event is dead-lettered (attempts, or seconds since it was accepted).
        "OUTBOX_MAX_EVENTS": _int(env, "OUTBOX_MAX_EVENTS", 100_000, low=1, high=10_000_000),
        "OUTBOX_MAX_ATTEMPTS": _int(env, "OUTBOX_MAX_ATTEMPTS", 20, low=1, high=1000),
        "OUTBOX_MAX_AGE": _int(env, "OUTBOX_MAX_AGE", 24 * 3600, low=60, high=30 * 86_400),
        # Where the outbox lives: unset, SQLite in the data dir; a directory, SQLite there; a
        # redis:// URL, one Redis Streams queue for every host (docs/operations.md, "Several
        # hosts"). A relay's claim lapses after the lease: another host's relay takes it over.
        "OUTBOX_URL": _outbox_url(env),
        "OUTBOX_LEASE_SECONDS": _int(env, "OUTBOX_LEASE_SECONDS", 60, low=5, high=3600),
        # The percentage of OUTBOX_MAX_EVENTS one client address may hold queued (at least 100
        # events), so a flood from one client during an outage leaves room for everyone else.
        "OUTBOX_CLIENT_SHARE": _int(env, "OUTBOX_CLIENT_SHARE", 5, low=1, high=100),
        "KLEVU_CURRENCY_FORMATS": currency_formats(env),
        # When the beacon reports an impression: "rendered" (JSv2: once the banner is in the
        # loaded page) or "visible" (half of it in view for a second).
        "KLEVU_VIEW_RULE": _choice(env, "KLEVU_VIEW_RULE", VIEW_RULES),
        # Security (storefront/security): https turns on HSTS and Secure cookies; proxy hops
        # is how many reverse proxies' X-Forwarded-* headers to trust (ProxyFix).
        "PREFERRED_URL_SCHEME": scheme,
        "STOREFRONT_PROXY_HOPS": _int(env, "STOREFRONT_PROXY_HOPS", 0, low=0, high=5),
        # The largest request body any route takes (Flask's own key): a bigger declared body
        # is refused with 413 before anything reads or parses it. The shop's forms are a few
        # hundred bytes and the beacon's limit is its own (8 KB).
        "MAX_CONTENT_LENGTH": _int(
            env, "MAX_CONTENT_LENGTH", 64 * 1024, low=1024, high=100 * 1024 * 1024
        ),
        "KLEVU_IMAGE_HOSTS": _image_hosts(env),
        # Flask's session cookie holds the cart and the form token: never for JavaScript.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": scheme == "https",
        # Tests only: banners skip the sanitizer, to prove the CSP holds on its own.
        "STOREFRONT_UNSAFE_NO_SANITIZE": _bool(env, "STOREFRONT_UNSAFE_NO_SANITIZE", False),
        # The page inspector shows visitors how their page was personalised: a demo tool, so
        # on with the simulator and off with a live api key unless asked for.
        "STOREFRONT_INSPECTOR": _bool(env, "STOREFRONT_INSPECTOR", klevu.offline),
        # Banner templates: the default locale of Intl and toLocaleString (a visitor's browser
        # language, on the server), and each render's limits (docs/performance.md).
        "STOREFRONT_LOCALE": _locale(env),
        "BANNER_RENDER_TIME_LIMIT_MS": _int(
            env, "BANNER_RENDER_TIME_LIMIT_MS", 250, low=10, high=5000
        ),
        "BANNER_RENDER_MEMORY_LIMIT_MB": _int(
            env, "BANNER_RENDER_MEMORY_LIMIT_MB", 32, low=8, high=1024
        ),
        # Observability (docs/operations.md, "Watching the shop"): Prometheus counts behind
        # /metrics, and the log format: "human" lines, or "json", one object per line with
        # one line per request, each carrying the request's id (also in X-Request-ID).
        "STOREFRONT_METRICS": _bool(env, "STOREFRONT_METRICS", True),
        "STOREFRONT_LOG_FORMAT": _choice(env, "STOREFRONT_LOG_FORMAT", LOG_FORMATS),
    }
    if config["CACHE_REDIS_URL"] and urlsplit(config["CACHE_REDIS_URL"]).scheme not in (
        "redis",
        "rediss",
        "unix",
    ):
        raise ConfigError("CACHE_REDIS_URL must be a redis:// URL")
    return config


def check_app_config(config: Mapping) -> None:
    """Checks of the final app config (environment plus test overrides), at start-up."""
    if config.get("STOREFRONT_UNSAFE_NO_SANITIZE") and not config.get("TESTING"):
        raise ConfigError(
            "STOREFRONT_UNSAFE_NO_SANITIZE is for tests only (TESTING): it lets "
            "banner markup reach the page unchecked"
        )
