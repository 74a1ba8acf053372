"""Which banner links report a click without JavaScript (JSv2: only .kuRECSItemClick)."""

from __future__ import annotations

import pytest

from storefront.klevu.banners.links import route_clicks

CLICKS = {"/p/1": ("/klevu/click?t=T&id=1", "1"), "/sale": ("/klevu/click?t=T&id=0", "0")}
ROUTED_1 = 'href="/klevu/click?t=T&amp;id=1" data-klevu-href="/p/1" data-klevu-item="1"'


@pytest.mark.parametrize(
    "markup, expected",
    [
        # a kuRECSItemClick link to a record is routed, its target kept for the beacon
        (
            '<a class="kuRECSItemClick" href="/p/1">x</a>',
            f'<a class="kuRECSItemClick" {ROUTED_1}>x</a>',
        ),
        (
            '<a class="kuRECS-link kuRECSItemClick" data-id="1" href="/p/1" title="a > b">x</a>',
            f'<a class="kuRECS-link kuRECSItemClick" data-id="1" {ROUTED_1} title="a > b">x</a>',
        ),
        # other links in a banner are plain links, even to a record
        ('<a href="/p/1">x</a>', '<a href="/p/1">x</a>'),
        (
            '<a class="kuRECSItemClickable" href="/p/1">x</a>',
            '<a class="kuRECSItemClickable" href="/p/1">x</a>',
        ),
        # a kuRECSItemClick link elsewhere stays as it is
        (
            '<a class="kuRECSItemClick" href="/p/2">x</a>',
            '<a class="kuRECSItemClick" href="/p/2">x</a>',
        ),
        ('<abbr class="kuRECSItemClick">x</abbr>', '<abbr class="kuRECSItemClick">x</abbr>'),
    ],
)
def test_product_banners_route_only_kurecsitemclick_links(markup, expected):
    assert route_clicks(markup, CLICKS) == expected


def test_static_banners_route_any_link_to_their_content():
    markup = '<a class="kuRECS-promoLink" href="/sale"><img src="/s.svg" alt=""></a>'
    assert route_clicks(markup, CLICKS, link_class=None) == (
        '<a class="kuRECS-promoLink" href="/klevu/click?t=T&amp;id=0" data-klevu-href="/sale"'
        ' data-klevu-item="0"><img src="/s.svg" alt=""></a>'
    )
