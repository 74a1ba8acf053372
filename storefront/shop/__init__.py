"""The mock shop: home, category, product, cart and checkout pages, each with its banners."""

from flask import Blueprint

bp = Blueprint("shop", __name__)

from . import compare, images, views  # noqa: E402,F401  (routes register on import)
