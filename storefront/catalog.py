"""The mock shop's catalog: products and categories from ``storefront/data/catalog.json``.

Shared by the shop and the Klevu simulator (which indexes the same products, as Klevu would
index a real shop's feed). Records keep Klevu's shapes where they meet Klevu: prices are
strings, ``category`` is a path. Image and product URLs are the shop's own paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Category:
    slug: str
    name: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class Product:
    id: str
    item_group_id: str
    sku: str
    name: str
    brand: str
    category: Category
    price: str
    sale_price: str
    currency: str
    color: str
    color_hex: str
    in_stock: bool
    popularity: int
    added: str
    short_desc: str

    @property
    def url(self) -> str:
        return f"/p/{self.id}"

    @property
    def image(self) -> str:
        return f"/img/p/{self.id}.svg"

    @property
    def on_sale(self) -> bool:
        return float(self.sale_price) < float(self.price)


@dataclass(frozen=True)
class Catalog:
    categories: tuple[Category, ...]
    products: tuple[Product, ...]

    def product(self, product_id: str) -> Product | None:
        return self._by_id().get(product_id)

    def category(self, slug: str) -> Category | None:
        return next((c for c in self.categories if c.slug == slug), None)

    def in_category(self, category: Category) -> list[Product]:
        return [p for p in self.products if p.category == category]

    def _by_id(self) -> dict[str, Product]:
        return _index(self)


@cache
def _index(catalog: Catalog) -> dict[str, Product]:
    return {p.id: p for p in catalog.products}


@cache
def load_catalog() -> Catalog:
    raw = json.loads(resources.files("storefront").joinpath("data/catalog.json").read_text("utf-8"))
    categories = {
        c["slug"]: Category(c["slug"], c["name"], tuple(c["path"])) for c in raw["categories"]
    }
    products = tuple(
        Product(
            id=p["id"],
            item_group_id=p["itemGroupId"],
            sku=p["sku"],
            name=p["name"],
            brand=p["brand"],
            category=categories[p["categorySlug"]],
            price=p["price"],
            sale_price=p["salePrice"],
            currency=p["currency"],
            color=p["color"],
            color_hex=p["colorHex"],
            in_stock=p["inStock"] == "yes",
            popularity=p["popularity"],
            added=p["added"],
            short_desc=p["shortDesc"],
        )
        for p in raw["products"]
    )
    return Catalog(tuple(categories.values()), products)
