"""A pytest plugin for QA suites outside this repository: ``pip install`` registers it
(the ``pytest11`` entry point ``klevu_storefront``).

Fixtures:

- ``storefront`` (once per session): the shop and the Klevu simulator, started as ``make run``
  starts them (``python -m storefront``) on free loopback ports, stopped at the end; ``.url``,
  ``.simulator_url``. The shop asks Klevu afresh on every page (its answers cache is off), so
  what a test sets in the simulator shows on the next page.
- ``klevu_events``: what the simulator's collector received during this test (the simulator
  starts the test afresh); ``.wait_for(event=..., count=..., **event_data)``.
- ``scenario``: ``scenario("visitor-down")`` applies a scenario pack for this test.
- ``persona``: ``persona(target, "maya")`` gives a Playwright browser context or a requests
  session a demo persona's cookies (consent, Klaviyo's ``__kla_id``); ``"anonymous"``: consent
  only.

docs/testing.md has a complete example.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import pytest

from .identity import CONSENT_COOKIE, GRANTED, load_personas
from .klaviyo import KLA_ID_COOKIE, encode_kla_id, new_cid, persona_exchange_id
from .simulator.account import COMPANY_ID

START_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, body: object = None) -> Any:
    """GET (or with ``body``, POST as JSON) a loopback URL; the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urlopen(request, timeout=10) as answer:  # noqa: S310 (our own loopback servers)
        return json.loads(answer.read() or b"null")


@dataclass
class Storefront:
    """The running shop and simulator."""

    url: str
    simulator_url: str
    log: Path

    def reset(self) -> None:
        """The simulator forgets what it received, its faults and any scenario pack."""
        _call(f"{self.simulator_url}/_sim/reset", {})

    def scenario(self, name: str | None) -> dict | None:
        return _call(f"{self.simulator_url}/_sim/scenario", {"name": name})["active"]

    def events(self) -> list[dict]:
        """Every event the collector accepted, as ``/_sim/events`` lists them."""
        return _call(f"{self.simulator_url}/_sim/events")["events"]


def _wait_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _call(url)
            return
        except (URLError, HTTPError, OSError, ValueError):
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"the storefront did not come up at {url}:\n{tail}", pytrace=False)


def launch(data: Path, *args: str, env: Mapping[str, str]) -> tuple[Storefront, subprocess.Popen]:
    """``python -m storefront`` (what ``make run`` runs) on free ports, with ``args``; waits
    until the shop and the simulator answer. Stop it with ``stop``."""
    port, simulator_port = _free_port(), _free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data / "storefront.log"
    with open(log, "wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
            [
                sys.executable,
                "-m",
                "storefront",
                "--port",
                str(port),
                "--simulator-port",
                str(simulator_port),
                *args,
            ],
            env={**env, "STOREFRONT_DATA_DIR": str(data)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: the launcher, simulator and shop
        )
    shop = Storefront(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{simulator_port}", log)
    try:
        _wait_up(f"{shop.simulator_url}/healthz", process, log)
        _wait_up(f"{shop.url}/healthz", process, log)
    except BaseException:
        stop(process)
        raise
    return shop, process


def stop(process: subprocess.Popen) -> None:
    """Stop the launcher and both servers: their process group, not the launcher alone
    (a shell that started the suite in the background leaves Ctrl-C ignored in it)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def offline_environment() -> dict[str, str]:
    """This process's environment without Klevu settings: the simulator, whatever the
    calling shell points at."""
    return {name: value for name, value in os.environ.items() if not name.startswith("KLEVU_")}


@pytest.fixture(scope="session")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    # Every page asks the simulator afresh (a scenario shows at once), and waits for it up to
    # 5 s rather than the shoppers' 800 ms: on a busy CI machine a first page (V8 loading,
    # two calls per banner) can take longer, and a test wants the banner, not the cut-off.
    env = {
        "KLEVU_PAGE_BUDGET_MS": "5000",
        **offline_environment(),
        "KLEVU_CONFIG_TTL": "0",
        "KLEVU_SEARCH_TTL": "0",
    }
    shop, process = launch(tmp_path_factory.mktemp("klevu-storefront"), env=env)
    try:
        # A process's first banner page starts its template engine and may miss the page's
        # Klevu budget: that page is served here, not in the first test.
        with urlopen(f"{shop.url}/", timeout=30):  # noqa: S310 (our own loopback server)
            pass
        shop.reset()
        yield shop
    finally:
        stop(process)


class KlevuEvents:
    """Analytics events as Klevu's collector (the simulator) received them, in Klevu's JSON."""

    def __init__(self, shop: Storefront):
        self._shop = shop

    def all(self, event: str | None = None, **event_data: Any) -> list[dict]:
        """Received events named ``event`` (any, if None) whose ``event_data`` has these
        values (``list_id="spot-home-picks"``); duplicate deliveries left out."""
        found = []
        for received in self._shop.events():
            payload = received["payload"]
            data = payload.get("event_data") or {}
            if received["duplicate"] or (event and payload.get("event") != event):
                continue
            if all(data.get(key) == value for key, value in event_data.items()):
                found.append(payload)
        return found

    def wait_for(
        self, event: str | None = None, count: int = 1, timeout: float = 20.0, **event_data: Any
    ) -> list[dict]:
        """Wait until at least ``count`` such events arrived (the shop's outbox delivers them
        in the background); fail the test with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.all(event, **event_data)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [_said(e["payload"]) for e in self._shop.events()]
                wanted = " ".join(
                    [event or "any event", *(f"{k}={v!r}" for k, v in event_data.items())]
                )
                pytest.fail(
                    f"expected {count} x {wanted} at Klevu's collector within {timeout:g} s, "
                    f"got {len(found)}; it received: {seen or 'nothing'}",
                    pytrace=False,
                )
            time.sleep(0.1)


def _said(payload: dict) -> str:
    """An event in a few words, for a failure message."""
    return f"{payload.get('event')} list_id={(payload.get('event_data') or {}).get('list_id')}"


@pytest.fixture
def klevu_events(storefront: Storefront) -> KlevuEvents:
    storefront.reset()
    return KlevuEvents(storefront)


@pytest.fixture
def scenario(storefront: Storefront) -> Iterator[Callable[[str], dict]]:
    def apply(name: str) -> dict:
        try:
            pack = storefront.scenario(name)
        except HTTPError as exc:
            pytest.fail(json.loads(exc.read() or b"{}").get("error", str(exc)), pytrace=False)
        assert pack is not None
        return pack

    yield apply
    storefront.reset()


def persona_cookies(persona_key: str) -> dict[str, str]:
    """A visitor who accepted consent; for a persona, with Klaviyo's cookie for its profile."""
    cookies = {CONSENT_COOKIE: GRANTED}
    if persona_key == "anonymous":
        return cookies
    persona = next((p for p in load_personas()["personas"] if p["key"] == persona_key), None)
    if persona is None:
        known = ", ".join(["anonymous", *(p["key"] for p in load_personas()["personas"])])
        pytest.fail(f"no demo persona {persona_key!r}; personas are {known}", pytrace=False)
    exchange_id = persona_exchange_id(persona["identifier"], COMPANY_ID)
    cookies[KLA_ID_COOKIE] = encode_kla_id(exchange_id, new_cid())
    return cookies


@pytest.fixture
def persona(storefront: Storefront) -> Callable[[Any, str], Any]:
    def become(target: Any, persona_key: str) -> Any:
        cookies = persona_cookies(persona_key)
        if hasattr(target, "add_cookies"):  # a Playwright BrowserContext
            target.add_cookies(
                [{"name": k, "value": v, "url": storefront.url} for k, v in cookies.items()]
            )
        elif hasattr(target, "cookies"):  # a requests.Session
            for name, value in cookies.items():
                target.cookies.set(name, value)
        else:
            raise TypeError("persona() takes a Playwright BrowserContext or a requests.Session")
        return target

    return become
