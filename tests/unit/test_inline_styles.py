"""Inline ``style`` attributes of banner markup become rules of the banner's stylesheet, so
the CSP (no 'unsafe-inline') does not cost a merchant's template its styling."""

from storefront.klevu.render.inline_styles import lift_inline_styles
from storefront.klevu.render.sanitize import sanitize_banner_html, scope_css


def test_each_style_attribute_becomes_a_numbered_rule():
    markup, css = lift_inline_styles(
        '<div class="a" style="color: red; width: 50%">'
        '<span style="font-weight: 700">x</span></div>'
    )
    assert markup == (
        '<div class="a" data-klevu-style="0"><span data-klevu-style="1">x</span></div>'
    )
    assert css == (
        '[data-klevu-style="0"] { color: red !important; width: 50% !important }\n'
        '[data-klevu-style="1"] { font-weight: 700 !important }'
    )


def test_only_attributes_are_touched_never_text_or_other_values():
    markup = (
        '<p title="a > b style=&quot;color: red&quot;" style="color: blue">'
        'say style="color: green"</p>'
    )
    lifted, css = lift_inline_styles(markup)
    assert lifted == (
        '<p title="a > b style=&quot;color: red&quot;" data-klevu-style="0">'
        'say style="color: green"</p>'
    )
    assert css == '[data-klevu-style="0"] { color: blue !important }'


def test_escaped_values_are_read_as_css():
    _, css = lift_inline_styles('<b style="font-family: &quot;Inter&quot;, sans-serif">x</b>')
    assert css == '[data-klevu-style="0"] { font-family: "Inter", sans-serif !important }'


def test_what_the_sanitizer_let_through_is_cleaned_again_when_scoped():
    markup = sanitize_banner_html(
        '<span style="color: red; position: fixed; top: 0">x</span><i>no style</i>'
    )
    lifted, css = lift_inline_styles(markup)
    assert "style=" not in lifted.replace("data-klevu-style=", "")
    scoped = scope_css(css, '[data-klevu-banner="k"]')
    assert "color: red !important" in scoped and "fixed" not in scoped
    assert scoped.startswith('[data-klevu-banner="k"] [data-klevu-style="0"]')


def test_markup_without_styles_is_left_as_it_is():
    markup = '<ul class="kuRECS-list"><li data-id="1"><a href="/p/1">A</a></li></ul>'
    assert lift_inline_styles(markup) == (markup, "")
