"""The simulator's search index: the shop's catalog as Klevu records (docs/klevu-wire-format.md §3).

Klevu indexes a merchant's product feed; the simulator indexes the shop's own catalog, so a
banner's products are products the shop can show. Records keep Klevu's wire quirks (prices as
strings, ``inStock`` as ``"yes"``/``"no"``, ``;;``-joined categories) so the storefront is
tested against the shapes it will meet live.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..catalog import Catalog, Product


@dataclass(frozen=True, eq=False)
class Indexed:
    """A product with its record: ranking reads the product, filters and answers the record.

    Compared by identity: the index holds each product once, and records are dicts.
    """

    product: Product
    record: dict


def discount_percent(product: Product) -> str:
    price, sale = float(product.price), float(product.sale_price)
    return f"{(price - sale) / price * 100:.1f}" if price > 0 else "0.0"


def product_record(product: Product, *, total_variants: int, shop_url: str = "") -> dict:
    """``shop_url`` makes the shop's root-relative links absolute, as a real feed's would be."""
    image = shop_url + product.image
    return {
        "id": product.id,
        "itemGroupId": product.item_group_id,
        "sku": product.sku,
        "name": product.name,
        "url": shop_url + product.url,
        "image": image,
        "imageUrl": image,
        "imageHover": "",
        "price": product.price,
        "salePrice": product.sale_price,
        "startPrice": product.sale_price,
        "toPrice": product.sale_price,
        "basePrice": product.price,
        "currency": product.currency,
        "inStock": "yes" if product.in_stock else "no",
        "discount": discount_percent(product),
        "totalVariants": total_variants,
        "brand": product.brand,
        "category": ";;".join(product.category.path),
        "shortDesc": product.short_desc,
        "color": product.color,
        "typeOfRecord": "KLEVU_PRODUCT",
    }


def build_index(catalog: Catalog, shop_url: str = "") -> tuple[Indexed, ...]:
    group_sizes = Counter(p.item_group_id for p in catalog.products)
    return tuple(
        Indexed(
            p, product_record(p, total_variants=group_sizes[p.item_group_id], shop_url=shop_url)
        )
        for p in catalog.products
    )
