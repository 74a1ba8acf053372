"""Banner HTML allowlist and CSS scoping: what survives, what is removed, and invariants that hold
for any input."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings, strategies as st

from storefront.klevu.render.sanitize import sanitize_banner_html, scope_css

SCOPE = '[data-klevu-banner="k-home-1"]'


# --- HTML ----------------------------------------------------------------------------------


def test_keeps_banner_structure_and_click_tracking_hooks():
    html = (
        '<div class="kuRECS-container"><ul><li class="kuRECSItem" data-id="39814">'
        '<a class="kuRECSItemClick" data-id="39814" data-position="1" '
        'href="https://shop.example/p/39814">'
        '<img src="/img/39814.jpg" alt="Jacket" width="200" height="250" loading="lazy">'
        '<span class="kuRECS-price"><del>€900.00</del> <ins>€850.00</ins></span>'
        "</a></li></ul></div>"
    )
    assert sanitize_banner_html(html) == html.replace(
        'href="https://shop.example/p/39814">',
        'href="https://shop.example/p/39814" rel="noopener noreferrer">',
    )


def test_keeps_responsive_pictures():
    html = (
        '<picture><source media="(max-width: 767px)" srcset="/b/m.jpg 1x, /b/m@2x.jpg 2x">'
        '<img src="https://cdn.shop.example/b/d.jpg" srcset="//cdn.shop.example/b/d@2x.jpg 2x" '
        'sizes="100vw" alt="Sale"></picture>'
    )
    assert sanitize_banner_html(html) == html


@pytest.mark.parametrize(
    "html, expected",
    [
        ('<p onclick="alert(1)" onmouseover="x()">t</p>', "<p>t</p>"),
        ("<script>alert(1)</script><p>t</p>", "<p>t</p>"),
        ('<iframe src="https://evil.example">inside</iframe><p>t</p>', "<p>t</p>"),
        ('<form action="https://evil.example"><input name="q"><button>Go</button></form>', "Go"),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
        ('<a href="JAVA&#9;SCRIPT:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
        ('<a href="data:text/html,hi">x</a>', '<a rel="noopener noreferrer">x</a>'),
        ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="a">', '<img alt="a">'),
        ('<img srcset="/a.jpg 1x, javascript:alert(1) 2x" alt="a">', '<img alt="a">'),
        ('<img srcset="data:image/png;base64,AA 1x" alt="a">', '<img alt="a">'),
        ('<svg onload="alert(1)"><circle></circle></svg>t', "t"),
        ('<div id="cart" name="checkout">t</div>', "<div>t</div>"),
        ("<!-- note --><p>t</p>", "<p>t</p>"),
        (
            '<a href="/p/1" target="_blank">x</a><a href="/p/2" target="_parent">y</a>',
            '<a href="/p/1" target="_blank" rel="noopener noreferrer">x</a>'
            '<a href="/p/2" rel="noopener noreferrer">y</a>',
        ),
        (
            '<base href="https://evil.example/"><meta http-equiv="refresh" content="0"><p>t</p>',
            "<p>t</p>",
        ),
    ],
)
def test_removes_what_is_not_banner_markup(html, expected):
    assert sanitize_banner_html(html) == expected


def test_links_to_other_hosts_stay_with_noopener_noreferrer():
    assert (
        sanitize_banner_html('<a href="https://brand.example/">b</a>')
        == '<a href="https://brand.example/" rel="noopener noreferrer">b</a>'
    )


@pytest.mark.parametrize(
    "style, expected",
    [
        ("color: red; font-weight: bold", "color: red; font-weight: bold"),
        (
            "max-width: 1200px;background-color:rgb(0 0 0 / 50%)",
            "max-width: 1200px; background-color: rgb(0 0 0 / 50%)",
        ),
        ("color: red; background: url(https://evil.example/x.png)", "color: red"),
        ("background: url(/img/x.png)", None),
        ("width: expression(alert(1))", None),
        ("width: ex\\70 ression(alert(1))", None),
        ("background-image: image-set('https://evil.example/x.png' 1x)", None),
        ("position: fixed; z-index: 99999; top: 0", None),
        ("behavior: url(x.htc); -moz-binding: url(x.xml#y)", None),
        ("color: red !important", "color: red !important"),
    ],
)
def test_inline_styles_keep_only_safe_values(style, expected):
    html = sanitize_banner_html(f'<p style="{style}">t</p>')
    assert html == (f'<p style="{expected}">t</p>' if expected else "<p>t</p>")


# Hostile fragments, combined at random: whatever the mix, the output obeys the allowlist.
FRAGMENTS = st.sampled_from(
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">',
        '<a href=" java\tscript:x">',
        "<iframe srcdoc='<script>x</script>'>",
        "<svg><script>x</script>",
        "<math><mi xlink:href=javascript:x>",
        '<div style="background:url(//evil)">',
        "</div>",
        '<p data-id="1" class="kuRECSItem">',
        '<a href="/p/1" class="kuRECSItemClick">',
        "</a>",
        "<style>*{x:y}</style>",
        "<!--",
        "-->",
        '"',
        "'",
        "<",
        ">",
        "&",
        "text",
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
        '<img srcset="/a 1x, data:x 2x">',
        "<form><button formaction=javascript:x>",
        "<object data=x>",
        '<img src="https://shop.example/i.jpg">',
        '<source srcset="javascript:x">',
        "<template><img src=x onerror=y></template>",
    ]
)
ALLOWED_SCHEMES = {"", "http", "https"}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12).map("".join))
def test_any_mix_of_hostile_fragments_comes_out_inert(html):
    collector = _Collector()
    collector.feed(sanitize_banner_html(html))
    for tag, attrs in collector.tags:
        assert tag not in {"script", "style", "iframe", "svg", "math", "form", "object", "template"}
        for name, value in attrs:
            assert not name.startswith("on") and name not in {"id", "name", "formaction"}
            if name in {"href", "src"}:
                assert urlsplit(value).scheme in ALLOWED_SCHEMES
            if name == "srcset":
                assert all(
                    urlsplit(c.split()[0]).scheme in ALLOWED_SCHEMES
                    for c in (value or "").split(",")
                )
            if name == "style":
                assert "url" not in (value or "")


# --- CSS -----------------------------------------------------------------------------------


def test_every_selector_is_prefixed_with_the_scope():
    css = ".kuRECS-list, .kuRECSItem > a:hover { color: red } * { box-sizing: border-box }"
    assert scope_css(css, SCOPE) == (
        f"{SCOPE} .kuRECS-list, {SCOPE} .kuRECSItem > a:hover {{ color: red }}\n"
        f"{SCOPE} * {{ box-sizing: border-box }}"
    )


def test_selectors_that_would_reach_outside_the_banner_are_dropped():
    css = "~ .promo { display: none } + footer { display: none } .ok, ~ p { color: red }"
    assert scope_css(css, SCOPE) == f"{SCOPE} .ok {{ color: red }}"


def test_media_supports_and_layer_keep_their_rules_scoped():
    css = (
        "@media (max-width: 600px) { .a { color: blue } @supports (display: grid) "
        "{ .g { display: grid } } } @layer banner { .b { color: green } }"
    )
    assert scope_css(css, SCOPE) == (
        f"@media (max-width: 600px) {{\n{SCOPE} .a {{ color: blue }}\n"
        f"@supports (display: grid) {{\n{SCOPE} .g {{ display: grid }}\n}}\n}}\n"
        f"@layer banner {{\n{SCOPE} .b {{ color: green }}\n}}"
    )


def test_keyframes_are_kept_with_clean_declarations():
    css = (
        "@keyframes pulse { from { opacity: 0; background: url(https://evil/x) } "
        "to { opacity: 1 } }"
    )
    assert scope_css(css, SCOPE) == "@keyframes pulse {\nfrom { opacity: 0 }\nto { opacity: 1 }\n}"


@pytest.mark.parametrize(
    "css",
    [
        "@import url(https://evil.example/x.css);",
        "@import 'local.css';",
        "@font-face { font-family: Arial; src: url(/fonts/x.woff2) }",
        "@charset 'utf-8';",
        "@namespace svg url(http://www.w3.org/2000/svg);",
        "@page { margin: 0 }",
        ".a { background: url(https://evil.example/x.png) }",
        ".a { background: url('//evil.example/x.png') }",
        ".a { background: url('/\\\\evil.example/x.png') }",
        ".a { background: url(data:image/png;base64,AA) }",
        ".a { background: url(javascript:alert(1)) }",
        ".a { width: expression(alert(1)) }",
        ".a { width: \\65 xpression(alert(1)) }",
        ".a { behavior: url(/x.htc) }",
        ".a { -moz-binding: url(/x.xml#y) }",
        ".a { position: fixed }",
        ".a { --banner-bg: url(https://evil.example/x.png) }",
        ".a { background: image-set('https://evil.example/x.png' 1x) }",
        ".a { & .b { color: red } }",
    ],
)
def test_removes_what_could_load_foreign_content_run_script_or_escape_the_banner(css):
    assert scope_css(css, SCOPE) == ""


def test_keeps_same_origin_relative_urls_and_important():
    css = (
        ".a { background: url(/img/bg.png) no-repeat !important; cursor: url('cursor.svg'), auto }"
    )
    assert scope_css(css, SCOPE) == (
        f"{SCOPE} .a {{ background: url(/img/bg.png) no-repeat !important; "
        'cursor: url("cursor.svg"), auto }'
    )


def test_output_cannot_close_the_style_element():
    css = '.a::after { content: "</style><script>alert(1)</script>" } .b</style> { color: red }'
    scoped = scope_css(css, SCOPE)
    assert "<" not in scoped
    assert "\\3c /style>\\3c script>" in scoped


@pytest.mark.parametrize("scope", ["", ".a, body", ".a { color: red }", ".a; .b", "@media x"])
def test_scope_must_be_one_selector(scope):
    with pytest.raises(ValueError, match=r"CSS (selector|scope)"):
        scope_css(".x { color: red }", scope)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab.#:>~+*,;{}()[]@'\"\\/<!- \nurl(x)scriptimport"))
        | st.characters(),
        max_size=120,
    )
)
def test_any_stylesheet_comes_out_without_markup(css):
    scoped = scope_css(css, SCOPE)
    assert "<" not in scoped
    assert "@import" not in scoped.lower()


def test_template_beacon_attributes_are_dropped_and_only_the_server_writes_them():
    kept = sanitize_banner_html(
        '<a class="kuRECSItemClick" data-klevu-href="javascript:alert(1)" '
        'data-KLEVU-item="1" data-id="7" href="/p/7">x</a>'
    )
    assert "data-klevu" not in kept.lower() and 'data-id="7"' in kept


@pytest.mark.parametrize(
    "css",
    [
        ".x { --p: fixed; position: var(--p); inset: 0; z-index: 2147483647 }",
        ".x { position: var(--p, fixed) }",
        ".x { position: sticky; top: 0 }",
        ".x { position: calc(var(--p)) }",
    ],
)
def test_a_page_position_is_refused_however_it_is_reached(css):
    assert "position" not in scope_css(css, ".banner")
