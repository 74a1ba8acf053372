"""Whether a request comes from a page of the site it is sent to, as far as the browser says.

Pure (headers in, verdict out), so the shop and the Klevu simulator's control routes decide
alike. Browsers send ``Sec-Fetch-Site`` (all current ones) and ``Origin`` on every POST
(Chromium, Firefox since 70, Safari); either one saying "another site" refuses the request,
since a browser never lies about it. ``same-site`` (a sibling subdomain) counts as another
site: a forum or a marketing page on a subdomain must not be able to fill a cart. An
``Origin: null`` comes from a sandboxed frame or a cross-site redirect: also another site.
When neither header is there, the caller decides (the shop asks for its form token).
"""
from __future__ import annotations

from typing import Literal, Mapping

SAME, CROSS, UNKNOWN = "same", "cross", "unknown"
Verdict = Literal["same", "cross", "unknown"]


def request_site(headers: Mapping[str, str], own_origin: str) -> Verdict:
    """``own_origin`` is ``scheme://host[:port]`` as the browser sees this site."""
    fetch_site = headers.get("Sec-Fetch-Site")
    origin = headers.get("Origin")
    verdicts = set()
    if fetch_site in ("cross-site", "same-site"):
        verdicts.add(CROSS)
    elif fetch_site == "same-origin":
        verdicts.add(SAME)
    if origin is not None:
        verdicts.add(SAME if origin.lower() == own_origin.lower() else CROSS)
    if CROSS in verdicts:
        return CROSS
    return SAME if SAME in verdicts else UNKNOWN
