"""The demo storefront: Klaviyo segmentation with Klevu Smart Recommendations.

``create_app`` reads like the table of contents of one page view: identity (Klaviyo cookie
and consent), segments (Klevu visitor service), banners (config → search → template), and
analytics (beacon → outbox → collector); around them all, the security layer.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask

from . import config as settings, requestlog
from .extensions import cache

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static")
    )
    configure(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands()
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    """Settings from the environment (validated: a bad value stops start-up) or, as in
    flaskr, a test's complete config instead (``tests/helpers.app_config`` builds one)."""
    app.config.from_mapping(settings.from_env() if test_config is None else test_config)
    settings.check_app_config(app.config)
    data_dir = Path(app.config["STOREFRONT_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _shared_secret(data_dir / "secret_key")
    # A hung Redis must not hold pages past their deadline: short socket timeouts.
    cache_config = (
        {
            "CACHE_TYPE": "RedisCache",
            "CACHE_OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
        if app.config.get("CACHE_REDIS_URL")
        else {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 10000}
    )
    for key, value in cache_config.items():
        app.config.setdefault(key, value)
    app.config.setdefault("CACHE_KEY_PREFIX", "storefront:")
    logging.basicConfig(
        level=logging.INFO, handlers=[requestlog.log_handler(app.config["STOREFRONT_LOG_FORMAT"])]
    )


def _shared_secret(path: Path) -> str:
    """One secret per data directory, so every worker signs cookies and banner tokens alike.

    Written to a temporary file and hard-linked into place: the link either wins or finds the
    other worker's complete file, never a half-written one.
    """
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def register_extensions(app: Flask) -> None:
    """Shared services, in the order a page view uses them."""
    from . import metrics, security
    from .klevu import klevu

    requestlog.init_app(app)  # first: every later hook's log lines carry the request id
    security.init_app(app)  # headers, CSP nonce and same-origin POSTs, for every response
    cache.init_app(app)
    klevu.init_app(app)  # the client to Klevu's four services, then steps 1 to 4 in order
    metrics.init_app(app)  # /metrics: pages, Klevu calls and answers, breakers, outbox


def register_blueprints(app: Flask) -> None:
    from . import health, identity, inspector, personas
    from .klevu.analytics import routes as analytics
    from .klevu.banners import styles
    from .klevu.segments import resolver
    from .shop import bp as shop

    # The inspector first: its trace must begin before identity may answer with a redirect.
    for blueprint in (
        inspector.bp,
        identity.bp,
        personas.bp,
        resolver.bp,
        styles.bp,
        analytics.bp,
        shop,
        health.bp,
    ):
        app.register_blueprint(blueprint)


def register_errorhandlers(app: Flask) -> None:
    from .errors import register

    register(app)


def register_commands() -> None:
    """``flask klevu record`` joins the Klevu package's ``flask klevu`` group (``check``)."""
    from . import record  # noqa: F401  (the command registers on import)
