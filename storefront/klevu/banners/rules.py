"""Whether a placement's config shows a banner, and of what kind, as JSv2 decides it (§2).

Klevu's browser library (JSv2) checks the config answer before it searches: a banner shows
only when ``metadata.enabled`` is true, and only with a ``recsKey``, a ``logic`` and a
``pageType``. The action is ``metadata.action`` (hide, or static content instead of products);
``search.recsAction`` is read only for hiding, and only when the metadata's action did not
already decide (JSv2 checks it later, before searching).
This is the one place those rules live, as a pure function of the config answer; recs.py
acts on the verdict.

JSv2 does not compare the banner's ``pageType`` with the page it is on, and neither does this
module: see queries.py and docs/differences-from-klevu-js.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

HIDE_ACTION = "HIDE_RECOMMENDATION"
STATIC_ACTION = "STATIC_CONTENT"
REQUIRED_METADATA = ("recsKey", "logic", "pageType")


class Show(enum.Enum):
    NOTHING = "nothing"
    STATIC_CONTENT = "static content"  # the template renders the config's staticContent
    PRODUCTS = "products"  # search, then render the records


@dataclass(frozen=True)
class Verdict:
    show: Show
    reason: str = ""  # why nothing is shown, for the log

    @property
    def hidden_on_purpose(self) -> bool:
        """Hidden by the merchant's ``HIDE_RECOMMENDATION`` (for these segments), not a fault."""
        return self.show is Show.NOTHING and self.reason.endswith(HIDE_ACTION)


def banner_verdict(config: Mapping) -> Verdict:
    """What the config answer asks for; any malformed part hides the banner, never raises."""
    metadata = config.get("metadata")
    if not isinstance(metadata, Mapping):
        return Verdict(Show.NOTHING, "config has no metadata")
    if metadata.get("enabled") is not True:
        return Verdict(Show.NOTHING, "metadata.enabled is not true")
    missing = [
        name
        for name in REQUIRED_METADATA
        if not isinstance(metadata.get(name), str) or not metadata.get(name)
    ]
    if missing:
        return Verdict(Show.NOTHING, f"metadata lacks {', '.join(missing)}")
    chosen = metadata.get("action")
    if chosen == HIDE_ACTION:
        return Verdict(Show.NOTHING, "metadata.action HIDE_RECOMMENDATION")
    if chosen == STATIC_ACTION:
        content = config.get("staticContent")
        if not isinstance(content, list) or not content:
            return Verdict(Show.NOTHING, "action STATIC_CONTENT without staticContent")
        return Verdict(Show.STATIC_CONTENT)
    search = config.get("search")
    if isinstance(search, Mapping) and search.get("recsAction") == HIDE_ACTION:
        return Verdict(Show.NOTHING, "search.recsAction HIDE_RECOMMENDATION")
    return Verdict(Show.PRODUCTS)
