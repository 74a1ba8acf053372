"""Steps 2 and 3 of the guide: each placement's config (with ``sids``), search, and banner.

For every recs key configured for the page type, in order:
config with ``sids`` (+ ``cp``/``pid``/``gpid``) → the config's rules (``rules.py``) →
the page's query edits (``queries.py``) → search → threshold and ``maxProducts`` → the base
template rendered with its CSS (``render.py``). Config and search answers come through the
answers cache (``answers.py``), and a banner is rendered once per answer (``render_once.py``);
only the analytics token and the click links are made per page view. A page's banners are
fetched in parallel within the page's one Klevu budget (``budget.py``); a banner that fails, is
late, or lacks an input is left out and logged, and the page renders without it. A template
that fails falls back to the shop's own banner markup. What each banner's answers came from
("cache", "fresh", "stale") and why one is missing go to the page's trace (``trace.py``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any
from urllib.parse import quote

from flask import current_app, g, render_template, url_for
from markupsafe import Markup

from ...extensions import cache
from .. import klevu as klevu_ext, shown, trace
from ..analytics.events import BannerView
from ..analytics.tokens import issue_link_token, issue_token
from ..budget import page_due
from ..client import BreakerOpen, KlevuError
from ..render.engine import RenderError, TemplateQuarantined, TemplateRenderer, scope_css
from ..render.inline_styles import lift_inline_styles
from ..render.once import Memo, RenderOnce
from ..segments.resolver import current_segments
from . import links, queries, rules, template_data
from .answers import Answer, KlevuAnswers, LateAnswer, NotFresh
from .styles import stylesheet_url

log = logging.getLogger(__name__)

MAX_WORKERS = 8


@dataclass(frozen=True)
class Banner:
    """One banner as the page shows it."""

    recs_key: str
    title: str
    html: Markup
    stylesheet: str  # the URL of its scoped and cleaned CSS ("": none), ``styles.py``
    token: str
    fallback: bool = False
    static: bool = False  # static content: the beacon counts clicks on its content links


@dataclass(frozen=True)
class Fetched:
    """What one placement's Klevu calls produced, before it becomes HTML in the page."""

    recs_key: str
    config: dict
    records: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    html: str | None = None  # rendered by Klevu's template; None → shop fallback
    static: bool = False  # a STATIC_CONTENT banner: staticContent, no records
    sources: dict[str, str] = field(default_factory=dict)  # service → answers.Answer.source
    version: bytes = b""  # RenderOnce.key of the render: same answers, same version
    fresh_until: float = 0.0  # wall clock: while both answers are fresh (0: one is not)

    @property
    def metadata(self) -> dict:
        return self.config["metadata"]

    @property
    def source(self) -> str:
        """The banner's one word: "stale" if any answer was, "fresh" if any came from Klevu
        just now, else "cache"."""
        values = set(self.sources.values())
        return next((s for s in ("stale", "fresh") if s in values), "cache")


# The banner a config and a search answer make is the same for every page view that gets these
# two answers (the search answer is keyed by its request body), so it is kept per answer pair.
_placements: Memo[tuple[str, str, str], Fetched] = Memo()


def config_params(context: queries.PageContext, segments: tuple[str, ...]) -> dict[str, str]:
    """Query parameters of the config request, only what the page has.

    docs/klevu-wire-format.md §2.
    """
    params = {
        "sids": ",".join(segments),
        "cp": ";".join(context.category_path) if context.page_type == "CATEGORY" else "",
        "pid": context.product_id or "",
        "gpid": context.item_group_id or "",
    }
    return {k: v for k, v in params.items() if v}


def fetch_placement(
    klevu: KlevuAnswers,
    renderer: RenderOnce,
    recs_key: str,
    context: queries.PageContext,
    segments: tuple[str, ...],
    due: float,
    fresh_only: bool = False,
) -> Fetched | None:
    """Config → rules → query edits → search → render, for one recs key. None: show nothing.

    ``fresh_only``: from fresh cached answers only, else ``NotFresh`` (see ``banners_for``),
    and then nothing is noted in the page's trace: the pool's run notes it all.
    """
    answer = klevu.config(recs_key, config_params(context, segments), due, fresh_only=fresh_only)
    config, sources = answer.body, {"config": answer.source}
    metadata = config["metadata"]
    plan = _plan(recs_key, answer, context, klevu.client.settings.api_key)
    config_note = {
        "metadata": metadata,
        "source": answer.source,
        "hidden": plan.verdict.reason or None,
    }
    if plan.verdict.show is rules.Show.NOTHING:
        trace.note("config", **config_note)
        log.info("banner %s not shown: %s", recs_key, plan.verdict.reason)
        return None
    if plan.verdict.show is rules.Show.STATIC_CONTENT:
        trace.note("config", **config_note)
        return _rendered(
            renderer,
            Fetched(recs_key, config, static=True, sources=sources),
            template_data.static_banner_data(config),
        )
    try:
        body = plan.search_body()
        found = (
            None if body is None else klevu.search(plan.base_path, body, due, fresh_only=fresh_only)
        )
    except NotFresh:
        raise
    except Exception:
        trace.note("config", **config_note)
        raise
    trace.note("config", **config_note)
    if body is None or found is None:
        return None  # e.g. RECENTLY_VIEWED with nothing viewed yet: no search at all
    sources["search"] = found.source
    result = next(
        (
            r
            for r in found.body["queryResults"]
            if isinstance(r, dict) and r.get("id") == queries.RECS_QUERY_ID
        ),
        {},
    )
    records = result.get("records")
    if not isinstance(records, list):
        records = []
    records = [r for r in records if isinstance(r, dict) and r.get("id")]
    limits = queries.RecsMetadata.from_config(metadata)
    trace.note(
        "search",
        body=body,
        records=len(records),
        threshold=limits.product_threshold,
        source=found.source,
    )
    if len(records) < limits.product_threshold:
        return None
    known = (recs_key, answer.version, found.version)
    done = _placements.get(known) if answer.version and found.version else None
    if done is None:
        meta = result.get("meta")
        fetched = Fetched(
            recs_key, config, records[: limits.max_products], meta if isinstance(meta, dict) else {}
        )
        done = _rendered(
            renderer,
            fetched,
            template_data.product_banner_data(config, fetched.records, fetched.meta, body),
        )
        if answer.version and found.version:
            _placements.put(known, done)
    return replace(done, sources=sources, fresh_until=min(answer.fresh_until, found.fresh_until))


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


# The same config answer and page context make the same verdict and search body on every page
# view: reading the config's payload and editing its queries is done once per pair.
_plans: Memo[tuple[str, str, queries.PageContext], _Plan] = Memo()


def _plan(recs_key: str, answer: Answer, context: queries.PageContext, api_key: str) -> _Plan:
    known = (recs_key, answer.version, context)
    plan = _plans.get(known) if answer.version else None
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
        try:
            plan = _Plan(
                verdict,
                base_path,
                queries.build_search(
                    search.get("payload", ""), config["metadata"], context, api_key
                ),
            )
        except Exception as exc:  # reported per page, by ``_outcome``
            plan = _Plan(verdict, base_path, error=exc)
    if answer.version:
        _plans.put(known, plan)
    return plan


def _rendered(renderer: RenderOnce, fetched: Fetched, data: dict[str, Any]) -> Fetched:
    template = (fetched.config.get("templates") or {}).get("base")
    if not isinstance(template, str) or not template.strip():
        return fetched
    version = renderer.key(template, data)
    try:
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
    settings = current_app.config["KLEVU"]
    recs_keys = settings.recs.get(context.page_type, ())
    if not recs_keys:
        return []
    # A process's first banner page: V8 loads while this page's Klevu calls run.
    current_app.extensions["banner_renderer"].renderer.warm_up_soon()
    due = page_due()
    visitor = klevu_ext.visitor()
    identified = visitor.exchange_id is not None
    segments = current_segments(visitor).segments if identified else ()
    app = current_app  # read here, in the request's thread; the workers get no app
    klevu, renderer = app.extensions["klevu_answers"], app.extensions["banner_renderer"]
    pool: ThreadPoolExecutor = app.extensions["recs_pool"]
    futures = [
        _from_cache(klevu, renderer, key, context, segments)
        or pool.submit(
            trace.carry(fetch_placement, banner=key), klevu, renderer, key, context, segments, due
        )
        for key in recs_keys
    ]
    if not identified:
        current_segments(visitor)
    if wait(futures, timeout=max(0.0, due - time.monotonic())).not_done:
        klevu.client.overdue(due)  # the page stops waiting: slow calls count as failed now
    banners = []
    for key, future in zip(recs_keys, futures, strict=True):
        fetched = _outcome(key, future)
        if fetched is not None and (fetched.records or fetched.html is not None):
            banners.append(_banner(fetched))
            trace.note(
                "outcome",
                banner=key,
                result="shown",
                token=banners[-1].token,
                source=fetched.source,
            )
    return banners


# A warm page's placement while its answers stay fresh: the same answers, page context and
# segments make the same banner, so untraced pages (the inspector off) take it as it is,
# without looking both answers up again (two request keys hashed, a search body serialized).
# Keyed by the app's answers too: every app in a process (tests start several) has its own.
_warm: Memo[tuple[KlevuAnswers, str, queries.PageContext, tuple[str, ...]], Fetched] = Memo()


def _from_cache(
    klevu: KlevuAnswers,
    renderer: RenderOnce,
    recs_key: str,
    context: queries.PageContext,
    segments: tuple[str, ...],
) -> Future | None:
    """A placement whose answers are all fresh in the cache (or whose service's breaker is
    open), done right here: a warm page does not hand its banners to the pool and wait for
    them. None: the pool must do it."""
    future: Future = Future()
    key = (klevu, recs_key, context, segments)
    warm = _warm.get(key) if trace.current() is None else None
    if warm is not None and warm.fresh_until > klevu.clock():
        klevu.served(warm.sources)
        future.set_result(warm)
        return future
    try:
        fetched = trace.carry(fetch_placement, banner=recs_key)(
            klevu, renderer, recs_key, context, segments, 0.0, True
        )
    except NotFresh:
        return None
    except Exception as exc:  # reported like the pool's failures, by ``_outcome``
        future.set_exception(exc)
        return future
    if fetched is not None:
        klevu.served(fetched.sources)
        if fetched.fresh_until > klevu.clock():
            _warm.put(key, fetched)
    future.set_result(fetched)
    return future


def _outcome(key: str, future: Future) -> Fetched | None:
    """The placement's result, or None; why a banner is missing goes to the log and to the
    page's trace ("late", "breaker-open", "failed", "unbuildable")."""
    if not future.done():
        log.warning(
            "banner %s missed the page's Klevu budget; its answer is kept for the next page", key
        )
        trace.note("outcome", banner=key, result="late")
        return None
    try:
        return future.result()
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


def page_view_id() -> str:
    """One id per rendered page: impressions are counted once per banner per page view."""
    if "page_view_id" not in g:
        g.page_view_id = uuid.uuid4().hex
    return g.page_view_id


def _click_route(view: BannerView) -> str:
    """``url_for("analytics.click", t=token, id="")`` for a banner of this page view, with
    one ``url_for`` per page view (a token is URL-safe as it is). The token is the short one
    of click links, naming the banner, which is remembered for the click route (``shown``)."""
    shown.remember(view)
    token = issue_link_token(current_app.config["SECRET_KEY"], page_view_id(), view)
    if "klevu_click_route" not in g:
        g.klevu_click_route = url_for("analytics.click")
    return f"{g.klevu_click_route}?t={token}&id="


def _banner_view(fetched: Fetched) -> BannerView:
    """What the banner's events report: its products, or its static content (JSv2 sends
    events for both)."""
    api_key = current_app.config["KLEVU"].api_key
    if fetched.static:
        return BannerView.from_static(
            api_key,
            fetched.recs_key,
            fetched.metadata,
            rules.action(fetched.config) or rules.STATIC_ACTION,
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


@dataclass(frozen=True)
class _Parts:
    """What a banner's answers give every page view alike, so it is built once per answer:
    the analytics view, the HTML with each counted link pointing at ``CLICK_PREFIX`` + its
    item, and the stylesheet of its scoped CSS (the config's and the template's lifted inline
    styles)."""

    view: BannerView
    html: str
    stylesheet: str


_LINE_BREAKS = re.compile(r"[ \t\r\f]*\n\s*")
_PREFORMATTED = re.compile(r"<(?:pre|textarea)\b", re.IGNORECASE)


def tight(html: str) -> str:
    """The banner without a template's indentation and blank lines (1.1 KB of the 6.5 KB of
    the simulator's demo banner): every run of whitespace with a line break becomes one line
    break, which a browser renders as the run itself, one space, except in ``<pre>`` and
    ``<textarea>``, so a banner with either is left as it is."""
    return html if _PREFORMATTED.search(html) else _LINE_BREAKS.sub("\n", html)


CLICK_PREFIX = f"klevu-click-{uuid.uuid4().hex}-"  # stands for a page view's click route
_parts_memo: Memo[tuple[str, bytes, str, bool], _Parts] = Memo()


def _parts(fetched: Fetched, rendered: str) -> _Parts:
    css = (fetched.config.get("styles") or {}).get("base") or ""
    raw = current_app.config["STOREFRONT_UNSAFE_NO_SANITIZE"]
    key = (fetched.recs_key, fetched.version, css, raw)
    parts = _parts_memo.get(key) if fetched.version else None
    if parts is None:
        html, inline_css = lift_inline_styles(
            links.route_clicks(
                rendered,
                _click_targets(fetched, CLICK_PREFIX),
                link_class=None if fetched.static else links.ITEM_CLICK_CLASS,
            )
        )
        if not raw:
            scope = f'[data-klevu-banner="{fetched.recs_key}"]'
            css = "\n".join(filter(None, (scope_css(css, scope), scope_css(inline_css, scope))))
        parts = _Parts(_banner_view(fetched), tight(html), stylesheet_url(css) if css else "")
        if fetched.version:
            _parts_memo.put(key, parts)
    return parts


def _banner(fetched: Fetched) -> Banner:
    """Page-ready banner: the per-answer parts, plus this page view's analytics token and
    click route."""
    title = str(fetched.metadata.get("title") or "")
    if fetched.html is None:  # the shop's own markup, for a template that failed
        view = _banner_view(fetched)
        token = issue_token(current_app.config["SECRET_KEY"], page_view_id(), view)
        click = _click_route(view)
        html = render_template(
            "partials/fallback_banner.html",
            title=title,
            records=fetched.records,
            click_urls={url: route for url, (route, _) in _click_targets(fetched, click).items()},
        )
        # Our autoescaped template.
        return Banner(
            fetched.recs_key,
            title,
            Markup(html),  # noqa: S704 (autoescaped template)
            "",
            token,
            fallback=True,
            static=fetched.static,
        )
    parts = _parts(fetched, fetched.html)
    token = issue_token(current_app.config["SECRET_KEY"], page_view_id(), parts.view)
    click = _click_route(parts.view)
    html = parts.html.replace(CLICK_PREFIX, escape(click, quote=True))
    # html: sanitized by the renderer, links routed.
    return Banner(
        fetched.recs_key,
        title,
        Markup(html),  # noqa: S704 (sanitized, links routed)
        parts.stylesheet,
        token,
        static=fetched.static,
    )


def init_app(app) -> None:
    with app.app_context():
        store = cache.cache  # the backend itself, usable from the pool's threads
    app.extensions["klevu_answers"] = KlevuAnswers(
        app.extensions["klevu_client"],
        store,
        config_ttl=app.config["KLEVU_CONFIG_TTL"],
        search_ttl=app.config["KLEVU_SEARCH_TTL"],
        stale_limit=app.config["KLEVU_STALE_LIMIT"],
    )
    app.extensions["banner_renderer"] = RenderOnce(
        TemplateRenderer(
            time_limit_ms=app.config["BANNER_RENDER_TIME_LIMIT_MS"],
            memory_limit_bytes=app.config["BANNER_RENDER_MEMORY_LIMIT_MB"] << 20,
            locale=app.config["STOREFRONT_LOCALE"],
            currencies=app.config["KLEVU_CURRENCY_FORMATS"],
            sanitize=not app.config["STOREFRONT_UNSAFE_NO_SANITIZE"],
        )
    )
    app.extensions["recs_pool"] = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="recs")
