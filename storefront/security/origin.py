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

from typing import Literal

Verdict = Literal["same", "cross", "unknown"]
SAME: Verdict = "same"
CROSS: Verdict = "cross"
UNKNOWN: Verdict = "unknown"


def request_site(fetch_site: str | None, origin: str | None, own_origin: str) -> Verdict:
    """From the ``Sec-Fetch-Site`` and ``Origin`` headers (None when absent); ``own_origin`` is
    ``scheme://host[:port]`` as the browser sees this site."""
    verdicts: set[Verdict] = set()
    if fetch_site in ("cross-site", "same-site"):
        verdicts.add(CROSS)
    elif fetch_site == "same-origin":
        verdicts.add(SAME)
    if origin is not None:
        verdicts.add(SAME if origin.lower() == own_origin.lower() else CROSS)
    if CROSS in verdicts:
        return CROSS
    return SAME if SAME in verdicts else UNKNOWN
