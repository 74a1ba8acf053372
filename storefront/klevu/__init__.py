"""Klevu integration: the one HTTP client, bound per app; the steps live in the modules
beside it."""
from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from .client import KlevuClient

ProductUrl = Callable[[str], "str | None"]


class Klevu:
    """Binds one ``KlevuClient`` per app (connection pool shared by all requests).

    The Klevu package knows nothing of the shop. Where it must send a shopper to a product
    page (the no-JavaScript click route), it asks the function the shop registered with
    ``product_url_loader``, as Flask-Login asks its ``user_loader``.
    """

    def __init__(self) -> None:
        self._product_url: ProductUrl | None = None

    def init_app(self, app: Flask) -> None:
        app.extensions["klevu_client"] = KlevuClient(app.config["KLEVU"])

    def product_url_loader(self, loader: ProductUrl) -> ProductUrl:
        """Register the shop's ``item id → product page URL`` (None: not a product we sell)."""
        self._product_url = loader
        return loader

    def product_url(self, item_id: str) -> str | None:
        return self._product_url(item_id) if self._product_url else None


klevu = Klevu()
