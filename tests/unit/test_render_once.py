"""A banner's template runs once per answer: the same template on the same data is rendered
and sanitized once; anything different is rendered again."""

from __future__ import annotations

import pytest

from storefront.klevu.render.engine import RenderError, TemplateRenderer
from storefront.klevu.render.once import RenderOnce


class Counting:
    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def render(self, template, data):
        self.calls += 1
        return self.inner.render(template, data)


TEMPLATE = "<p><%= helper.escapeHTML(data.title) %></p>"


@pytest.fixture
def counting():
    return Counting(TemplateRenderer())


def test_the_same_template_on_the_same_data_is_rendered_once(counting):
    once = RenderOnce(counting)

    pages = [once.render(TEMPLATE, {"title": "Trending", "n": [1, 2]}) for _ in range(5)]

    assert counting.calls == 1
    assert set(pages) == {'<div class="klevuWrap"><p>Trending</p></div>'}


def test_other_data_or_another_template_version_renders_again(counting):
    once = RenderOnce(counting)
    once.render(TEMPLATE, {"title": "Trending"})
    once.render(TEMPLATE, {"title": "For you"})
    once.render(TEMPLATE + " ", {"title": "Trending"})
    once.render(TEMPLATE, {"title": "Trending"})

    assert counting.calls == 3


def test_a_failing_template_fails_once_per_answer_and_every_time(counting):
    once = RenderOnce(counting)
    for _ in range(3):
        with pytest.raises(RenderError):
            once.render("<% throw new Error('broken') %>", {"title": "x"})
    assert counting.calls == 1


def test_least_recently_used_answers_are_dropped_first(counting):
    once = RenderOnce(counting, entries=2)
    for title in ("a", "b", "a", "c", "a", "b"):
        once.render(TEMPLATE, {"title": title})
    # a, b, (a kept), c drops b, (a kept), b again
    assert counting.calls == 4
