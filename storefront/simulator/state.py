"""The simulator's per-app data: fixed demo data, and in-memory state a reset starts afresh.

State is one object swapped whole on reset, so a request in flight finishes against the state
it started with, and nothing needs a global lock; each part locks its own data. A scenario
pack (``scenarios.py``) is applied the same way: a fresh state built with the pack's faults,
ttls and banners, so a reset ends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from flask import Flask, current_app

from .faults import Faults
from .journal import Journal
from .records import Indexed
from .recs_configs import RecsConfig
from .sessions import SessionStore

if TYPE_CHECKING:
    from .recorded import Recorded
    from .scenarios import Pack

EXTENSION = "klevu_simulator"


@dataclass(frozen=True)
class Ttls:
    segment_ttl: int
    session_ttl: int


@dataclass(frozen=True)
class DemoData:
    api_key: str
    shop_url: str
    index: tuple[Indexed, ...]
    recs: Mapping[str, RecsConfig]


class SimulatorState:
    def __init__(self, config: Mapping, scenario: Pack | None = None):
        self.sessions = SessionStore()
        self.journal = Journal(config["SIMULATOR_JOURNAL_SIZE"])
        self.faults = Faults()
        self.ttls = Ttls(
            segment_ttl=config["SIMULATOR_SEGMENT_TTL"], session_ttl=config["SIMULATOR_SESSION_TTL"]
        )
        self.scenario = scenario
        # The banners the config CDN serves: the demo's, unless the scenario brings its own.
        self.recs: Mapping[str, RecsConfig] | None = None
        if scenario is not None:
            for service, plan in scenario.faults.items():
                self.faults.plan(service, plan)
            self.ttls = replace(self.ttls, **scenario.settings)
            self.recs = scenario.recs


def install(
    app: Flask,
    data: DemoData,
    packs: Mapping[str, Pack] | None = None,
    scenario: Pack | None = None,
) -> None:
    app.extensions[EXTENSION] = {
        "data": data,
        "packs": packs or {},
        "state": SimulatorState(app.config, scenario),
    }


def reset(scenario: Pack | None = None) -> None:
    """Start afresh: nothing received, no faults; with ``scenario``, in that pack's situation."""
    current_app.extensions[EXTENSION]["state"] = SimulatorState(current_app.config, scenario)


def demo() -> DemoData:
    return current_app.extensions[EXTENSION]["data"]


def state() -> SimulatorState:
    return current_app.extensions[EXTENSION]["state"]


def packs() -> Mapping[str, Pack]:
    """The scenario packs this simulator offers, by name."""
    return current_app.extensions[EXTENSION]["packs"]


def recs() -> Mapping[str, RecsConfig]:
    """The banners of the account as the config CDN serves them right now."""
    return state().recs or demo().recs


def recorded() -> Recorded | None:
    """A live account's recorded answers, when the scenario pack on brings them."""
    scenario = state().scenario
    return scenario.recorded if scenario else None
