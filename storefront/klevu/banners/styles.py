"""Each banner's CSS as a stylesheet of its own, named by a hash of its content.

Inlined, a banner's scoped CSS (4.8 KB of the simulator's demo banner) went out again with
every page. Served at ``/klevu/css/<hash>.css`` instead, a browser fetches it once and keeps it
(``immutable``: a config with other CSS makes another hash, so another URL on the next page),
and a client that accepts gzip gets it compressed once per stylesheet, not once per request.

A page served by one worker may name a stylesheet that another worker is asked for: each
stylesheet is also written to the shared cache (``klevu:css:<hash>``, Redis with
``CACHE_REDIS_URL``) when a worker builds a banner's parts, which happens again whenever the
banner's answers are refreshed; a worker that does not hold it reads it from there.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from dataclasses import dataclass

from flask import Blueprint, Response, abort, request, url_for

from ...extensions import cache
from ..memo import Memo

log = logging.getLogger(__name__)

SHARED_SECONDS = 7 * 24 * 3600  # longer than a banner's answers outlive their refreshes
YEAR = 365 * 24 * 3600

bp = Blueprint("klevu_css", __name__)


@dataclass(frozen=True)
class _Sheet:
    css: bytes
    gzipped: bytes


_sheets: Memo[str, _Sheet] = Memo()


def _sheet(css: bytes) -> _Sheet:
    return _Sheet(css, gzip.compress(css, compresslevel=9, mtime=0))


def stylesheet_url(css: str) -> str:
    """The URL of ``css`` as a stylesheet (called once per banner answer, not per page)."""
    encoded = css.encode()
    digest = hashlib.sha256(encoded).hexdigest()[:32]
    _sheets.put(digest, _sheet(encoded))
    try:
        cache.set(f"klevu:css:{digest}", css, timeout=SHARED_SECONDS)
    except Exception:  # without a shared cache, this worker still serves it
        log.warning("banner stylesheet %s not shared (cache unavailable)", digest)
    return url_for("klevu_css.stylesheet", digest=digest)


@bp.get("/klevu/css/<digest>.css")
def stylesheet(digest: str):
    sheet = _sheets.get(digest)
    if sheet is None:
        css = cache.get(f"klevu:css:{digest}")
        if not isinstance(css, str) or hashlib.sha256(css.encode()).hexdigest()[:32] != digest:
            abort(404)
        sheet = _sheets.put(digest, _sheet(css.encode()))
    gzipped = request.accept_encodings["gzip"] > 0
    response = Response(sheet.gzipped if gzipped else sheet.css, mimetype="text/css")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.cache_control.public = True
    response.cache_control.max_age = YEAR
    response.cache_control.immutable = True
    response.set_etag(digest)
    return response.make_conditional(request)
