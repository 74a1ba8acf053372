"""Page views only compose: catalog data, the cart, and the page's Klevu banners."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from ..catalog import load_catalog
from ..klevu import klevu
from ..klevu.analytics.recently_viewed import clicked_ids
from ..klevu.banners.placement import banners_for
from ..klevu.banners.queries import PageContext
from . import bp, cart


@klevu.product_url_loader
def product_page(item_id: str) -> str | None:
    """Where a banner click without JavaScript lands: our product page, for products we sell."""
    product = load_catalog().product(item_id)
    return url_for("shop.product", product_id=product.id) if product else None


@klevu.sample_page_loader
def sample_page(page_type: str, product_id: str | None) -> PageContext | None:
    """A page of ``page_type`` for ``flask klevu check``: around one product (the first, unless
    named), with it in the cart and recently viewed, so that every logic has its inputs."""
    catalog = load_catalog()
    product = catalog.product(product_id) if product_id else catalog.products[0]
    if product is None:
        return None
    on_product = page_type == "PRODUCT"
    return PageContext(
        page_type=page_type,
        category_path=product.category.path if page_type in ("CATEGORY", "PRODUCT") else (),
        product_id=product.id if on_product else None,
        item_group_id=product.item_group_id if on_product else None,
        cart=((product.id, product.item_group_id),),
        recently_viewed=(product.id,),
        recent_clicks=(product.id,),
    )


@bp.app_context_processor
def shop_globals() -> dict:
    return {"nav_categories": load_catalog().categories, "cart_count": cart.count()}


def page_context(page_type: str, **kwargs) -> PageContext:
    cart_items = tuple(
        (line.product.id, line.product.item_group_id) for line in cart.lines(load_catalog())
    )
    clicked = clicked_ids()  # Klevu's "recently viewed": banner clicks, newest first (§6)
    return PageContext(
        page_type=page_type,
        cart=cart_items,
        recently_viewed=clicked,
        recent_clicks=clicked,
        **kwargs,
    )


@bp.get("/")
def home():
    catalog = load_catalog()
    featured = sorted(catalog.products, key=lambda p: p.added, reverse=True)[:8]
    banners = banners_for(page_context("HOME"))
    return render_template("shop/home.html", page_type="HOME", banners=banners, featured=featured)


@bp.get("/c/<slug>")
def category(slug: str):
    catalog = load_catalog()
    current = catalog.category(slug) or abort(404)
    banners = banners_for(page_context("CATEGORY", category_path=current.path))
    return render_template(
        "shop/category.html",
        page_type="CATEGORY",
        banners=banners,
        current_category=current,
        products=catalog.in_category(current),
    )


@bp.get("/p/<product_id>")
def product(product_id: str):
    item = load_catalog().product(product_id) or abort(404)
    banners = banners_for(
        page_context(
            "PRODUCT",
            product_id=item.id,
            item_group_id=item.item_group_id,
            category_path=item.category.path,
        )
    )
    return render_template(
        "shop/product.html",
        page_type="PRODUCT",
        banners=banners,
        product=item,
        current_category=item.category,
    )


@bp.get("/cart")
def cart_page():
    lines = cart.lines(load_catalog())
    return render_template(
        "shop/cart.html", page_type="CART", lines=lines, total=sum(line.total for line in lines)
    )


@bp.post("/cart/add")
def cart_add():
    item = load_catalog().product(request.form.get("product_id", "")) or abort(400)
    cart.add(item, request.form.get("quantity", 1, type=int) or 1)
    flash(f"Added {item.name} to your cart.")
    return redirect(url_for("shop.cart_page"))


@bp.post("/cart/remove")
def cart_remove():
    cart.remove(request.form.get("product_id", ""))
    return redirect(url_for("shop.cart_page"))


@bp.get("/checkout")
def checkout():
    lines = cart.lines(load_catalog())
    banners = banners_for(page_context("CHECKOUT"))
    return render_template(
        "shop/checkout.html",
        page_type="CHECKOUT",
        banners=banners,
        lines=lines,
        total=sum(line.total for line in lines),
    )


@bp.post("/checkout")
def place_order():
    if not cart.lines(load_catalog()):
        return redirect(url_for("shop.cart_page"))
    cart.clear()
    flash("Thank you! This is a demo shop, so nothing was charged.")
    current_app.logger.info("demo order placed")
    return redirect(url_for("shop.home"))


# HTML, with character references, as the templates write every character beyond ASCII: a
# page of ASCII only is encoded to UTF-8 by a copy, where one "€" had Python hold the whole
# page at two bytes a character and encode it character by character (docs/performance.md).
CURRENCY_SYMBOLS = {"EUR": "&euro;", "USD": "$", "GBP": "&pound;"}


@bp.app_template_filter("money")
def money(amount, currency: str) -> Markup:
    symbol = CURRENCY_SYMBOLS.get(currency) or f"{escape(currency)} "
    return Markup(f"{symbol}{float(amount):,.2f}")  # noqa: S704 (our symbols, an escaped code)
