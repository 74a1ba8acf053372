"""Steps 2 and 3 of the guide for one page: each placement's config, search and banner.

For every recs key configured for the page type, in order: config with ``sids`` (+ ``cp``,
``pid``, ``gpid``) → plan (``rules.py``'s verdict, ``queries.py``'s edits) → search → records
(the threshold, as JSv2, only when search found something; every record found is rendered) →
the base template rendered with its CSS (``render/``). Answers come through ``answers.py`` and
a banner is rendered once per answer; only the analytics token and click links are made per
page view. A page's banners are fetched in parallel within its one Klevu budget
(``budget.py``); a banner that fails or is late is left out and logged, and the page renders
without it. A template that fails falls back to the shop's own markup, which reports no Klevu
events: Klevu did not render that list. Each banner's story goes to the page's trace.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, render_template, request, url_for
from markupsafe import Markup

from ...extensions import shared_store
from .. import klevu as klevu_ext, klevu_client, trace
from ..analytics.events import BannerView
from ..analytics.shown import remember as remember_shown
from ..analytics.tokens import Sealed, issue_tokens, seal
from ..budget import page_view
from ..client import BreakerOpen, KlevuError
from ..memo import Memo
from ..render.engine import RenderError, TemplateQuarantined, TemplateRenderer, scope_css
from ..render.inline_styles import lift_inline_styles
from ..render.once import RenderOnce
from ..segments.resolver import current_segments
from . import links, queries, rules, template_data
from .answers import (
    OPEN_READ_SECONDS,
    Answer,
    KlevuAnswers,
    LateAnswer,
    NotFresh,
    refused_counts,
    served_counts,
)
from .styles import stylesheet_url

log = logging.getLogger(__name__)

MAX_WORKERS = 8


@dataclass(slots=True)
class Banner:
    """One banner as the page shows it: ``{{ banner }}`` in a template is its ``<section>``.

    Made on every banner page and never changed: not ``frozen``, whose ``__init__`` sets each
    of the seven fields through ``object.__setattr__`` (four times the cost)."""

    recs_key: str
    title: str
    section: str  # partials/banner.html, this page view's links in, ``TOKEN_SLOT`` left
    stylesheet: str  # the URL of its scoped and cleaned CSS ("": none), ``styles.py``
    token: str
    fallback: bool = False
    static: bool = False  # static content: the beacon counts clicks on its content links

    def __html__(self) -> str:
        """The section with its token: filled in last, so that a banner shown without one (the
        compare page's, ``replace(banner, token="")``) reports nothing."""
        token = f' data-klevu-token="{self.token}"' if self.token else ""  # URL-safe: HTML-safe
        return self.section.replace(TOKEN_SLOT, token, 1)


@dataclass(frozen=True)
class Fetched:
    """What one placement's Klevu calls produced, before it becomes HTML in the page."""

    recs_key: str
    config: dict
    records: list[dict] = field(default_factory=list)
    html: str | None = None  # rendered by Klevu's template; None → shop fallback
    static: bool = False  # a STATIC_CONTENT banner: staticContent, no records
    sources: dict[str, str] = field(default_factory=dict)  # service → answers.Answer.source
    version: bytes = b""  # RenderOnce.key of the render: same answers, same version
    fresh_until: float = 0.0  # wall clock: while both answers are fresh (0: one is not)

    @property
    def metadata(self) -> dict:
        return self.config["metadata"]

    @property
    def shows_banner(self) -> bool:
        """False: the placement shows nothing on this page (hidden by its config, nothing to
        search, too few products): still an outcome a warm page keeps while it is fresh."""
        return bool(self.records) or self.html is not None

    @property
    def source(self) -> str:
        """The banner's one word: "stale" if any answer was, "fresh" if any came from Klevu
        just now, else "cache"."""
        values = set(self.sources.values())
        return next((s for s in ("stale", "fresh") if s in values), "cache")


@dataclass(frozen=True)
class _Plan:
    """What a config answer makes of one page context: the verdict, and the search body (or
    None: nothing to search, or ``error``, what building it failed with: a ``QueryError`` for
    a payload the page's edits cannot apply to)."""

    verdict: rules.Verdict
    base_path: str = ""
    body: dict | None = None
    error: Exception | None = None

    def search_body(self) -> dict | None:
        if self.error is not None:
            raise self.error.with_traceback(None)  # not one more traceback on each page
        return self.body


@dataclass(frozen=True)
class _Parts:
    """What a banner's answers give every page view alike, so it is built once per answer:
    the analytics view sealed for its tokens, the banner's whole section (``section``) with
    each counted link pointing at ``CLICK_PREFIX`` + its item, and the stylesheet of its
    scoped CSS (the config's and the template's lifted inline styles)."""

    sealed: Sealed
    section: str
    stylesheet: str


@dataclass(frozen=True)
class _WarmPage:
    """A page whose placements were all settled on its own thread (``_from_cache``: from
    fresh answers, or refused by an open breaker), kept for its next untraced views until the
    first of those answers goes stale or the first refusal ends: one lookup per page instead
    of one per placement, and nothing to unwrap."""

    fresh_until: float  # wall clock, as the answers' (``inf``: every placement refused)
    refused_until: float | None  # ``time.monotonic`` (None: no placement refused)
    counted: tuple[tuple[str, str], ...]  # what each view counts (``KlevuAnswers.count``)
    shown: tuple[Fetched, ...]  # the placements that show a banner, in order


@dataclass
class BannerServices:
    """One app's steps 2-3: its answers cache, its template engine (behind ``renderer``, which
    renders each answer once), the pool its banners are fetched on, and what the same answers
    always make (kept per app: two apps never share a banner)."""

    answers: KlevuAnswers
    engine: TemplateRenderer
    secret_key: str  # the app's, which signs the banners' tokens
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="recs")
    )
    renderer: RenderOnce = field(init=False)
    # (recs key, config version, search version) → the rendered placement
    placements: Memo[tuple[str, str, str], Fetched] = field(default_factory=Memo)
    # (recs key, config version, page context) → verdict and search body
    plans: Memo[tuple[str, str, queries.PageContext], _Plan] = field(default_factory=Memo)
    # (recs key, render version, config CSS) → the per-answer parts of the page's banner
    parts: Memo[tuple[str, bytes, str], _Parts] = field(default_factory=Memo)
    # (page context, segments) → a warm page's placements, while all their answers are fresh
    # (and its refusals stand): untraced pages take them as they are, without looking each
    # placement's answers up again (two request keys hashed, a search body serialized, per
    # banner), or building the requests an open breaker refuses again
    warm: Memo[tuple[queries.PageContext, tuple[str, ...]], _WarmPage] = field(default_factory=Memo)
    # the app's root path (``SCRIPT_NAME``) → the click route under it, HTML-escaped
    click_routes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.renderer = RenderOnce(self.engine)


def config_params(context: queries.PageContext, segments: tuple[str, ...]) -> dict[str, str]:
    """Query parameters of the config request, only what the page has, in ``@klevu/core``'s
    order (a CDN keys its cache on the whole query: every client asking alike shares it).

    docs/klevu-wire-format.md §2.
    """
    params = {
        "cp": ";".join(context.category_path) if context.page_type == "CATEGORY" else "",
        "pid": context.product_id or "",
        "gpid": context.item_group_id or "",
        "sids": ",".join(segments),
    }
    return {k: v for k, v in params.items() if v}


def fetch_placement(
    banners: BannerServices,
    recs_key: str,
    context: queries.PageContext,
    segments: tuple[str, ...],
    due: float,
    fresh_only: bool = False,
) -> Fetched:
    """Config → plan → search → records → render, for one recs key (or why nothing shows:
    ``Fetched.shows_banner``).

    ``fresh_only``: from fresh cached answers only, else ``NotFresh`` (see ``banners_for``).
    """
    answers = banners.answers
    with trace.timed("config"):
        answer = answers.config(
            recs_key, config_params(context, segments), due, fresh_only=fresh_only
        )
    plan = _plan(banners, recs_key, answer, context)
    trace.note(
        "config",
        metadata=answer.body["metadata"],
        source=answer.source,
        hidden=plan.verdict.reason or None,
    )
    sources = {"config": answer.source}
    nothing = Fetched(recs_key, answer.body, sources=sources, fresh_until=answer.fresh_until)
    if plan.verdict.show is rules.Show.NOTHING:
        log.info("banner %s not shown: %s", recs_key, plan.verdict.reason)
        return nothing
    if plan.verdict.show is rules.Show.STATIC_CONTENT:
        fetched = replace(nothing, static=True)  # fresh while its config is
        return _rendered(banners.renderer, fetched, template_data.static_banner_data(answer.body))
    body = plan.search_body()
    if body is None:
        return nothing  # e.g. RECENTLY_VIEWED with nothing viewed yet: no search at all
    with trace.timed("search"):
        found = answers.search(plan.base_path, body, due, fresh_only=fresh_only)
    sources["search"] = found.source
    fresh_until = min(answer.fresh_until, found.fresh_until)
    shown = shown_records(answer.body, found.body)
    if shown is None:
        log.warning("banner %s not shown: the search answer has no records list", recs_key)
        return replace(nothing, fresh_until=fresh_until)
    trace.note(
        "search",
        body=body,
        records=shown.found,
        threshold=shown.limits.product_threshold,
        source=found.source,
    )
    if shown.hidden:
        return replace(nothing, fresh_until=fresh_until)
    known = (recs_key, answer.version, found.version)
    done = banners.placements.get(known) if answer.version and found.version else None
    if done is None:
        fetched = Fetched(recs_key, answer.body, shown.records)
        data = template_data.product_banner_data(answer.body, shown.records, shown.answers, body)
        done = _rendered(banners.renderer, fetched, data)
        if answer.version and found.version:
            banners.placements.put(known, done)
    return replace(done, sources=sources, fresh_until=fresh_until)


@dataclass(frozen=True)
class Shown:
    """What a search answer gives the banner: the records shown (all that search found, as
    JSv2 renders them), every query's answer (the template sees them all), and whether the
    banner hides for having fewer than the threshold (checked, as JSv2 does, only when search
    found something)."""

    records: list[dict]
    answers: list
    found: int
    limits: queries.RecsMetadata

    @property
    def hidden(self) -> bool:
        return 0 < self.found < self.limits.product_threshold


def shown_records(config: dict, search_answer: dict) -> Shown | None:
    """The recs query's result in a search answer, read as the page and ``klevu check`` read
    it: records without an id are not products. None: the answer has no records list."""
    result = next(
        (
            r
            for r in search_answer.get("queryResults") or []
            if isinstance(r, dict) and r.get("id") == queries.RECS_QUERY_ID
        ),
        {},
    )
    records = result.get("records")
    if not isinstance(records, list):
        return None
    records = [r for r in records if isinstance(r, dict) and r.get("id")]
    limits = queries.RecsMetadata.from_config(config["metadata"])
    return Shown(records, search_answer.get("queryResults") or [], len(records), limits)


def _plan(
    banners: BannerServices, recs_key: str, answer: Answer, context: queries.PageContext
) -> _Plan:
    """The config's verdict and search body for this page, made once per answer and context."""
    known = (recs_key, answer.version, context)
    plan = banners.plans.get(known) if answer.version else None
    if plan is not None:
        return plan
    config = answer.body
    verdict = rules.banner_verdict(config)
    if verdict.show is not rules.Show.PRODUCTS:
        plan = _Plan(verdict)
    else:
        search = config.get("search")
        if not isinstance(search, dict):
            search = {}
        base_path = search.get("basePath", "")
        api_key = banners.answers.client.settings.api_key
        try:
            body = queries.build_search(
                search.get("payload", ""), config["metadata"], context, api_key
            )
            plan = _Plan(verdict, base_path, body)
        except Exception as exc:  # reported per page, by ``_outcome``
            plan = _Plan(verdict, base_path, error=exc)
    if answer.version:
        banners.plans.put(known, plan)
    return plan


def base_template(config: dict) -> str | None:
    """The config's base template, or None: the shop's own banner markup is used."""
    template = (config.get("templates") or {}).get("base")
    return template if isinstance(template, str) and template.strip() else None


def css_scope(recs_key: str) -> str:
    """The selector a banner's CSS is scoped to: its wrapper in the page."""
    return f'[data-klevu-banner="{recs_key}"]'


def _rendered(renderer: RenderOnce, fetched: Fetched, data: dict[str, Any]) -> Fetched:
    template = base_template(fetched.config)
    if template is None:
        return fetched
    version = renderer.key(template, data)
    try:
        with trace.timed("render"):
            html = renderer.render(template, data, key=version)
    except TemplateQuarantined:  # logged once, when the renderer quarantined it
        return fetched
    except RenderError as exc:
        log.warning("template of %s failed (%s): using the shop's banner", fetched.recs_key, exc)
        trace.note("template", error=str(exc))
        return fetched
    return replace(fetched, html=html, version=version)


def banners_for(context: queries.PageContext) -> list[Banner]:
    """The page's banners, in configured order, within the page's Klevu budget.

    A visitor without an exchange id has no segments to wait for: their banners start at
    once and the session call (for continuity and analytics) runs beside them.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # one lookup
    recs_keys = app.config["KLEVU"].recs.get(context.page_type, ())
    if not recs_keys:
        return []
    banners = banner_services(app)  # read here, in the request's thread; the pool gets no app
    # A process's first banner page: V8 loads while this page's Klevu calls run.
    banners.engine.warm_up_soon()
    page = page_view()
    due = page.due
    traced = trace.current() is not None  # the inspector's story: asked once per page
    visitor = klevu_ext.visitor()
    identified = visitor.exchange_id is not None
    segments = current_segments(visitor).segments if identified else ()
    # A traced page looks its answers up again, so that its story tells where they came from.
    warm = None if traced else banners.warm.get((context, segments))
    if (
        warm is not None
        and warm.fresh_until > banners.answers.clock()
        and (warm.refused_until is None or warm.refused_until > time.monotonic())
    ):
        banners.answers.count(warm.counted)
        if not identified:
            current_segments(visitor)
        return [_banner(banners, fetched, page.id) for fetched in warm.shown]
    outcomes = [
        _from_cache(banners, key, context, segments)
        or banners.pool.submit(
            trace.carry(fetch_placement, banner=key), banners, key, context, segments, due
        )
        for key in recs_keys
    ]
    if not identified:
        current_segments(visitor)
    pending = [outcome for outcome in outcomes if isinstance(outcome, Future)]
    if pending and wait(pending, timeout=max(0.0, due - time.monotonic())).not_done:
        klevu_client().overdue(due)  # the page stops waiting: slow calls count as failed now
    shown = []
    for key, outcome in zip(recs_keys, outcomes, strict=True):
        fetched = _outcome(key, outcome)
        if fetched is not None and fetched.shows_banner:
            # Not timed: "render" is Klevu's template (``_rendered``); this page view's token
            # and links take microseconds, and a warm page renders nothing.
            shown.append(_banner(banners, fetched, page.id))
            if traced:
                trace.note(
                    "outcome",
                    banner=key,
                    result="shown",
                    token=shown[-1].token,
                    source=fetched.source,
                )
    if not traced:
        _keep_warm(banners, (context, segments), outcomes)
    return shown


def _keep_warm(
    banners: BannerServices,
    key: tuple[queries.PageContext, tuple[str, ...]],
    outcomes: list[Future | _Done],
) -> None:
    """Keep the page for its next views if every placement was settled on its own thread."""
    fresh_until, refused_until = math.inf, None
    counted: list[tuple[str, str]] = []
    shown = []
    for outcome in outcomes:
        if not isinstance(outcome, _Done):
            return  # the pool fetched it: the next view looks again
        fetched, error = outcome.value, outcome.error
        if fetched is not None:
            fresh_until = min(fresh_until, fetched.fresh_until)
            counted += served_counts(fetched.sources)
            if fetched.shows_banner:
                shown.append(fetched)
        elif isinstance(error, BreakerOpen) and error.service and outcome.refused_until:
            refused_until = min(refused_until or math.inf, outcome.refused_until)
            counted += refused_counts(error.service)
        else:
            return  # it failed: the next view tries again
    if fresh_until > banners.answers.clock():
        banners.warm.put(key, _WarmPage(fresh_until, refused_until, tuple(counted), tuple(shown)))


@dataclass(slots=True)
class _Done:
    """A placement settled on the page's own thread: what a finished ``Future`` answers,
    without the lock, condition and ``wait`` a warm banner would pay for one. One per banner
    per page, never changed (not ``frozen``, as ``Banner``)."""

    value: Fetched | None = None
    error: Exception | None = None
    refused_until: float | None = None  # an open breaker's refusal, kept until then

    def done(self) -> bool:
        return True

    def result(self) -> Fetched | None:
        if self.error is not None:
            raise self.error
        return self.value


def _from_cache(
    banners: BannerServices,
    recs_key: str,
    context: queries.PageContext,
    segments: tuple[str, ...],
) -> _Done | None:
    """A placement whose answers are all fresh in the cache (or whose service's breaker is
    open), done right here: a warm page does not hand its banners to the pool and wait for
    them. None: the pool must do it (and tells the trace what this try saw)."""
    try:
        with trace.tentative():
            fetched = trace.carry(fetch_placement, banner=recs_key)(
                banners, recs_key, context, segments, 0.0, True
            )
    except NotFresh:
        return None
    except BreakerOpen as exc:
        # Kept with its page (``_keep_warm``) as long as the answers' ``_held``: while the
        # breaker is open, the page's next views do not build and hash this placement's
        # requests again only to be refused again.
        until = time.monotonic() + OPEN_READ_SECONDS if exc.service else None
        return _Done(error=exc, refused_until=until)
    except Exception as exc:  # reported like the pool's failures, by ``_outcome``
        return _Done(error=exc)
    banners.answers.count(served_counts(fetched.sources))
    return _Done(fetched)


def _outcome(key: str, outcome: Future | _Done) -> Fetched | None:
    """The placement's result, or None; why a banner is missing goes to the log and to the
    page's trace ("late", "breaker-open", "failed", "unbuildable")."""
    if isinstance(outcome, _Done) and outcome.error is None:
        return outcome.value  # a warm banner: settled, nothing to report
    if not outcome.done():
        log.warning(
            "banner %s missed the page's Klevu budget; its answer is kept for the next page", key
        )
        trace.note("outcome", banner=key, result="late")
        return None
    try:
        return outcome.result()
    except LateAnswer as exc:
        log.warning("banner %s left out: %s", key, exc)
        trace.note("outcome", banner=key, result="late")
    except BreakerOpen:  # logged once, when the breaker opened
        trace.note("outcome", banner=key, result="breaker-open")
    except (KlevuError, queries.QueryError) as exc:
        log.warning("banner %s left out: %s", key, exc)
        trace.note(
            "outcome",
            banner=key,
            result="failed" if isinstance(exc, KlevuError) else "unbuildable",
            error=str(exc),
        )
    except Exception:  # an answer of a shape nobody planned for: still never the page's end
        log.exception("banner %s left out: unexpected failure", key)
        trace.note("outcome", banner=key, result="failed", error="unexpected failure")
    return None


def _click_route(banners: BannerServices) -> str:
    """``url_for("analytics.click")``, HTML-escaped, made once per root path the app is
    served under (19 µs of a banner page when it was made per page)."""
    root = request.root_path
    route = banners.click_routes.get(root)
    if route is None:
        route = banners.click_routes[root] = escape(url_for("analytics.click"), quote=True)
    return route


def _banner_view(fetched: Fetched) -> BannerView:
    """What the banner's events report: its products, or its static content (JSv2 sends
    events for both)."""
    api_key = current_app.config["KLEVU"].api_key
    if fetched.static:
        return BannerView.from_static(
            api_key,
            fetched.recs_key,
            fetched.metadata,
            rules.STATIC_ACTION,
            fetched.config["staticContent"],
        )
    return BannerView.from_config(api_key, fetched.recs_key, fetched.metadata, fetched.records)


def _click_targets(fetched: Fetched, prefix: str) -> dict[str, tuple[str, str]]:
    """Each clickable target → (``prefix`` + the item, the item it reports): a record's URL
    and id, or a static content's ``targetUrl`` and index."""
    if fetched.static:
        targets = [
            (str(index), content.get("targetUrl"))
            for index, content in enumerate(fetched.config["staticContent"])
            if isinstance(content, dict)
        ]
    else:
        targets = [(record["id"], record.get("url")) for record in fetched.records]
    return {
        url: (prefix + quote(str(item), safe=""), item)
        for item, url in targets
        if isinstance(url, str)
    }


_LINE_BREAKS = re.compile(r"[ \t\r\f]*\n\s*")
_PREFORMATTED = re.compile(r"<(?:pre|textarea)\b", re.IGNORECASE)


def tight(html: str) -> str:
    """The banner without a template's indentation and blank lines (1.1 KB of the 6.5 KB of
    the simulator's demo banner): every run of whitespace with a line break becomes one line
    break, which a browser renders as the run itself, one space, except in ``<pre>`` and
    ``<textarea>``, so a banner with either is left as it is."""
    return html if _PREFORMATTED.search(html) else _LINE_BREAKS.sub("\n", html)


CLICK_PREFIX = f"klevu-click-{uuid.uuid4().hex}-"  # stands for a page view's click route
TOKEN_SLOT = f" data-klevu-token-{uuid.uuid4().hex}"  # stands for a page view's token attribute


def _section(fetched: Fetched, html: str) -> str:
    """The banner's ``<section>`` around ``html`` (partials/banner.html), its token slot
    left for ``Banner.__html__``; in ASCII unless sanitizing is off (``as_ascii``)."""
    section = render_template(
        "partials/banner.html",
        recs_key=fetched.recs_key,
        title=_title(fetched),
        token_slot=Markup(TOKEN_SLOT),  # noqa: S704 (hex digits)
        static=fetched.static,
        fallback=fetched.html is None,
        html=Markup(html),  # noqa: S704 (sanitized and links routed, or our own template)
    )
    return section if current_app.config["STOREFRONT_UNSAFE_NO_SANITIZE"] else as_ascii(section)


def as_ascii(html: str) -> str:
    """``html`` with every character beyond ASCII written as a character reference, which a
    browser reads as that character in text and in attribute values, and a sanitized banner
    has nothing else (no ``<script>`` or ``<style>``, where references are not read). The
    shop's templates write their pages so too: a page of ASCII only is encoded to UTF-8 by a
    copy, where one "€" made the whole page two bytes a character, encoded one by one
    (docs/performance.md)."""
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _title(fetched: Fetched) -> str:
    return str(fetched.metadata.get("title") or "")


def _parts(banners: BannerServices, fetched: Fetched, rendered: str) -> _Parts:
    css = (fetched.config.get("styles") or {}).get("base") or ""
    key = (fetched.recs_key, fetched.version, css)
    parts = banners.parts.get(key) if fetched.version else None
    if parts is None:
        raw = current_app.config["STOREFRONT_UNSAFE_NO_SANITIZE"]
        html, inline_css = lift_inline_styles(
            links.route_clicks(
                rendered,
                _click_targets(fetched, CLICK_PREFIX),
                link_class=None if fetched.static else links.ITEM_CLICK_CLASS,
            )
        )
        if not raw:
            scope = css_scope(fetched.recs_key)
            css = "\n".join(filter(None, (scope_css(css, scope), scope_css(inline_css, scope))))
        parts = _Parts(
            seal(_banner_view(fetched)),
            _section(fetched, tight(html)),
            stylesheet_url(css) if css else "",
        )
        if fetched.version:
            banners.parts.put(key, parts)
    return parts


def _banner(banners: BannerServices, fetched: Fetched, page_view_id: str) -> Banner:
    """Page-ready banner: the per-answer parts, plus this page view's analytics token and
    click route."""
    title = _title(fetched)
    if fetched.html is None:
        # The shop's own markup, for a template that failed. Klevu did not render this list,
        # so no Klevu events are reported for it (no token), and its links go straight to
        # the shop's own product pages.
        html = render_template(
            "partials/fallback_banner.html",
            title=title,
            records=fetched.records,
            product_urls={r["id"]: klevu_ext.product_url(r["id"]) for r in fetched.records},
        )
        return Banner(
            fetched.recs_key,
            title,
            _section(fetched, html),
            "",
            "",
            fallback=True,
            static=fetched.static,
        )
    parts = _parts(banners, fetched, fetched.html)
    token, link = issue_tokens(banners.secret_key, page_view_id, parts.sealed)
    remember_shown(parts.sealed)  # the click route finds the banner by the link's key
    # A link token is URL-safe as it is, and HTML-safe.
    section = parts.section.replace(CLICK_PREFIX, f"{_click_route(banners)}?t={link}&amp;id=")
    return Banner(
        fetched.recs_key,
        title,
        section,
        parts.stylesheet,
        token,
        static=fetched.static,
    )


BANNERS = "klevu.banners"  # app.extensions key, read through ``banner_services()``


def banner_services(app: Flask | None = None) -> BannerServices:
    """The app's steps 2-3 (``current_app``'s by default)."""
    return (app or current_app).extensions[BANNERS]


def init_app(app: Flask) -> None:
    store = shared_store(app)
    answers = KlevuAnswers(
        klevu_client(app),
        store,
        config_ttl=app.config["KLEVU_CONFIG_TTL"],
        search_ttl=app.config["KLEVU_SEARCH_TTL"],
        stale_limit=app.config["KLEVU_STALE_LIMIT"],
        metrics=app.config["STOREFRONT_METRICS"],
    )
    renderer = TemplateRenderer(
        time_limit_ms=app.config["BANNER_RENDER_TIME_LIMIT_MS"],
        memory_limit_bytes=app.config["BANNER_RENDER_MEMORY_LIMIT_MB"] << 20,
        locale=app.config["STOREFRONT_LOCALE"],
        currencies=app.config["KLEVU_CURRENCY_FORMATS"],
        sanitize=not app.config["STOREFRONT_UNSAFE_NO_SANITIZE"],
    )
    app.extensions[BANNERS] = BannerServices(answers, renderer, app.config["SECRET_KEY"])
