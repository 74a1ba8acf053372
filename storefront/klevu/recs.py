"""Steps 2 and 3 of the guide: each placement's config (with ``sids``), search, and banner.

For every recs key configured for the page type, in order:
config with ``sids`` (+ ``cp``/``pid``/``gpid``) → the config's rules (``rules.py``) →
the page's query edits (``queries.py``) → search → threshold and ``maxProducts`` → the base
template rendered with its CSS (``render.py``). A page's banners are fetched in parallel under
one deadline; a banner that fails, is late, or lacks an input is left out and logged, and the
page renders without it. A template that fails falls back to the shop's own banner markup.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from flask import current_app, g, render_template, url_for
from markupsafe import Markup

from . import links, queries, rules, template_data, trace
from .client import KlevuClient, KlevuError
from .events import BannerView
from .inline_styles import lift_inline_styles
from .render import RenderError, TemplateRenderer, scope_css
from .segments import current_segments
from .tokens import issue_token

log = logging.getLogger(__name__)

DEFAULT_DEADLINE = 1.5   # seconds for all of a page's banners together
MAX_WORKERS = 8


@dataclass(frozen=True)
class Banner:
    """One banner as the page shows it."""
    recs_key: str
    title: str
    html: Markup
    css: Markup        # scoped and cleaned: safe inside <style>
    token: str
    fallback: bool = False
    static: bool = False    # static content: the beacon counts clicks on its content links


@dataclass(frozen=True)
class Fetched:
    """What one placement's Klevu calls produced, before it becomes HTML in the page."""
    recs_key: str
    config: dict
    records: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    html: str | None = None        # rendered by Klevu's template; None → shop fallback
    static: bool = False           # a STATIC_CONTENT banner: staticContent, no records

    @property
    def metadata(self) -> dict:
        return self.config["metadata"]


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


def fetch_placement(client: KlevuClient, renderer: TemplateRenderer, recs_key: str,
                    context: queries.PageContext, segments: tuple[str, ...],
                    due: float) -> Fetched | None:
    """Config → rules → query edits → search → render, for one recs key. None: show nothing."""
    def timeout():
        left = max(0.05, due - time.monotonic())
        return (min(1.0, left), left)

    config = client.recs_config(recs_key, config_params(context, segments), timeout=timeout())
    metadata = config["metadata"]
    verdict = rules.banner_verdict(config)
    trace.note("config", metadata=metadata, source="fresh", hidden=verdict.reason or None)
    if verdict.show is rules.Show.NOTHING:
        log.info("banner %s not shown: %s", recs_key, verdict.reason)
        return None
    if verdict.show is rules.Show.STATIC_CONTENT:
        return _rendered(renderer, Fetched(recs_key, config, static=True),
                         template_data.static_banner_data(config))
    search = config.get("search")
    if not isinstance(search, dict):
        search = {}
    body = queries.build_search(search.get("payload", ""), metadata, context,
                                client.settings.api_key)
    if body is None:
        return None  # e.g. RECENTLY_VIEWED with nothing viewed yet: no search at all
    answer = client.search(search.get("basePath", ""), body, timeout=timeout())
    result = next((r for r in answer["queryResults"]
                   if isinstance(r, dict) and r.get("id") == queries.RECS_QUERY_ID), {})
    records = result.get("records")
    if not isinstance(records, list):
        records = []
    records = [r for r in records if isinstance(r, dict) and r.get("id")]
    limits = queries.RecsMetadata.from_config(metadata)
    trace.note("search", body=body, records=len(records), threshold=limits.product_threshold)
    if len(records) < limits.product_threshold:
        return None
    meta = result.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    fetched = Fetched(recs_key, config, records[:limits.max_products], meta)
    return _rendered(renderer, fetched, template_data.product_banner_data(
        config, fetched.records, fetched.meta, body))


def _rendered(renderer: TemplateRenderer, fetched: Fetched, data: dict[str, Any]) -> Fetched:
    template = (fetched.config.get("templates") or {}).get("base")
    if not isinstance(template, str) or not template.strip():
        return fetched
    try:
        html = renderer.render(template, data)
    except RenderError as exc:
        log.warning("template of %s failed (%s): using the shop's banner", fetched.recs_key, exc)
        trace.note("template", error=str(exc))
        return fetched
    return replace(fetched, html=html)


def banners_for(context: queries.PageContext) -> list[Banner]:
    """The page's banners, in configured order, within the page deadline."""
    settings = current_app.config["KLEVU"]
    recs_keys = settings.recs.get(context.page_type, ())
    if not recs_keys:
        return []
    resolved = current_segments()
    app = current_app  # read here, in the request's thread; the workers get no app
    client, renderer = app.extensions["klevu_client"], app.extensions["banner_renderer"]
    due = time.monotonic() + app.config.get("RECS_DEADLINE", DEFAULT_DEADLINE)
    pool: ThreadPoolExecutor = app.extensions["recs_pool"]
    futures = [pool.submit(trace.carry(fetch_placement, banner=key), client, renderer, key,
                           context, resolved.segments, due) for key in recs_keys]
    wait(futures, timeout=max(0.0, due - time.monotonic()))
    banners = []
    for key, future in zip(recs_keys, futures, strict=True):
        if not future.done():
            log.warning("banner %s missed the page deadline", key)
            trace.note("outcome", banner=key, result="late")
            continue
        try:
            fetched = future.result()
        except (KlevuError, queries.QueryError) as exc:
            log.warning("banner %s left out: %s", key, exc)
            trace.note("outcome", banner=key, result="failed" if isinstance(exc, KlevuError)
                       else "unbuildable", error=str(exc))
            continue
        except Exception:  # an answer of a shape nobody planned for: still never the page's end
            log.exception("banner %s left out: unexpected failure", key)
            trace.note("outcome", banner=key, result="failed", error="unexpected failure")
            continue
        if fetched is not None and (fetched.records or fetched.html is not None):
            banners.append(_banner(fetched))
            trace.note("outcome", banner=key, result="shown", token=banners[-1].token)
    return banners


def page_view_id() -> str:
    """One id per rendered page: impressions are counted once per banner per page view."""
    if "page_view_id" not in g:
        g.page_view_id = uuid.uuid4().hex
    return g.page_view_id


def _banner_view(fetched: Fetched) -> BannerView:
    """What the banner's events report: its products, or its static content (JSv2 sends
    events for both)."""
    api_key = current_app.config["KLEVU"].api_key
    if fetched.static:
        return BannerView.from_static(api_key, fetched.recs_key, fetched.metadata,
                                      rules.action(fetched.config) or rules.STATIC_ACTION,
                                      fetched.config["staticContent"])
    return BannerView.from_config(api_key, fetched.recs_key, fetched.metadata, fetched.records)


def _click_targets(fetched: Fetched, token: str) -> dict[str, tuple[str, str]]:
    """Each clickable target → (the click route, the item it reports): a record's URL and
    id, or a static content's ``targetUrl`` and index."""
    if fetched.static:
        targets = [(str(index), content.get("targetUrl"))
                   for index, content in enumerate(fetched.config["staticContent"])
                   if isinstance(content, dict)]
    else:
        targets = [(record["id"], record.get("url")) for record in fetched.records]
    return {url: (url_for("analytics.click", t=token, id=item), item)
            for item, url in targets if isinstance(url, str)}


def _banner(fetched: Fetched) -> Banner:
    """Page-ready banner: HTML with click routes, scoped CSS, and the analytics token."""
    title = str(fetched.metadata.get("title") or "")
    token = issue_token(current_app.config["SECRET_KEY"], page_view_id(),
                        _banner_view(fetched))
    click_urls = _click_targets(fetched, token)
    if fetched.html is not None:
        html, inline_css = lift_inline_styles(links.route_clicks(
            fetched.html, click_urls,
            link_class=None if fetched.static else links.ITEM_CLICK_CLASS))
        css = (fetched.config.get("styles") or {}).get("base") or ""
        if not current_app.config["STOREFRONT_UNSAFE_NO_SANITIZE"]:
            scope = f'[data-klevu-banner="{fetched.recs_key}"]'
            css = "\n".join(filter(None, (scope_css(css, scope), scope_css(inline_css, scope))))
    else:
        html = render_template("partials/fallback_banner.html", title=title,
                               records=fetched.records,
                               click_urls={url: click for url, (click, _) in click_urls.items()})
        css = ""
    # html: sanitized by the renderer, or our autoescaped template; css: scoped and cleaned.
    return Banner(fetched.recs_key, title, Markup(html), Markup(css), token,  # noqa: S704
                  fallback=fetched.html is None, static=fetched.static)


def init_app(app) -> None:
    app.extensions["banner_renderer"] = TemplateRenderer(
        currencies=app.config["KLEVU_CURRENCY_FORMATS"],
        sanitize=not app.config["STOREFRONT_UNSAFE_NO_SANITIZE"])
    app.extensions["recs_pool"] = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="recs")
