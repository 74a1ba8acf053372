"""What step 1 (segments) needs to know of the visitor, handed over by step 0 (identity).

The Klevu package reads no Klaviyo cookie and knows nothing of consent: the shop decides who
the visitor is and passes this value in. ``exchange_id`` is set only when consent allows its
use; ``browser_id`` (Klaviyo's ``cid``, which keys a cache entry) follows the same rule.
``remembers_clicks``: whether "recently viewed" may be kept and read for the visitor (JSv2
neither writes nor reads its cookie without consent).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Visitor:
    exchange_id: str | None = None
    browser_id: str | None = None
    remembers_clicks: bool = False


ANONYMOUS_VISITOR = Visitor()
