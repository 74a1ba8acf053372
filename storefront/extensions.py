"""Extension objects, created without an app and bound in ``create_app`` with ``init_app``.

Flask-Caching holds visitors' Klevu sessions and segments: the in-process ``SimpleCache`` by
default, Redis when ``CACHE_REDIS_URL`` is set so several workers and hosts share them.
"""

from typing import Any

from flask import Flask
from flask_caching import Cache

cache = Cache()


def shared_store(app: Flask) -> Any:
    """The app's cache backend itself (cachelib's ``get/set/add/delete``), which, unlike the
    ``cache`` front-end, needs no app context: what the steps' pool threads read and write."""
    with app.app_context():
        return cache.cache
