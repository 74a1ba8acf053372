"""A live Klevu account's answers, recorded into a scenario pack (``flask klevu record``).

A sales engineer rehearses with a prospect's real banners without depending on the venue's
network: the pack holds the account's public api key and recs keys per page type
(``account``), each placement's config answer for each demo persona's segments, and the search
answers that went with them (``recorded``). The simulator then answers with them:

- the config CDN gives the answer recorded for the recs key and the visitor's ``sids`` (the
  segments in any order; a visitor whose segments were not recorded gets the anonymous one);
- search gives, for each record query, the recorded answer whose request had the same
  ``typeOfRequest`` and the most settings in common (a live page edits the query for its own
  context: cart, product, recently viewed), under the id the shop asked for.

Nothing secret is in a pack: Klevu's api key is public (every storefront page carries it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .recs_configs import PAGE_TYPES, RecsConfig, Variant

ANONYMOUS = ""  # the sids of a visitor in no segment


class BadRecording(ValueError):
    """A recorded pack that does not hold what serving it needs."""


def sids_key(segments: Iterable[str]) -> str:
    return ",".join(sorted(s for s in segments if s))


@dataclass(frozen=True)
class Recorded:
    api_key: str
    recs: Mapping[str, str]  # page type → comma-separated recs keys, as KLEVU_RECS_* take them
    configs: Mapping[str, Mapping[str, dict]]  # recs key → sids key → config answer
    searches: tuple[dict, ...]  # {"request": record query, "answer": queryResults entry}

    def config(self, recs_key: str, sids: Iterable[str]) -> dict | None:
        answers = self.configs.get(recs_key)
        if not answers:
            return None
        return answers.get(sids_key(sids)) or answers.get(ANONYMOUS)

    def search(self, record_query: dict) -> dict | None:
        wanted = record_query.get("settings") or {}
        candidates = [
            s
            for s in self.searches
            if s["request"].get("typeOfRequest") == record_query.get("typeOfRequest")
        ]
        if not candidates:
            return None

        def shared(search: dict) -> int:
            settings = search["request"].get("settings") or {}
            return sum(settings.get(key) == value for key, value in wanted.items())

        best = max(candidates, key=shared)
        return {**best["answer"], "id": record_query.get("id")}

    def shop_settings(self) -> dict[str, str]:
        """The shop's settings for this account (api key, recs keys per page type)."""
        return {
            "KLEVU_API_KEY": self.api_key,
            **{f"KLEVU_RECS_{page_type}": keys for page_type, keys in self.recs.items()},
        }

    def banners(self) -> dict[str, RecsConfig]:
        """The recorded banners as the event check (``validator.py``) reads an account."""
        return {key: _banner(key, answers) for key, answers in self.configs.items()}


def _variant(metadata: Mapping) -> Variant:
    return Variant(
        segment=metadata.get("segmentKey"),
        title=str(metadata.get("title") or ""),
        logic=str(metadata.get("logic") or ""),
        look="",
        max_products=int(metadata.get("maxProducts") or 0),
        product_threshold=int(metadata.get("productThreshold") or 0),
        action=metadata.get("action"),
    )


def _banner(recs_key: str, answers: Mapping[str, dict]) -> RecsConfig:
    first = answers.get(ANONYMOUS) or next(iter(answers.values()))
    metadata = first["metadata"]
    variants = {
        a["metadata"]["segmentKey"]: _variant(a["metadata"])
        for a in answers.values()
        if a["metadata"].get("segmentKey")
    }
    return RecsConfig(
        recs_key=recs_key,
        page_type=str(metadata.get("pageType")),
        spot_key=str(metadata.get("spotKey") or ""),
        spot_name=str(metadata.get("spotName") or ""),
        default=_variant(metadata),
        segment_variants=tuple(variants.values()),
        enabled=metadata.get("enabled"),
    )


def parse_recorded(account: object, recorded: object) -> Recorded:
    if (
        not isinstance(account, dict)
        or not isinstance(account.get("api_key"), str)
        or not isinstance(account.get("recs"), dict)
        or not set(account["recs"]) <= set(PAGE_TYPES)
        or not all(isinstance(v, str) for v in account["recs"].values())
    ):
        raise BadRecording('account is {"api_key": "...", "recs": {"<PAGE TYPE>": "k1,k2"}}')
    if not isinstance(recorded, dict):
        raise BadRecording('recorded is {"configs": {...}, "searches": [...]}')
    configs, searches = recorded.get("configs"), recorded.get("searches", [])
    if not isinstance(configs, dict) or not all(
        isinstance(answers, dict)
        and answers
        and all(
            isinstance(a, dict) and isinstance(a.get("metadata"), dict) for a in answers.values()
        )
        for answers in configs.values()
    ):
        raise BadRecording("recorded.configs is {recs key: {sids: config answer with metadata}}")
    if not isinstance(searches, list) or not all(
        isinstance(s, dict)
        and isinstance(s.get("request"), dict)
        and isinstance(s.get("answer"), dict)
        for s in searches
    ):
        raise BadRecording("recorded.searches is a list of {request, answer}")
    return Recorded(account["api_key"], account["recs"], configs, tuple(searches))
