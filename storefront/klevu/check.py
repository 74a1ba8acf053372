"""``flask --app storefront klevu check``: is this Klevu account ready for the shop?

An integration developer's first five minutes: for the configured api key and every configured
recs key and page type, each step the shop takes is tried once, with the shop's own client,
query builder, template engine and CSS cleaner, so a ✓ here means the shop itself will manage.
One line per check, ✓ or ✗ with the reason and a hint; exit status 0 only when all pass;
``--json`` for machines. Nothing is sent to the collector unless ``--send-test-event``: without
it the collector is probed with an empty batch, which carries no event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import click
from flask.cli import with_appcontext

from ..config import PAGE_TYPES, KlevuSettings
from . import klevu, klevu_client
from .analytics import events
from .analytics.relay import rejects_events
from .banners import queries, rules, template_data
from .banners.placement import (
    Fetched,
    banner_services,
    base_template,
    config_params,
    css_scope,
    shown_records,
)
from .client import KlevuClient, KlevuError, mask_api_key
from .render.engine import RenderError, TemplateRenderer, helper_names, scope_css, template_line

TIMEOUT = (3.0, 10.0)  # a diagnostic may wait longer than a page would


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def _hint(exc: KlevuError, setting: str) -> str:
    """What to look at, from how a call failed."""
    if exc.status is None:
        return f"no answer: check {setting} and that this host can reach it"
    if exc.status == 404:
        return f"not found: check {setting} (and KLEVU_API_KEY)"
    if exc.status in (401, 403):
        return "refused: check KLEVU_API_KEY"
    if exc.status == 429:
        return "rate limited: try again in a minute"
    if exc.status >= 500:
        return "Klevu is failing right now: try again later"
    return "Klevu did not accept the request: compare it with docs/klevu-wire-format.md"


class Checker:
    def __init__(
        self,
        client: KlevuClient,
        renderer: TemplateRenderer,
        pages: Callable[[str], queries.PageContext],
        *,
        exchange_id: str | None = None,
        send_test_event: bool = False,
    ):
        self.client = client
        self.settings: KlevuSettings = client.settings
        self.renderer = renderer
        self.pages = pages  # a page of each type to try (the shop's sample pages)
        self.exchange_id = exchange_id
        self.send_test_event = send_test_event
        self.session_id: str | None = None
        self.segments: tuple[str, ...] = ()
        self.shown: list[Fetched] = []  # banners that would show (for the test event)

    def run(self) -> Iterator[Result]:
        yield from self.visitor()
        for page_type in PAGE_TYPES:
            for recs_key in self.settings.recs.get(page_type, ()):
                yield from self.placement(page_type, recs_key)
        if not any(self.settings.recs.values()):
            yield Result(
                "recs keys",
                False,
                "no recs key is configured for any page type",
                "set KLEVU_RECS_HOME (and the others) to recs keys of this account",
            )
        yield from self.collector()

    # -- step 1 ------------------------------------------------------------------------------
    def visitor(self) -> Iterator[Result]:
        try:
            answer = self.client.start_session(timeout=TIMEOUT)
        except KlevuError as exc:
            yield Result("visitor service", False, str(exc), _hint(exc, "KLEVU_VISITOR_URL"))
            return
        self.session_id = answer.session_id
        yield Result("visitor service", True, f"session {answer.session_id[:8]}… opened")
        if not self.exchange_id:
            return
        try:
            found = self.client.start_session(answer.session_id, self.exchange_id, timeout=TIMEOUT)
        except KlevuError as exc:
            yield Result("segments", False, str(exc), _hint(exc, "KLEVU_VISITOR_URL"))
            return
        self.segments = found.segments
        if found.segments:
            yield Result("segments", True, f"{', '.join(found.segments)} (ttl {found.ttl} s)")
        else:
            yield Result(
                "segments",
                False,
                "no segments came back for this exchange id",
                "check the Klaviyo connector in Klevu Merchant Center, and that the "
                "exchange id belongs to a profile of the connected Klaviyo account",
            )

    # -- steps 2 and 3 -----------------------------------------------------------------------
    def placement(self, page_type: str, recs_key: str) -> Iterator[Result]:
        name = f"{recs_key} ({page_type})"
        setting = f"KLEVU_RECS_{page_type}"
        page = self.pages(page_type)
        try:
            config = self.client.recs_config(
                recs_key, config_params(page, self.segments), timeout=TIMEOUT
            ).body
        except KlevuError as exc:
            yield Result(f"config {name}", False, str(exc), _hint(exc, setting))
            return
        metadata = config["metadata"]
        variant = metadata.get("segmentKey") or "default variant"
        yield Result(
            f"config {name}",
            True,
            f"loads: “{metadata.get('title')}”, {variant}, {metadata.get('logic')}",
        )
        verdict = rules.banner_verdict(config)
        if verdict.show is rules.Show.NOTHING and not verdict.hidden_on_purpose:
            yield Result(
                f"shown {name}",
                False,
                f"never shown: {verdict.reason}",
                f"fix it in Merchant Center or take it out of {setting}",
            )
            return
        placed = metadata.get("pageType")
        if placed != page_type:
            yield Result(
                f"page type {name}",
                False,
                f"the config is for {placed or 'no'} pages, placed on {page_type}",
                f"move {recs_key} to KLEVU_RECS_{placed}"
                if placed in PAGE_TYPES
                else "set the recommendation's page type in Merchant Center",
            )
            return
        yield Result(f"page type {name}", True, f"{placed} matches where it is placed")
        if verdict.show is rules.Show.NOTHING:
            yield Result(
                f"search {name}",
                True,
                "not needed: action HIDE_RECOMMENDATION (hidden on purpose for these segments)",
            )
            return
        if verdict.show is rules.Show.STATIC_CONTENT:
            yield Result(f"search {name}", True, "not needed: action STATIC_CONTENT")
            yield from self.looks(
                name,
                Fetched(recs_key, config, static=True),
                template_data.static_banner_data(config),
            )
            return
        search: dict = config["search"] if isinstance(config.get("search"), dict) else {}
        yield from self.search(name, recs_key, config, search, page)

    def search(
        self, name: str, recs_key: str, config: dict, search: dict, page: queries.PageContext
    ) -> Iterator[Result]:
        """The payload builds, the base path makes a URL, search answers with enough records."""
        payload, base_path = search.get("payload"), search.get("basePath", "")
        try:
            payload = payload if isinstance(payload, str) else ""
            json.loads(payload)
            body = queries.build_search(payload, config["metadata"], page, self.settings.api_key)
        except (ValueError, queries.QueryError) as exc:
            yield Result(
                f"payload {name}",
                False,
                f"search.payload does not parse: {exc}",
                "search.payload must be a JSON string holding recordQueries",
            )
            return
        yield Result(f"payload {name}", True, "search.payload parses")
        try:
            url = self.client.search_url(base_path)
        except KlevuError as exc:
            yield Result(
                f"basePath {name}",
                False,
                str(exc),
                "basePath is a host and path without a scheme, e.g. "
                "eucs1.ksearchnet.com/cs/v2/search",
            )
            return
        yield Result(f"basePath {name}", True, f"searches at {url}")
        if body is None:
            yield Result(f"search {name}", True, "not needed on this page (nothing viewed yet)")
            return
        yield from self.records(name, recs_key, config, url, body)

    def records(
        self, name: str, recs_key: str, config: dict, url: str, body: dict
    ) -> Iterator[Result]:
        """Search answers, with as many records as the page needs to show the banner."""
        try:
            answer = self.client.search(url, self.client.search_body(body), timeout=TIMEOUT).body
        except KlevuError as exc:
            yield Result(f"search {name}", False, str(exc), _hint(exc, "KLEVU_SEARCH_URL"))
            return
        shown = shown_records(config, answer)
        if shown is None:
            yield Result(
                f"search {name}",
                False,
                "the answer has no records list for the recommendations query",
                "compare the answer with docs/klevu-wire-format.md §3",
            )
            return
        threshold = shown.limits.product_threshold
        if shown.hidden:
            yield Result(
                f"search {name}",
                False,
                f"{shown.found} records, fewer than productThreshold {threshold}: "
                "the banner would be hidden",
                "check the logic's data in Klevu (enough products, synced catalog), "
                "or lower productThreshold",
            )
            return
        yield Result(f"search {name}", True, f"{shown.found} records (threshold {threshold})")
        fetched = Fetched(recs_key, config, shown.records)
        self.shown.append(fetched)
        data = template_data.product_banner_data(config, shown.records, shown.answers, body)
        yield from self.looks(name, fetched, data)

    def looks(self, name: str, fetched: Fetched, data: dict) -> Iterator[Result]:
        """The template renders with the shop's engine; the CSS survives the shop's cleaner."""
        template = base_template(fetched.config)
        if template is None:
            yield Result(f"template {name}", True, "none: the shop's own banner markup is used")
        else:
            yield self.template(name, template, data)
        css = (fetched.config.get("styles") or {}).get("base") or ""
        if not isinstance(css, str):
            yield Result(f"CSS {name}", False, "styles.base is not text", "")
            return
        cleaned = scope_css(css, css_scope(fetched.recs_key))
        if css.strip() and not cleaned.strip():
            yield Result(
                f"CSS {name}",
                False,
                "nothing in styles.base survives cleaning",
                "the cleaner keeps ordinary rules; check the CSS parses",
            )
        else:
            rules = cleaned.count("{") - cleaned.count("@")
            yield Result(
                f"CSS {name}",
                True,
                f"cleans: {len(css)} → {len(cleaned)} characters, about {max(rules, 0)} rules",
            )

    def template(self, name: str, template: str, data: dict) -> Result:
        try:
            html = self.renderer.render(template, data)
        except RenderError as exc:
            line = template_line(template, exc)
            where = f" at template line {line}" if line else ""
            missing = sorted(set(_helpers_called(template)) - helper_names())
            hint = (
                f"missing helper: helper.{', helper.'.join(missing)} "
                f"(the shop has {', '.join(sorted(helper_names()))})"
                if missing
                else "fix the template in Merchant Center"
            )
            return Result(f"template {name}", False, f"{exc}{where}", hint)
        return Result(f"template {name}", True, f"renders ({len(html)} characters)")

    # -- step 4 ------------------------------------------------------------------------------
    def collector(self) -> Iterator[Result]:
        if self.send_test_event:
            yield self.test_event()
            return
        try:
            self.client.collect([], timeout=TIMEOUT)
        except KlevuError as exc:
            if rejects_events(exc):  # the relay's reading: an empty batch is a bad batch
                yield Result(
                    "collector",
                    True,
                    f"answers (HTTP {exc.status} to an empty batch; no event sent)",
                )
            else:
                yield Result("collector", False, str(exc), _hint(exc, "KLEVU_STATS_URL"))
            return
        yield Result("collector", True, "answers (an empty batch; no event sent)")

    def test_event(self) -> Result:
        if not self.shown:
            return Result(
                "collector",
                False,
                "no banner with products to build a test event from",
                "fix the ✗ lines above first",
            )
        fetched = self.shown[0]
        view = events.BannerView.from_config(
            self.settings.api_key, fetched.recs_key, fetched.metadata, fetched.records
        )
        try:
            self.client.collect([events.impression(view, self.session_id)], timeout=TIMEOUT)
        except KlevuError as exc:
            return Result("collector", False, str(exc), _hint(exc, "KLEVU_STATS_URL"))
        return Result("collector", True, f"accepted a test view_recs_list for {fetched.recs_key}")


def _helpers_called(template: str) -> list[str]:
    return re.findall(r"\bhelper\.([A-Za-z_$][\w$]*)", template)


def _masked(result: Result, api_key: str) -> Result:
    """Output gets pasted into tickets and chats: the api key is shown masked."""
    return Result(
        result.name,
        result.ok,
        mask_api_key(result.detail, api_key),
        mask_api_key(result.hint, api_key),
    )


def _print(results: list[Result], echo: Callable[[str], None]) -> None:
    for result in results:
        echo(f"{'✓' if result.ok else '✗'} {result.name}: {result.detail}")
        if not result.ok and result.hint:
            echo(f"    hint: {result.hint}")
    failed = sum(not r.ok for r in results)
    echo(f"{len(results) - failed} passed, {failed} failed")


@click.group("klevu")
def klevu_cli() -> None:
    """Klevu integration tools."""


@klevu_cli.command("check")
@click.option("--exchange-id", help="a Klaviyo $exchange_id: also check that segments come back")
@click.option(
    "--product-id", help="the product the sample pages are built around (default: the shop's first)"
)
@click.option(
    "--send-test-event", is_flag=True, help="send one real view_recs_list event to the collector"
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@with_appcontext
def check_command(
    exchange_id: str | None, product_id: str | None, send_test_event: bool, as_json: bool
) -> None:
    """Check the configured Klevu account: visitor service, segments, each recs config,
    search, template, CSS and the collector. Exit status 0 only when every check passes."""
    pages: dict[str, queries.PageContext] = {}
    for page_type in PAGE_TYPES:
        page = klevu.sample_page(page_type, product_id)
        if page is None:
            raise click.BadParameter(
                f"the shop has no product {product_id!r}", param_hint="--product-id"
            )
        pages[page_type] = page
    checker = Checker(
        klevu_client(),
        banner_services().engine,
        pages.__getitem__,
        exchange_id=exchange_id,
        send_test_event=send_test_event,
    )
    results = [_masked(r, checker.settings.api_key) for r in checker.run()]
    if as_json:
        click.echo(
            json.dumps(
                {"ok": all(r.ok for r in results), "checks": [asdict(r) for r in results]},
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        _print(results, click.echo)
    click.get_current_context().exit(0 if all(r.ok for r in results) else 1)
