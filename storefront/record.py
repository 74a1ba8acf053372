"""``flask --app storefront klevu record --out PACK``: a live account, rehearsed offline.

Asks the configured Klevu account (its keys and URLs, as the shop has them) for every
placement's config, once for an anonymous visitor and once per demo persona's segments, and
for the search each config asks for on the shop's sample page of its type (the pages
``flask klevu check`` tries), and writes it all as a scenario pack
(``storefront/simulator/recorded.py``). ``make run PACK=<file>`` then serves the same banners
from the simulator, with no network; ``flask klevu check`` runs against it too.

The pack holds the account's public api key and recs keys, never anything else of the
environment. A call that fails stops the recording with its reason: a half pack would show
half the banners on stage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
from flask.cli import with_appcontext

from .identity import load_personas
from .klevu import klevu, klevu_client
from .klevu.banners import queries, rules
from .klevu.banners.placement import config_params
from .klevu.check import TIMEOUT, klevu_cli
from .klevu.client import KlevuClient, KlevuError
from .simulator.recorded import sids_key


def segment_sets() -> dict[str, tuple[str, ...]]:
    """The segments to record configs for: none (anonymous), then each persona's."""
    sets: dict[str, tuple[str, ...]] = {"": ()}
    for persona in load_personas()["personas"]:
        sets.setdefault(sids_key(persona["segments"]), tuple(persona["segments"]))
    return sets


def record_account(client: KlevuClient) -> dict:
    """The ``account`` and ``recorded`` parts of a pack: every config and search answer."""
    settings = client.settings
    configs: dict[str, dict[str, dict]] = {}
    searches: dict[str, dict] = {}
    for page_type, recs_keys in settings.recs.items():
        page = klevu.sample_page(page_type)
        if page is None:
            raise click.ClickException(f"the shop has no sample page for {page_type}")
        for recs_key in recs_keys:
            for key, segments in segment_sets().items():
                params = config_params(page, segments)
                config = client.recs_config(recs_key, params, timeout=TIMEOUT).body
                configs.setdefault(recs_key, {})[key] = config
                if rules.banner_verdict(config).show is not rules.Show.PRODUCTS:
                    continue
                search = config.get("search") if isinstance(config.get("search"), dict) else {}
                assert isinstance(search, dict)
                body = queries.build_search(
                    str(search.get("payload") or ""), config["metadata"], page, settings.api_key
                )
                if body is None:
                    continue
                url = client.search_url(str(search.get("basePath") or ""))
                answer = client.search(url, client.search_body(body), timeout=TIMEOUT).body
                results = {r.get("id"): r for r in answer["queryResults"] if isinstance(r, dict)}
                for query in body["recordQueries"]:
                    if query.get("id") in results:
                        entry = {"request": query, "answer": results[query["id"]]}
                        searches[json.dumps(query, sort_keys=True)] = entry
    return {
        "account": {
            "api_key": settings.api_key,
            "recs": {page_type: ",".join(keys) for page_type, keys in settings.recs.items()},
        },
        "recorded": {"configs": configs, "searches": list(searches.values())},
    }


@klevu_cli.command("record")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="pack file"
)
@click.option("--title", default="", help="what the console calls the pack")
@with_appcontext
def record_command(out: Path, title: str) -> None:
    """Record the configured Klevu account into a scenario pack, for `make run PACK=...`."""
    client = klevu_client()
    try:
        recorded = record_account(client)
    except (KlevuError, queries.QueryError) as exc:
        raise click.ClickException(f"recording stopped, nothing written: {exc}") from exc
    configs = recorded["recorded"]["configs"]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    pack = {
        "title": title or f"Recorded account {client.settings.api_key}",
        "description": (
            f"Klevu's answers recorded from the account {client.settings.api_key} on {when}: "
            f"{len(configs)} banners for {len(segment_sets())} sets of segments (anonymous and "
            f"each demo persona), {len(recorded['recorded']['searches'])} searches. Served by "
            "the simulator, so the account's banners show without a network."
        ),
        **recorded,
    }
    out.write_text(json.dumps(pack, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}: {pack['description']}")
