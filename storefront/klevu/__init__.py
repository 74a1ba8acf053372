"""Klevu integration: the one HTTP client, bound per app; the steps live in the modules
beside it."""
from __future__ import annotations

from flask import Flask

from .client import KlevuClient


class Klevu:
    """Binds one ``KlevuClient`` per app (connection pool shared by all requests)."""

    def init_app(self, app: Flask) -> None:
        app.extensions["klevu_client"] = KlevuClient(app.config["KLEVU"])


klevu = Klevu()
