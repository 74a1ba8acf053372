"""The simulator's per-app data: fixed demo data, and in-memory state a reset starts afresh.

State is one object swapped whole on reset, so a request in flight finishes against the state
it started with, and nothing needs a global lock; each part locks its own data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask, current_app

from .faults import Faults
from .journal import Journal
from .records import Indexed
from .recs_configs import RecsConfig
from .sessions import SessionStore

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
    def __init__(self, config: Mapping):
        self.sessions = SessionStore()
        self.journal = Journal(config["SIMULATOR_JOURNAL_SIZE"])
        self.faults = Faults()
        self.ttls = Ttls(
            segment_ttl=config["SIMULATOR_SEGMENT_TTL"], session_ttl=config["SIMULATOR_SESSION_TTL"]
        )


def install(app: Flask, data: DemoData) -> None:
    app.extensions[EXTENSION] = {"data": data, "state": SimulatorState(app.config)}


def reset() -> None:
    current_app.extensions[EXTENSION]["state"] = SimulatorState(current_app.config)


def demo() -> DemoData:
    return current_app.extensions[EXTENSION]["data"]


def state() -> SimulatorState:
    return current_app.extensions[EXTENSION]["state"]
