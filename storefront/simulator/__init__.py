"""The offline Klevu: a Flask app that answers the storefront like Klevu's four services.

Visitor sessions and Klaviyo segments, the recommendations config CDN, search and the
analytics collector, all in one process, with the wire formats of docs/klevu-wire-format.md, so the
storefront runs the same client code offline and live. It indexes the shop's own catalog,
keeps everything it receives in memory for tests and the ``/_sim/`` dashboard, and can be told
to fail or slow down (``/_sim/faults``) to show how the shop copes.

Run it with ``python -m storefront.simulator`` (see ``__main__``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from ..catalog import load_catalog
from ..security import headers as security_headers
from .account import API_KEY
from .records import build_index
from .recs_configs import demo_configs
from .routes import collect, control, dashboard, recs_settings, scenario, search, visitor
from .routes.guards import Rejected, rejected
from .scenarios import Pack, catalogue, load as load_pack
from .state import DemoData, install

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

DEFAULTS = {
    "SIMULATOR_API_KEY": API_KEY,
    "SIMULATOR_SHOP_URL": "",  # "" keeps the shop's root-relative links
    "SIMULATOR_SEGMENT_TTL": 300,  # seconds a visitor's Klaviyo segments stay valid
    "SIMULATOR_SESSION_TTL": 3600,  # seconds a visitor session lives
    "SIMULATOR_JOURNAL_SIZE": 50,  # recent calls kept for /_sim/state and the dashboard
    "KLEVU_IMAGE_HOSTS": (),  # the dashboard's CSP: no image from another host
    "SIMULATOR_SCENARIO": "",  # a scenario pack to start in: a shipped pack's name, or a path
    # The host names its control routes and dashboard answer to (against DNS rebinding);
    # ``--host`` and SIMULATOR_ALLOWED_HOSTS add theirs.
    "SIMULATOR_HOSTS": LOOPBACK_NAMES,
}


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update(config or {})
    assert isinstance(app.json, DefaultJSONProvider)
    app.json.sort_keys = False  # answers read in the order of Klevu's documentation
    packs, first = scenario_packs(app.config["SIMULATOR_SCENARIO"])
    if first is not None and first.recorded is not None:
        app.config["SIMULATOR_API_KEY"] = first.recorded.api_key  # the recorded account's
    install(app, demo_data(app.config), packs, first)
    # The shop's security headers and CSP (nonce for the dashboard's own script and style).
    security_headers.init_app(app)
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def demo_data(config) -> DemoData:
    shop_url = config["SIMULATOR_SHOP_URL"].rstrip("/")
    if shop_url and (
        urlsplit(shop_url).scheme not in ("http", "https") or not urlsplit(shop_url).netloc
    ):
        raise ValueError(f"SIMULATOR_SHOP_URL must be an http(s) URL, got {shop_url!r}")
    return DemoData(
        api_key=config["SIMULATOR_API_KEY"],
        shop_url=shop_url,
        index=build_index(load_catalog(), shop_url),
        recs=demo_configs(),
    )


def scenario_packs(start_in: str) -> tuple[dict[str, Pack], Pack | None]:
    """Every pack the console offers (checked now: a bad one stops the start), and the one
    to start in; a pack file named by path joins the shipped ones."""
    first = load_pack(start_in) if start_in else None
    return catalogue([first] if first else []), first


def register_blueprints(app: Flask) -> None:
    for module in (visitor, recs_settings, search, collect, control, dashboard, scenario):
        app.register_blueprint(module.bp)


def register_errorhandlers(app: Flask) -> None:
    """Every error is JSON, as from an API; a route's own handler may reshape it (search)."""
    app.register_error_handler(Rejected, rejected)

    def http_error(exc: HTTPException):
        return jsonify(error=exc.description), exc.code

    app.register_error_handler(HTTPException, http_error)
