"""Scenario packs: named demo situations, each a small JSON file in ``scenario_packs/``.

A demo or a test asks for "the visitor service is down" rather than turning knobs; a pack
names the situation, says what the audience should see (``title``, ``description``) and sets
the simulator up for it:

- ``faults``: fault plans per service, as ``POST /_sim/faults`` takes them;
- ``settings``: the visitor service's ttls, as ``POST /_sim/settings`` takes them;
- ``recs``: edits to the banners of ``recs_configs.json``, per recs key: the fields given
  replace the banner's, and the ``segments`` given come first, each replacing the banner's
  variant for the same segment (the others stay, after them);
- ``account`` and ``recorded``: a live account's answers, served instead of the demo's
  (``recorded.py``; written by ``flask klevu record``).

Packs are checked when loaded (a bad one stops the simulator's start with the file's name and
the reason) and applied on a fresh state (``state.reset``), so they never stack and a reset
ends one. Besides the packs shipped here, the simulator's command line can name a pack file
anywhere (``--scenario PATH``), which the console then lists too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .faults import SERVICES, BadFaultPlan, FaultPlan
from .recorded import BadRecording, Recorded, parse_recorded
from .recs_configs import BadRecsConfig, RecsConfig, demo_configs_raw, parse_configs

PACKS = resources.files(__package__).joinpath("scenario_packs")
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
FIELDS = {"title", "description", "faults", "settings", "recs", "account", "recorded"}
SETTINGS = ("segment_ttl", "session_ttl")


class BadPack(ValueError):
    """A pack file that cannot be applied; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    description: str
    faults: Mapping[str, FaultPlan]
    settings: Mapping[str, int]
    recs: Mapping[str, RecsConfig] | None  # None: the demo's banners as they are
    recorded: Recorded | None = None  # a live account's answers, served instead of the demo's

    def describe(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description}


def _edited_recs(edits: object) -> dict[str, RecsConfig]:
    if not isinstance(edits, dict) or not all(isinstance(e, dict) for e in edits.values()):
        raise BadPack("recs is an object of {recs key: {fields to replace}}")
    raw = demo_configs_raw()
    for key, edit in edits.items():
        banner = copy.deepcopy(raw.get(key, {}))
        variants = edit.get("segments", [])
        if not isinstance(variants, list) or not all(
            isinstance(v, dict) and isinstance(v.get("segment"), str) for v in variants
        ):
            raise BadPack(f"recs.{key}.segments is a list of variants, each with a segment")
        replaced = {v["segment"] for v in variants}
        kept = [v for v in banner.get("segments", []) if v.get("segment") not in replaced]
        raw[key] = {**banner, **edit, "segments": [*variants, *kept]}
    try:
        return parse_configs(raw)
    except KeyError as exc:
        raise BadPack(f"recs: a banner or one of its variants lacks {exc.args[0]!r}") from exc
    except (BadRecsConfig, TypeError) as exc:
        raise BadPack(f"recs: {exc}") from exc


def parse_pack(name: str, body: object) -> Pack:
    """A pack from its file's JSON; ``BadPack`` says what is wrong."""
    if not isinstance(body, dict) or set(body) - FIELDS:
        raise BadPack(f"a pack is an object with keys among {sorted(FIELDS)}")
    title, description = body.get("title"), body.get("description")
    if not isinstance(title, str) or not title or not isinstance(description, str):
        raise BadPack("a pack needs a title and a description (strings)")
    faults = body.get("faults", {})
    if not isinstance(faults, dict) or set(faults) - set(SERVICES):
        raise BadPack(f"faults is an object keyed by services {SERVICES}")
    try:
        plans = {service: FaultPlan.from_json(plan) for service, plan in faults.items()}
    except (BadFaultPlan, TypeError) as exc:
        raise BadPack(f"faults: {exc}") from exc
    settings = body.get("settings", {})
    if (
        not isinstance(settings, dict)
        or set(settings) - set(SETTINGS)
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in settings.values()
        )
    ):
        raise BadPack(f"settings are whole seconds >= 0 for {SETTINGS}")
    recs = _edited_recs(body["recs"]) if "recs" in body else None
    recorded = None
    if "account" in body or "recorded" in body:
        try:
            recorded = parse_recorded(body.get("account"), body.get("recorded"))
        except BadRecording as exc:
            raise BadPack(str(exc)) from exc
        recs = recorded.banners()
    return Pack(name, title, description, plans, settings, recs, recorded)


def load_file(path: Path) -> Pack:
    try:
        return parse_pack(path.stem, json.loads(path.read_text("utf-8")))
    except (OSError, ValueError) as exc:  # BadPack and JSON errors are ValueErrors
        raise BadPack(f"scenario pack {path}: {exc}") from exc


def builtin_names() -> list[str]:
    return sorted(p.name[: -len(".json")] for p in PACKS.iterdir() if p.name.endswith(".json"))


def builtin(name: str) -> Pack:
    if not NAME.fullmatch(name) or name not in builtin_names():
        raise BadPack(f"no scenario pack {name!r}; packs are {', '.join(builtin_names())}")
    return load_file(Path(str(PACKS.joinpath(f"{name}.json"))))


def load(name_or_path: str) -> Pack:
    """A shipped pack by name, else a pack file by path (the command line's ``--scenario``)."""
    if NAME.fullmatch(name_or_path):
        return builtin(name_or_path)
    return load_file(Path(name_or_path))


def catalogue(extra: Iterable[Pack] = ()) -> dict[str, Pack]:
    """Every pack the console offers: the shipped ones, then those named at start-up."""
    packs = {name: builtin(name) for name in builtin_names()}
    packs.update({pack.name: pack for pack in extra})
    return packs
