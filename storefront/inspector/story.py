"""The story of one page view, told from its trace: pure functions, no Flask, no I/O.

Each banner's facts come from the notes its own calls left (``storefront/klevu/trace.py``);
why a banner is missing is read from the same facts the code decided on (the config's
``enabled``/``action``, the record count against ``productThreshold``, a late or failed call),
so the inspector cannot tell a different story from the one the page lived. The api key is
masked in everything shown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..klevu.client import mask_api_key as mask
from ..klevu.trace import Note

# What a banner's answer was, in the words of the panel. Sources other code may report
# (an answers cache, a circuit breaker) read the same way.
SOURCES = {
    "fresh": "fresh from Klevu",
    "cache": "from the shop's cache",
    "stale": "stale copy (Klevu failing)",
    "failed": "failed",
    "late": "missed the page deadline",
    "breaker-open": "circuit breaker open",
}

# Where step 1's answer came from (``segments.Resolution.source``).
SEGMENT_SOURCES = {
    "cookie": "the visitor's signed cookie",
    "cache": "the shop's cache",
    "klevu": "asked Klevu now",
    "stale": "stale copy (Klevu failing)",
    "none": "none",
}


def shorten(value: str | None, keep: int = 8) -> str | None:
    return None if not value else value if len(value) <= keep else value[:keep] + "…"


@dataclass(frozen=True)
class IdentityStep:
    consent: str  # granted / denied / pending / assumed
    kla_id: str  # "read", "not read: …", "absent"
    exchange: str | None  # shortened, as Klevu's journal shows it
    source: str | None  # where the exchange id came from
    persona: str | None


@dataclass(frozen=True)
class SegmentsStep:
    session: str | None
    segments: tuple[tuple[str, str], ...]  # (key, name)
    source: str  # a key of SEGMENT_SOURCES
    seconds_left: int
    at_ms: float | None

    @property
    def source_text(self) -> str:
        return SEGMENT_SOURCES.get(self.source, self.source)


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    status: int | None
    ms: float | None
    error: str | None


@dataclass(frozen=True)
class BannerStory:
    recs_key: str
    config: Call | None
    source: str  # a key of SOURCES
    segment_key: str | None = None
    segment_name: str | None = None
    title: str | None = None
    logic: str | None = None
    action: str | None = None
    search: Call | None = None
    search_body: str | None = None  # pretty JSON, api key masked
    records: int | None = None
    threshold: int | None = None
    shown: bool = False
    fallback: bool = False
    reason: str | None = None  # why it is hidden, or why the fallback
    at_ms: float | None = None

    @property
    def source_text(self) -> str:
        return SOURCES.get(self.source, self.source)


@dataclass(frozen=True)
class Story:
    page_view: str
    api_key: str  # masked
    identity: IdentityStep
    segments: SegmentsStep
    banners: tuple[BannerStory, ...] = field(default_factory=tuple)


def identity_step(identity: Any, *, cookie_present: bool, source: str | None) -> IdentityStep:
    """``identity`` is ``storefront.identity.Identity``; ``source`` what the visitor's record
    says identified them (an email link, the persona switcher), if it was this exchange id."""
    if not cookie_present:
        kla_id = "absent"
    elif identity.tracking_off:
        kla_id = "not read: Klaviyo tracking is off (__kla_off)"
    elif not identity.consent_given:
        kla_id = "not read: no consent"
    else:
        kla_id = "read"
    exchange = identity.exchange_id
    return IdentityStep(
        consent=identity.consent_state,
        kla_id=kla_id,
        exchange=exchange[:6] + "…" if exchange else None,
        source=(source or "Klaviyo cookie __kla_id") if exchange else None,
        persona=identity.persona["name"] if identity.persona else None,
    )


def segments_step(notes: Sequence[Note], names: Mapping[str, str]) -> SegmentsStep:
    last = next((n for n in reversed(notes) if n.step == "segments"), None)
    if last is None:
        return SegmentsStep(None, (), "none", 0, None)
    resolved = last.facts["resolution"]
    return SegmentsStep(
        shorten(resolved.session_id),
        tuple((s, names.get(s, s)) for s in resolved.segments),
        resolved.source,
        resolved.seconds_left,
        last.at_ms,
    )


def _call(note: Note | None, api_key: str) -> Call | None:
    if note is None:
        return None
    f = note.facts
    return Call(f["method"], mask(f["url"], api_key), f.get("status"), f.get("ms"), f.get("error"))


def banner_story(recs_key: str, notes: Sequence[Note], api_key: str) -> BannerStory:
    """One placement's story from the notes tagged with its recs key."""
    own = [n for n in notes if n.facts.get("banner") == recs_key]

    def first(step: str, **match: Any) -> Note | None:
        return next(
            (
                n
                for n in own
                if n.step == step and all(n.facts.get(k) == v for k, v in match.items())
            ),
            None,
        )

    http = [n for n in own if n.step == "http"]
    config_call = next((n for n in http if "/settings/" in n.facts["url"]), None)
    search_call = next((n for n in http if n.facts["method"] == "POST"), None)
    config, search, outcome = first("config"), first("search"), first("outcome")
    template = first("template")
    meta: Mapping = config.facts["metadata"] if config else {}
    result = outcome.facts["result"] if outcome else None
    source = (
        result
        if result in ("failed", "late", "breaker-open")
        else config.facts.get("source", "fresh")
        if config
        else "failed"
    )
    story = BannerStory(
        recs_key=recs_key,
        config=_call(config_call, api_key),
        source=source,
        segment_key=meta.get("segmentKey"),
        segment_name=meta.get("segmentName"),
        title=meta.get("title"),
        logic=meta.get("logic"),
        action=meta.get("action"),
        search=_call(search_call, api_key),
        search_body=(mask(json.dumps(search.facts["body"], indent=2), api_key) if search else None),
        records=search.facts["records"] if search else None,
        threshold=search.facts["threshold"] if search else None,
        shown=result == "shown",
        fallback=result == "shown" and template is not None,
        at_ms=outcome.at_ms if outcome else None,
    )
    hidden = config.facts.get("hidden") if config else None
    return _with_reason(story, hidden, result, outcome, template, api_key)


def _with_reason(
    story: BannerStory,
    config_hidden: str | None,
    result: str | None,
    outcome: Note | None,
    template: Note | None,
    api_key: str,
) -> BannerStory:
    if story.fallback and template is not None:
        reason = f"template failed ({template.facts['error']}): the shop's fallback banner"
    elif story.shown:
        reason = None
    elif story.source == "late":
        reason = "page deadline: Klevu did not answer in time, the page went on without it"
    elif story.source == "breaker-open":
        reason = "circuit breaker open: Klevu failed repeatedly, not asked for a while"
    elif result == "unbuildable" and outcome is not None:
        reason = f"this page cannot build the banner's query: {outcome.facts['error']}"
    elif story.source == "failed":
        error = outcome.facts.get("error") if outcome else None
        reason = f"Klevu call failed: {mask(error or 'unknown error', api_key)}"
    elif config_hidden:
        reason = f"the config's rules: {config_hidden}"
    elif story.records is None:
        reason = "no search: this logic needs something the page lacks (e.g. nothing viewed yet)"
    elif story.threshold is not None and story.records < story.threshold:
        reason = (
            f"threshold: {story.records} records, fewer than productThreshold {story.threshold}"
        )
    else:
        reason = "no products to show"
    return replace(story, reason=reason)


def build_story(
    *,
    page_view: str,
    notes: Sequence[Note],
    recs_keys: Sequence[str],
    api_key: str,
    identity: IdentityStep,
    segment_names: Mapping[str, str],
) -> Story:
    return Story(
        page_view=page_view,
        api_key=mask(api_key, api_key),
        identity=identity,
        segments=segments_step(notes, segment_names),
        banners=tuple(banner_story(key, notes, api_key) for key in recs_keys),
    )
