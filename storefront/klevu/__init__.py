"""Klevu integration: the client, the renderer and (through blueprints) the four guide steps."""
from __future__ import annotations

from flask import Flask, current_app

from .client import KlevuClient


class Klevu:
    """Binds one ``KlevuClient`` per app (connection pool shared by all requests)."""

    def init_app(self, app: Flask) -> None:
        app.extensions["klevu_client"] = KlevuClient(app.config["KLEVU"])

    @property
    def client(self) -> KlevuClient:
        return current_app.extensions["klevu_client"]


klevu = Klevu()
