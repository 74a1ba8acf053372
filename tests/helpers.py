"""Small helpers for tests: Klaviyo cookies for the demo personas, polling."""
from __future__ import annotations

import json
import time
from pathlib import Path

PERSONAS = {p["key"]: p for p in json.loads(
    (Path(__file__).parent.parent / "storefront/data/personas.json").read_text())["personas"]}
COMPANY_ID = "DemoCo"


def exchange_id(persona_key: str) -> str:
    return f"{PERSONAS[persona_key]['identifier']}.{COMPANY_ID}"


def eventually(check, seconds: float = 10.0, interval: float = 0.1):
    """Poll ``check`` until it returns something truthy (the relay delivers asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


class FakeClock:
    """Wall-clock stand-in for code that takes a ``clock`` callable: time moves when told."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
