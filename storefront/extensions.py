"""Extension objects, created without an app and bound in ``create_app`` with ``init_app``.

Flask-Caching holds visitors' Klevu sessions and segments: the in-process ``SimpleCache`` by
default, Redis when ``CACHE_REDIS_URL`` is set so several workers and hosts share them.
"""

from flask_caching import Cache

cache = Cache()
