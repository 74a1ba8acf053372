"""Banner links that report a click without JavaScript.

Each link in the rendered banner that counts as a click is routed through the server's click
route, which records ``select_recs_list`` and redirects to the target. What counts follows
JSv2: in a banner of products, only links with the class ``kuRECSItemClick`` that point at one
of the banner's records (other links in a banner are plain links); in a static-content banner,
links to one of its ``targetUrl``s. The original target stays in ``data-klevu-href`` and the
item in ``data-klevu-item``, so the beacon can restore direct links (and report the click with
``sendBeacon``) when JavaScript runs. Works on sanitized HTML, whose attribute values are always
double-quoted and escaped (a ``>`` may still appear inside one).
"""

from __future__ import annotations

import html
import re

ITEM_CLICK_CLASS = "kuRECSItemClick"
_A_TAG_RE = re.compile(r'<a\b(?:[^>"]|"[^"]*")*>')
_HREF_RE = re.compile(r'\shref="([^"]*)"')
_CLASS_RE = re.compile(r'\sclass="([^"]*)"')


def route_clicks(
    markup: str,
    click_urls: dict[str, tuple[str, str]],
    *,
    link_class: str | None = ITEM_CLICK_CLASS,
) -> str:
    """Point each counted link at its click URL; ``click_urls``: target → (click URL, item).

    ``link_class``: the class a link needs to count (``None``: any link to a target counts).
    """

    def swap_tag(tag_match: re.Match) -> str:
        tag = tag_match.group(0)
        if link_class is not None:
            classes = _CLASS_RE.search(tag)
            if classes is None or link_class not in html.unescape(classes.group(1)).split():
                return tag
        href = _HREF_RE.search(tag)
        if href is None or html.unescape(href.group(1)) not in click_urls:
            return tag
        click, item = click_urls[html.unescape(href.group(1))]
        routed = (
            f' href="{html.escape(click, quote=True)}"'
            f' data-klevu-href="{href.group(1)}"'
            f' data-klevu-item="{html.escape(item, quote=True)}"'
        )
        return tag[: href.start()] + routed + tag[href.end() :]

    return _A_TAG_RE.sub(swap_tag, markup)
