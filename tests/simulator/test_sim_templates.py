"""The banner templates render, in Klevu's Underscore dialect, what a shopper needs to see."""

from html.parser import HTMLParser

import pytest

from storefront.klevu.render.engine import TemplateRenderer
from storefront.simulator import looks


class Tags(HTMLParser):
    """Start tags with their attributes, and the text, of rendered markup."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())

    def with_class(self, name):
        return [(t, a) for t, a in self.tags if name in (a.get("class") or "").split()]


def records(search):
    _status, body = search(
        "RECS_CUSTOM", limit=4, customANDQuery="id:(10004 OR 10003 OR 10025 OR 10034)"
    )
    return body["queryResults"][0]["records"]


def banner_data(items, **metadata):
    return {
        "metadata": {
            "title": "Deals <for> you",
            "recsKey": "k-test",
            "segmentKey": None,
            **metadata,
        },
        "query": {"klevuRECSItemList": {"result": items, "meta": {}}},
        "staticContent": [],
    }


@pytest.mark.parametrize("look", ["grid", "strip"])
def test_product_looks_render_every_item_for_click_tracking(render, search, look):
    items = records(search)
    page = Tags(render(looks.template(look), banner_data(items)))
    assert [a["data-id"] for _, a in page.with_class("kuRECSItem")] == [i["id"] for i in items]
    links = page.with_class("kuRECSItemClick")
    assert [(a["data-id"], a["href"]) for _, a in links] == [(i["id"], i["url"]) for i in items]
    images = [a for t, a in page.tags if t == "img"]
    assert [a["src"] for a in images] == [i["image"] for i in items]
    assert all(a["width"] == a["height"] and int(a["width"]) > 0 for a in images)
    assert "Deals <for> you" in page.text  # the title, escaped in the markup
    names = [i["name"] for i in items]
    assert all(name in page.text for name in names)


@pytest.mark.parametrize("look", ["grid", "strip"])
def test_sale_price_shows_with_the_original_struck_through(render, search, look):
    items = records(search)
    html = render(looks.template(look), banner_data(items))
    on_sale = [i for i in items if float(i["salePrice"]) < float(i["price"])]
    assert on_sale and len(on_sale) < len(items)
    page = Tags(html)
    assert len([t for t, _ in page.tags if t == "s"]) == len(on_sale)
    for item in on_sale:
        assert f"EUR {item['salePrice']}" in page.text
        assert f"EUR {item['price']}" in page.text


def test_title_is_escaped(render, search):
    html = render(looks.template("grid"), banner_data(records(search)))
    assert "Deals &lt;for&gt; you" in html


def test_segment_variant_gets_a_badge(render, search):
    plain = Tags(render(looks.template("grid"), banner_data(records(search))))
    segmented = Tags(
        render(looks.template("grid"), banner_data(records(search), segmentKey="seg_vip"))
    )
    assert not plain.with_class("kuRECS-badge") and segmented.with_class("kuRECS-badge")


def test_promo_look_renders_static_content(render, config):
    answer = config("k-checkout-together", sids="seg_bargain")
    data = {
        "metadata": answer["metadata"],
        "staticContent": answer["staticContent"],
        "query": {"klevuRECSItemList": {"result": [], "meta": {}}},
    }
    page = Tags(render(answer["templates"]["base"], data))
    [(_, link)] = page.with_class("kuRECS-promoLink")
    assert link["href"] == answer["staticContent"][0]["targetUrl"]
    images = {a["src"]: a for t, a in page.tags if t == "img"}
    assert set(images) == {"/img/promo/sale-desktop.svg", "/img/promo/sale-mobile.svg"}
    assert all(a["alt"] and a["width"] and a["height"] for a in images.values())


def test_the_looks_look_different(render, search):
    items = records(search)
    grid = render(looks.template("grid"), banner_data(items))
    strip = render(looks.template("strip"), banner_data(items))
    assert "kuRECS-grid" in grid and "kuRECS-strip" in strip


def test_stylesheet_styles_the_template_classes():
    css = looks.stylesheet()
    for name in (
        "kuRECS-container",
        "kuRECS-title",
        "kuRECS-grid",
        "kuRECS-strip",
        "kuRECS-price--sale",
        "kuRECS-price--was",
        "kuRECS-promoImage--mobile",
    ):
        assert f".{name}" in css
    assert "url(" not in css and "@import" not in css  # nothing for the shop to fetch


JSV2_HELPERS = (
    "render",
    "each",
    "buildUrl",
    "stripHtml",
    "escapeHTML",
    "translator",
    "translate",
    "addTranslation",
    "getTranslation",
    "removeTranslation",
    "setTranslations",
    "processCurrency",
)


def test_the_classic_look_calls_every_jsv2_helper_and_the_shop_renders_it(search):
    """The reference compiler above has only a few helpers: this look needs the shop's."""
    template = looks.template("classic")
    assert all(f"helper.{name}" in template for name in JSV2_HELPERS)
    items = records(search)
    page = Tags(TemplateRenderer().render(template, banner_data(items, segmentKey="seg_vip")))
    assert [a["data-id"] for _, a in page.with_class("kuRECSItem")] == [i["id"] for i in items]
    links = page.with_class("kuRECSItemClick")
    assert [a["href"] for _, a in links] == [i["url"] for i in items]
    assert [a["data-link"] for _, a in links] == [f"{i['url']}?ku_recs=k-test" for i in items]
    assert [a["title"] for _, a in links] == [
        f"{n} of {len(items)}" for n in range(1, len(items) + 1)
    ]
    assert "Picked for you" in page.text
    assert f"EUR {items[0]['salePrice']}" in page.text
