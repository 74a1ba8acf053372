"""Banner product links that work without JavaScript.

Each ``href`` in the rendered banner that points at one of the banner's records is routed
through the server's click route, which records ``select_recs_list`` and redirects to the
product. The original target stays in ``data-klevu-href`` so the beacon can restore direct
links (and report clicks with ``sendBeacon``) when JavaScript runs. Works on sanitized HTML,
whose attributes are always double-quoted and escaped.
"""
from __future__ import annotations

import html
import re

HREF_RE = re.compile(r'\shref="([^"]*)"')


def route_clicks(markup: str, click_urls: dict[str, str]) -> str:
    """Point every link to a record's URL at that record's click URL (others stay as they are)."""
    def swap(match: re.Match) -> str:
        target = html.unescape(match.group(1))
        click = click_urls.get(target)
        if click is None:
            return match.group(0)
        return (f' href="{html.escape(click, quote=True)}"'
                f' data-klevu-href="{match.group(1)}"')
    return HREF_RE.sub(swap, markup)
