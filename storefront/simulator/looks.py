"""The banner looks a merchant would design in Klevu's console: templates and stylesheet.

Kept as plain files in ``klevu_templates/`` so they read (and diff) as the Underscore-dialect
HTML and CSS Klevu serves in ``templates.base`` and ``styles.base`` (docs/klevu-wire-format.md §4).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

LOOKS = ("grid", "strip", "promo", "classic")
_FILES = resources.files(__package__).joinpath("klevu_templates")


@cache
def template(look: str) -> str:
    if look not in LOOKS:
        raise KeyError(f"no banner look {look!r}; looks are {LOOKS}")
    return _FILES.joinpath(f"{look}.html").read_text("utf-8")


@cache
def stylesheet() -> str:
    return _FILES.joinpath("recs.css").read_text("utf-8")
