"""The cart lives in Flask's signed session: product id → quantity, nothing else.

Only ids from the catalog are kept, so a tampered or stale session never breaks a page.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import session

from ..catalog import Catalog, Product

MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total(self) -> float:
        return float(self.product.sale_price) * self.quantity


def _raw() -> dict[str, int]:
    raw = session.get("cart")
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int) and 0 < v <= MAX_QUANTITY}


def lines(catalog: Catalog) -> list[CartLine]:
    return [CartLine(p, q) for pid, q in _raw().items() if (p := catalog.product(pid))]


def count() -> int:
    return sum(_raw().values())


def add(product: Product, quantity: int = 1) -> None:
    cart = _raw()
    cart[product.id] = min(MAX_QUANTITY, cart.get(product.id, 0) + max(1, quantity))
    session["cart"] = cart


def remove(product_id: str) -> None:
    cart = _raw()
    cart.pop(product_id, None)
    session["cart"] = cart


def clear() -> None:
    session.pop("cart", None)
