"""Make a Klevu banner's markup and styles safe to put in the shop's own page.

The template and the CSS come from the merchant's Klevu config and the product data from Klevu's
index: neither is the shop's code, so what they produce is treated as untrusted. The HTML goes
through an allowlist (nh3, i.e. Rust's ammonia: a real HTML parser, not regexes) sized for
product banners; CSS goes through a real tokenizer (tinycss2) and is confined to the banner.

Decisions, with their reasons:

- Links keep ``http``/``https`` and relative URLs, other hosts included (brand pages), and all
  get ``rel="noopener noreferrer"``: banner URLs come from Klevu data, and a page URL can carry
  the visitor's Klaviyo ``_kx`` id, which must not leak to another host in a Referer.
- Images: ``http``/``https``/relative only, no ``data:``; ``srcset`` is checked URL by URL
  (ammonia does not look inside it).
- ``id`` and ``name`` are dropped: banner markup must not clobber the page's own ids or globals.
- Inline ``style`` keeps only layout and typography properties whose values contain no URL and
  no function outside a small allowlist (nh3 checks property names, never values).
- ``data-klevu-*`` are dropped: the beacon acts on them, so only the server writes them.
- Stylesheets: every selector is prefixed with the caller's scope; relative ``url()`` only;
  ``@import``, ``@font-face`` (global font names could restyle the whole shop), unknown at-rules,
  ``behavior``/``-moz-binding``, ``expression()`` and ``position: fixed`` or ``sticky``, also
  through ``var()`` (a banner could cover the page) are dropped; ``@media``/``@supports``/
  ``@container``/``@layer`` keep their rules, scoped; ``@keyframes`` keep cleaned declarations.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import nh3
import tinycss2
from tinycss2 import ast

# --- URLs ---------------------------------------------------------------------------------


def _split_url(url: str):
    """The URL's parts, or None when a browser might read it differently than we do.

    Backslashes, spaces and control characters are refused outright: browsers drop tabs and
    newlines inside URLs (``java\\tscript:``) and read ``/\\host`` as ``//host``.
    """
    if not url or "\\" in url or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _is_relative(url: str) -> bool:
    """Same-origin relative URL: no scheme and no host."""
    parts = _split_url(url)
    return parts is not None and not parts.scheme and not parts.netloc


def _is_web_url(url: str) -> bool:
    """http(s), protocol-relative or relative: what ammonia lets through in href and src."""
    parts = _split_url(url)
    if parts is None or parts.scheme not in ("", "http", "https"):
        return False
    return bool(parts.netloc) or not parts.scheme


def _is_safe_srcset(value: str) -> bool:
    candidates = [candidate.split() for candidate in value.split(",")]
    return all(words and _is_web_url(words[0]) for words in candidates)


# --- CSS values and declarations ------------------------------------------------------------

# Functions that compute a value and load nothing. Anything else (url(), image-set() whose
# strings are URLs, expression(), element(), ...) makes the declaration unsafe.
_VALUE_FUNCTIONS = frozenset(
    {
        "rgb",
        "rgba",
        "hsl",
        "hsla",
        "hwb",
        "lab",
        "lch",
        "oklab",
        "oklch",
        "color-mix",
        "calc",
        "min",
        "max",
        "clamp",
        "var",
        "counter",
        "counters",
        "linear-gradient",
        "radial-gradient",
        "conic-gradient",
        "repeating-linear-gradient",
        "repeating-radial-gradient",
        "repeating-conic-gradient",
        "translate",
        "translatex",
        "translatey",
        "translate3d",
        "rotate",
        "scale",
        "scalex",
        "scaley",
        "skew",
        "skewx",
        "skewy",
        "matrix",
        "perspective",
        "cubic-bezier",
        "steps",
        "minmax",
        "repeat",
        "fit-content",
        "rect",
        "inset",
        "circle",
        "ellipse",
        "polygon",
        "blur",
        "brightness",
        "contrast",
        "drop-shadow",
        "grayscale",
        "hue-rotate",
        "invert",
        "opacity",
        "saturate",
        "sepia",
    }
)

# Properties an inline style attribute may set: how the banner looks, never where it sits on
# the page (no position, z-index, offsets) and never what it loads.
_INLINE_PROPERTIES = frozenset(
    {
        "color",
        "background",
        "background-color",
        "opacity",
        "visibility",
        "border",
        "border-color",
        "border-style",
        "border-width",
        "border-radius",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "width",
        "height",
        "min-width",
        "max-width",
        "min-height",
        "max-height",
        "box-sizing",
        "aspect-ratio",
        "overflow",
        "object-fit",
        "object-position",
        "display",
        "gap",
        "flex",
        "flex-direction",
        "flex-wrap",
        "flex-basis",
        "flex-grow",
        "flex-shrink",
        "align-items",
        "align-self",
        "justify-content",
        "order",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "line-height",
        "letter-spacing",
        "text-align",
        "text-decoration",
        "text-transform",
        "vertical-align",
        "white-space",
        "list-style-type",
    }
)

_SCRIPTING_PROPERTIES = ("behavior", "binding")  # IE's behavior, Firefox's -moz-binding


def _is_safe_value(tokens: list, *, relative_urls: bool) -> bool:
    for token in tokens:
        if isinstance(token, ast.URLToken):
            if not (relative_urls and _is_relative(token.value)):
                return False
        elif isinstance(token, ast.FunctionBlock):
            if token.lower_name == "url":
                strings = [t for t in token.arguments if not isinstance(t, ast.WhitespaceToken)]
                if not (
                    relative_urls
                    and len(strings) == 1
                    and isinstance(strings[0], ast.StringToken)
                    and _is_relative(strings[0].value)
                ):
                    return False
            elif token.lower_name not in _VALUE_FUNCTIONS or not _is_safe_value(
                token.arguments, relative_urls=relative_urls
            ):
                return False
        elif isinstance(token, (ast.ParenthesesBlock, ast.SquareBracketsBlock)):
            if not _is_safe_value(token.content, relative_urls=relative_urls):
                return False
        elif isinstance(token, (ast.CurlyBracketsBlock, ast.AtKeywordToken, ast.ParseError)):
            return False
    return True


_PAGE_POSITIONS = frozenset({"fixed", "sticky"})  # placed against the page, not the banner


def _is_page_position(declaration: ast.Declaration) -> bool:
    """``position: fixed`` or ``sticky``, said outright or through ``var()``: a custom
    property's value is only known in the browser, so a ``position`` that reads one is
    refused whatever it holds (``--p: fixed; position: var(--p)`` covered the page)."""
    if declaration.lower_name != "position":
        return False
    words = {t.lower_value for t in declaration.value if isinstance(t, ast.IdentToken)}
    return bool(words & _PAGE_POSITIONS) or _reads_variable(declaration.value)


def _reads_variable(tokens: list) -> bool:
    for token in tokens:
        if isinstance(token, ast.FunctionBlock) and (
            token.lower_name == "var" or _reads_variable(token.arguments)
        ):
            return True
        if isinstance(token, (ast.ParenthesesBlock, ast.SquareBracketsBlock)) and (
            _reads_variable(token.content)
        ):
            return True
    return False


def _clean_declarations(source, *, inline: bool) -> list[str]:
    kept = []
    for item in tinycss2.parse_blocks_contents(source, skip_comments=True, skip_whitespace=True):
        if not isinstance(item, ast.Declaration):
            continue  # parse errors, nested rules: dropped
        name = item.lower_name
        if inline and name not in _INLINE_PROPERTIES:
            continue
        if any(word in name for word in _SCRIPTING_PROPERTIES) or _is_page_position(item):
            continue
        if not _is_safe_value(item.value, relative_urls=not inline):
            continue
        value = tinycss2.serialize(item.value).strip()
        important = " !important" if item.important else ""
        kept.append(f"{tinycss2.serialize_identifier(item.name)}: {value}{important}")
    return kept


def _clean_inline_style(value: str) -> str | None:
    declarations = _clean_declarations(value, inline=True)
    return "; ".join(declarations) if declarations else None


# --- Stylesheets ----------------------------------------------------------------------------

_GROUPING_AT_RULES = frozenset({"media", "supports", "container", "layer"})
_KEYFRAMES_AT_RULES = frozenset({"keyframes", "-webkit-keyframes"})
# A selector starting with these would reach the scope element's siblings, outside the banner.
_SIBLING_COMBINATORS = frozenset({"~", "+", "|"})


def _split_selectors(prelude: list) -> list[list]:
    selectors: list[list] = []
    current: list = []
    for token in prelude:
        if isinstance(token, ast.LiteralToken) and token.value == ",":
            selectors.append(current)
            current = []
        else:
            current.append(token)
    selectors.append(current)
    return selectors


def _scoped_selector(selector: list, scope: str) -> str | None:
    text = tinycss2.serialize(selector).strip()
    first = next((t for t in selector if not isinstance(t, ast.WhitespaceToken)), None)
    if not text or (isinstance(first, ast.LiteralToken) and first.value in _SIBLING_COMBINATORS):
        return None
    return f"{scope} {text}"


def _scoped_rules(rules: list, scope: str) -> list[str]:
    out = []
    for rule in rules:
        if isinstance(rule, ast.QualifiedRule):
            selectors = [
                s
                for s in (_scoped_selector(sel, scope) for sel in _split_selectors(rule.prelude))
                if s
            ]
            declarations = _clean_declarations(rule.content, inline=False)
            if selectors and declarations:
                out.append(f"{', '.join(selectors)} {{ {'; '.join(declarations)} }}")
        elif isinstance(rule, ast.AtRule) and rule.content is not None:
            keyword = rule.lower_at_keyword
            prelude = tinycss2.serialize(rule.prelude).strip()
            if keyword in _GROUPING_AT_RULES:
                inner = _scoped_rules(_rule_list(rule.content), scope)
            elif keyword in _KEYFRAMES_AT_RULES:
                inner = _keyframes(_rule_list(rule.content))
            else:
                continue  # @import, @font-face, @page, @namespace, ...: not a banner's business
            if inner:
                out.append(f"@{keyword} {prelude} {{\n{chr(10).join(inner)}\n}}")
    return out


def _keyframes(frames: list) -> list[str]:
    out = []
    for frame in frames:
        if isinstance(frame, ast.QualifiedRule):
            declarations = _clean_declarations(frame.content, inline=False)
            if declarations:
                selector = tinycss2.serialize(frame.prelude).strip()
                out.append(f"{selector} {{ {'; '.join(declarations)} }}")
    return out


def _rule_list(content: list) -> list:
    return tinycss2.parse_rule_list(content, skip_comments=True, skip_whitespace=True)


def _checked_scope(scope: str) -> str:
    """The scope must be one selector: a comma, block or semicolon would let rules escape it."""
    tokens = tinycss2.parse_component_value_list(scope, skip_comments=True)
    for token in tokens:
        if isinstance(token, (ast.CurlyBracketsBlock, ast.AtKeywordToken, ast.ParseError)) or (
            isinstance(token, ast.LiteralToken) and token.value in (",", ";")
        ):
            raise ValueError(f"not a single CSS selector: {scope!r}")
    scope = tinycss2.serialize(tokens).strip()
    if not scope:
        raise ValueError("empty CSS scope")
    return scope


@lru_cache(maxsize=64)
def scope_css(css: str, scope: str) -> str:
    """The config's ``styles.base``, cleaned and confined to the element matching ``scope``.

    Cached: a banner's CSS is the same on every page view until its config changes, and
    cleaning it costs several times a template render (docs/performance.md).

    Safe inside ``<style>``: the result contains no ``<`` at all (escaped as ``\\3c``, which
    CSS reads as the same character), so no ``</style`` can end the element early.
    Raises ``ValueError`` if ``scope`` is not a single selector (a programming error).
    """
    scope = _checked_scope(scope)
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    return "\n".join(_scoped_rules(rules, scope)).replace("<", "\\3c ")


# --- HTML -----------------------------------------------------------------------------------

_TAGS = {
    "div",
    "span",
    "p",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "figure",
    "figcaption",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "picture",
    "source",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "s",
    "del",
    "ins",
    "small",
    "mark",
    "sup",
    "sub",
    "br",
    "hr",
    "time",
    "abbr",
}
# Removed with everything inside them, rather than unwrapped to their text.
_CONTENT_DROPPED = {"script", "style", "template", "iframe", "object", "noscript"}
_ATTRIBUTES = {
    "*": {"class", "title", "lang", "dir", "role", "style"},
    "a": {"href", "hreflang"},
    "img": {"src", "srcset", "sizes", "alt", "width", "height", "decoding"},
    "source": {"srcset", "sizes", "media", "type", "width", "height"},
    "time": {"datetime"},
    "ol": {"start", "reversed"},
    "li": {"value"},
}
_ATTRIBUTE_VALUES = {
    "a": {"target": {"_blank", "_self"}},
    "img": {"loading": {"lazy", "eager"}},
}


# Attributes the beacon acts on (``data-klevu-href`` becomes a link's ``href``): the server
# adds them to sanitized markup, so a template's own are dropped here.
SERVER_ATTRIBUTE_PREFIX = "data-klevu-"


def _filter_attribute(tag: str, name: str, value: str) -> str | None:
    """Checks ammonia does not make: style values, and the URLs inside ``srcset``.

    nh3 turns an exception here into a stripped attribute plus an unraisable-hook report;
    nothing below raises, so every decision is explicit.
    """
    if name.startswith(SERVER_ATTRIBUTE_PREFIX):
        return None  # only the server writes these (links.py), after this cleaner
    if name == "style":
        return _clean_inline_style(value)
    if name == "srcset":
        return value if _is_safe_srcset(value) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_CONTENT_DROPPED,
    attributes=_ATTRIBUTES,
    generic_attribute_prefixes={"data-", "aria-"},
    tag_attribute_values=_ATTRIBUTE_VALUES,
    attribute_filter=_filter_attribute,
    url_schemes={"http", "https"},
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def sanitize_banner_html(html: str) -> str:
    """Banner markup reduced to the allowlist: structure, classes, ``data-*`` (click tracking
    needs ``kuRECSItem``, ``kuRECSItemClick`` and ``data-id``), links, images, pictures."""
    return _CLEANER.clean(html)
