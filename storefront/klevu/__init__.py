"""The Klevu extension: ``klevu.init_app(app)`` binds the one HTTP client and each step of the
guide to an app, in the order a page view uses them.

Every per-app service is bound the same way, as flaskr binds its database: a module-level
``init_app(app)`` in the step that owns it, with a typed accessor beside it
(``klevu_client()`` here, ``segments.resolver.segment_resolver()``,
``banners.placement.banner_services()``, ``analytics.delivery.outbox()``), so nothing else
reads ``app.extensions`` by key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, current_app

from ..extensions import shared_store
from . import metrics, trace
from .client import Call, KlevuClient
from .segments.visitor import ANONYMOUS_VISITOR, Visitor

if TYPE_CHECKING:
    from .banners.queries import PageContext

CLIENT = "klevu.client"  # app.extensions key; read through ``klevu_client()``

ProductUrl = Callable[[str], "str | None"]
SamplePage = Callable[[str, "str | None"], "PageContext | None"]
VisitorLoader = Callable[[], Visitor]


class Klevu:
    """Binds one ``KlevuClient`` per app (connection pool shared by all requests).

    The Klevu package knows nothing of the shop. What it needs from it, it asks of functions
    the shop registers, as Flask-Login asks its ``user_loader``: who the visitor is
    (``visitor_loader``: step 0's answer for step 1), where a product's page is
    (``product_url_loader``, for the no-JavaScript click route), and a page of each type for
    ``flask klevu check`` to try (``sample_page_loader``).
    """

    def __init__(self) -> None:
        self._product_url: ProductUrl | None = None
        self._sample_page: SamplePage | None = None
        self._visitor: VisitorLoader | None = None

    def init_app(self, app: Flask) -> None:
        from .analytics import delivery, routes as analytics, shown
        from .banners import placement
        from .check import klevu_cli
        from .segments import resolver

        shared = shared_store(app)
        app.extensions[CLIENT] = KlevuClient(
            app.config["KLEVU"],
            breaker_failures=app.config["KLEVU_BREAKER_FAILURES"],
            breaker_cooldown=app.config["KLEVU_BREAKER_COOLDOWN"],
            shared=shared,
            # Each call in the page's trace, and counted for /metrics when that is on.
            on_call=[_trace_call, *([metrics.observe] if app.config["STOREFRONT_METRICS"] else [])],
        )
        resolver.init_app(app)  # step 1: session + segments over the shared cache
        placement.init_app(app)  # steps 2-3: answers cache, template renderer, banner pool
        delivery.init_app(app)  # step 4: durable queue, its relay, `flask relay`
        analytics.init_app(app)  # step 4: the beacon's rate limits
        shown.init_app(app)  # step 4: the banners this worker showed, for click links
        app.cli.add_command(klevu_cli)

    def product_url_loader(self, loader: ProductUrl) -> ProductUrl:
        """Register the shop's ``item id → product page URL`` (None: not a product we sell)."""
        self._product_url = loader
        return loader

    def product_url(self, item_id: str) -> str | None:
        return self._product_url(item_id) if self._product_url else None

    def visitor_loader(self, loader: VisitorLoader) -> VisitorLoader:
        """Register the shop's ``() → Visitor`` for the current request."""
        self._visitor = loader
        return loader

    def visitor(self) -> Visitor:
        """The current request's visitor; anonymous until the shop registers a loader."""
        return self._visitor() if self._visitor else ANONYMOUS_VISITOR

    def sample_page_loader(self, loader: SamplePage) -> SamplePage:
        """Register the shop's ``(page type, product id or None) → PageContext`` (None: no
        such product): a page of that type for ``flask klevu check`` to try."""
        self._sample_page = loader
        return loader

    def sample_page(self, page_type: str, product_id: str | None = None) -> PageContext | None:
        from .banners.queries import PageContext

        if self._sample_page is None:
            return PageContext(page_type=page_type)
        return self._sample_page(page_type, product_id)


def _trace_call(call: Call) -> None:
    """The client's calls in the request's trace (``trace.py``), for the page inspector."""
    facts = {"status": call.status, "ms": call.ms, "error": call.error}
    trace.note(
        "http",
        method=call.method,
        url=call.url,
        **{k: v for k, v in facts.items() if v is not None},
    )


klevu = Klevu()


def klevu_client(app: Flask | None = None) -> KlevuClient:
    """The app's one client to Klevu's four services (``current_app``'s by default)."""
    return (app or current_app).extensions[CLIENT]
