"""Banner markup's ``style="…"`` attributes, moved into the banner's own stylesheet.

The shop's Content-Security-Policy allows styles only from files and nonce-carrying
``<style>`` elements (docs/operations.md, "Security"), so a browser ignores inline ``style``
attributes. A merchant's Klevu template may still use them; rather than lose that styling, each
attribute becomes a rule for a numbered ``data-klevu-style`` attribute, and the rules join the
banner's CSS, which is scoped and cleaned like the config's and carries the page's nonce.
``!important`` keeps the precedence an inline style has over the stylesheet's rules.

Works on sanitized markup (html5ever's serialization: every attribute value double-quoted,
``"`` inside escaped), which the sanitizer has already cut down to safe declarations.
"""

from __future__ import annotations

import html
import re

import tinycss2
from tinycss2 import ast

ATTRIBUTE = "data-klevu-style"
# A start tag whose attributes are name or name="value": a ">" inside a value stays inside.
_START_TAG = re.compile(r'<[A-Za-z][^\s/>]*(?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*\s*/?>')
_STYLE = re.compile(r'(\s)style="([^"]*)"')


def _important(declarations: str) -> str:
    kept = []
    for item in tinycss2.parse_blocks_contents(
        declarations, skip_comments=True, skip_whitespace=True
    ):
        if isinstance(item, ast.Declaration):
            value = tinycss2.serialize(item.value).strip()
            kept.append(f"{tinycss2.serialize_identifier(item.name)}: {value} !important")
    return "; ".join(kept)


def lift_inline_styles(markup: str) -> tuple[str, str]:
    """``markup`` with each ``style`` attribute replaced by ``data-klevu-style="<n>"``, and
    the CSS rules (unscoped) that give those elements the same declarations."""
    rules: list[str] = []

    def swap(match: re.Match) -> str:
        rules.append(f'[{ATTRIBUTE}="{len(rules)}"] {{ {_important(html.unescape(match[2]))} }}')
        return f'{match[1]}{ATTRIBUTE}="{len(rules) - 1}"'

    def in_tag(tag: re.Match) -> str:
        return _STYLE.sub(swap, tag[0], count=1)

    return _START_TAG.sub(in_tag, markup), "\n".join(rules)
