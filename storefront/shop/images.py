"""Product and promo pictures, drawn as SVG from catalog data: no binary assets, no network.

Square 600×600 product images, so banners and grids can reserve their space (no layout shift).
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

from flask import Response, abort

from ..catalog import Product, load_catalog
from . import bp

CACHE_SECONDS = 86400

# One simple silhouette per category, drawn in a 600×600 box.
TENT = (
    '<path d="M120 430 L300 150 L480 430 Z" fill="{fg}" opacity=".9"/>'
    '<path d="M300 150 L340 430 L260 430 Z" fill="{bg}" opacity=".35"/>'
)
PACK = (
    '<rect x="200" y="170" width="200" height="260" rx="60" fill="{fg}"/>'
    '<rect x="235" y="300" width="130" height="90" rx="20" fill="{bg}" opacity=".35"/>'
    '<path d="M250 175 Q300 110 350 175" stroke="{fg}" stroke-width="22" fill="none"/>'
)
TOP = (
    '<path d="M210 150 L260 130 Q300 170 340 130 L390 150 L460 230 L410 270 '
    'L390 250 L390 450 L210 450 L210 250 L190 270 L140 230 Z" fill="{fg}"/>'
)
POT = (
    '<rect x="170" y="250" width="260" height="180" rx="24" fill="{fg}"/>'
    '<ellipse cx="300" cy="250" rx="130" ry="34" fill="{fg}" opacity=".75"/>'
    '<rect x="285" y="160" width="30" height="70" rx="10" fill="{fg}"/>'
)
LAMP = (
    '<path d="M220 160 L380 160 L430 290 L170 290 Z" fill="{fg}"/>'
    '<rect x="290" y="290" width="20" height="130" fill="#555"/>'
    '<rect x="220" y="420" width="160" height="24" rx="12" fill="#555"/>'
)
SHAPES = {
    "Tents": TENT,
    "Backpacks": PACK,
    "Jackets": TOP,
    "Knitwear": TOP,
    "Kitchen": POT,
    "Lighting": LAMP,
}


def product_svg(product: Product) -> str:
    shade = int(hashlib.sha256(product.id.encode()).hexdigest()[:2], 16) % 40
    bg = f"hsl(40 30% {88 - shade // 4}%)"
    shape = SHAPES.get(product.category.name, POT).format(fg=product.color_hex, bg=bg)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 600 600" width="600" height="600" '
        f'role="img" aria-label="{escape(product.name)}">'
        f'<rect width="600" height="600" fill="{bg}"/>{shape}'
        f'<text x="300" y="530" font-family="system-ui,sans-serif" font-size="30" '
        f'text-anchor="middle" fill="#333">{escape(product.brand)}</text></svg>'
    )


PROMOS = {
    "sale-desktop": (1200, 300, "End of season sale", "Up to 30% off outerwear and tents"),
    "sale-mobile": (600, 400, "End of season sale", "Up to 30% off"),
}


def promo_svg(width: int, height: int, headline: str, line: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(headline)}">'
        f'<rect width="{width}" height="{height}" fill="#b5502b"/>'
        f'<circle cx="{width * 0.85}" cy="{height * 0.2}" r="{height * 0.6}" fill="#d9773f"/>'
        f'<text x="{width * 0.06}" y="{height * 0.45}" font-family="system-ui,sans-serif" '
        f'font-size="{height * 0.16}" font-weight="700" fill="#fff">{escape(headline)}</text>'
        f'<text x="{width * 0.06}" y="{height * 0.65}" font-family="system-ui,sans-serif" '
        f'font-size="{height * 0.09}" fill="#fff">{escape(line)}</text></svg>'
    )


def svg_response(svg: str) -> Response:
    response = Response(svg, mimetype="image/svg+xml")
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    return response


@bp.get("/img/p/<product_id>.svg")
def product_image(product_id: str):
    product = load_catalog().product(product_id) or abort(404)
    return svg_response(product_svg(product))


@bp.get("/img/promo/<name>.svg")
def promo_image(name: str):
    promo = PROMOS.get(name) or abort(404)
    return svg_response(promo_svg(*promo))
