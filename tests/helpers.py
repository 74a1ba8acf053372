"""Helpers for tests and benchmarks: real processes, personas, and one way to wait.

Fixtures live in ``conftest.py``; everything a test module or a bench script imports lives
here, so nothing imports a ``conftest``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import requests
from werkzeug.serving import make_server

from storefront.catalog import Product
from storefront.config import from_env
from storefront.klaviyo import encode_kla_id, new_cid
from storefront.klevu.analytics import tokens
from storefront.klevu.analytics.events import BannerItem, BannerView
from storefront.simulator import account
from storefront.simulator.account import shop_environment

T = TypeVar("T")

PERSONAS = {
    p["key"]: p
    for p in json.loads(
        (Path(__file__).parent.parent / "storefront/data/personas.json").read_text()
    )["personas"]
}


# The settings `make run` gives a shop for a simulator (here one that is not listening).
DEMO_ENV = shop_environment("http://127.0.0.1:1")


def exchange_id(persona_key: str) -> str:
    """The Klaviyo exchange id of a demo persona (what its ``__kla_id`` cookie carries)."""
    return f"{PERSONAS[persona_key]['identifier']}.{account.COMPANY_ID}"


def persona_segments(persona_key: str | None) -> list[str]:
    """The Klevu segments a persona belongs to (personas.json); none for an anonymous visitor."""
    return list(PERSONAS[persona_key]["segments"]) if persona_key else []


def wait_until(
    check: Callable[[], T], seconds: float = 10.0, message: str = "", interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    Work that happens asynchronously (the relay delivering, a refresh in the background) is
    waited for with this one function; running out of time fails the test with ``message``
    rather than handing an empty result to the asserts that follow.
    """
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message or f"still false after {seconds} s: {check!r}")
        time.sleep(interval)


def run_together(n: int, work: Callable[[], Any]) -> list[Any]:
    """``work()`` in ``n`` threads released at the same moment; their results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


# Attacks on the banner engine's sandbox: each must end within the render limits and leave the
# engine usable (tests/unit/test_render.py); bench/bench_render.py times them per engine.
SANDBOX_PROBES = {
    "endless loop": "while (true) {}",
    "endless loop inside try/catch": "for (;;) { try { while (true) {} } catch (e) {} }",
    "regex backtracking": "/(a+)+$/.test('a'.repeat(40) + 'b')",
    "256 MiB string": "'x'.repeat(Math.pow(2, 28)).length",
    "256 MiB string, doubled and read": (
        "var s = 'x'; for (var i = 0; i < 28; i++) s += s; return s.indexOf('y')"
    ),
    "growing object graph": "var a = []; for (;;) a = [a, {text: 'y' + a.length}]",
    "deep recursion": "(function f() { return f() + 1; })()",
    "sparse array join": "Array(Math.pow(2, 32) - 1).join('')",
    "array-like scan": "[].indexOf.call({length: Math.pow(2, 53)}, 1)",
}


def sandbox_probe_template(code: str) -> str:
    """A template running ``code`` in a function, printing what it returns."""
    return "<%= (function () { " + code + " })() %>"


class FakeClock:
    """Wall-clock stand-in for code that takes a ``clock`` callable: time moves when told."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def sample_banner(products: Iterable[Product], *extra: BannerItem) -> BannerView:
    """The simulator's home-page banner showing these catalogue products (then ``extra``), as
    the shop renders it: what a test's beacon posts and click links name."""
    return BannerView(
        api_key=account.API_KEY,
        recs_key="k-home-picks",
        page_type="HOME",
        title="Picks",
        logic="TRENDING",
        items=(*(BannerItem(p.id, p.name, p.sale_price, p.currency) for p in products), *extra),
    )


def banner_tokens(secret_key: str, page_view: str, banner: BannerView) -> tuple[str, str]:
    """``(beacon token, click link token)`` of ``banner`` in ``page_view``, as a page makes them."""
    return tokens.issue_tokens(secret_key, page_view, tokens.seal(banner))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 20.0) -> None:
    """Wait until ``url`` answers 200 (a server process coming up)."""

    def up() -> bool:
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, seconds, f"{url} did not come up")


class Simulator:
    """A running simulator process and its control endpoints (``/_sim/...``)."""

    def __init__(self, url: str, process: subprocess.Popen):
        self.url = url
        self.process = process

    def reset(self) -> None:
        requests.post(f"{self.url}/_sim/reset", timeout=5).raise_for_status()

    def state(self) -> dict:
        return requests.get(f"{self.url}/_sim/state", timeout=5).json()

    def events(self) -> dict:
        return requests.get(f"{self.url}/_sim/events", timeout=5).json()

    def faults(self, **faults) -> None:
        requests.post(f"{self.url}/_sim/faults", json=faults, timeout=5).raise_for_status()

    def settings(self, **settings) -> None:
        requests.post(f"{self.url}/_sim/settings", json=settings, timeout=5).raise_for_status()

    def scenario(self, name: str | None) -> dict:
        """Apply a scenario pack (on a fresh state), or with ``None`` end it; the pack."""
        answer = requests.post(f"{self.url}/_sim/scenario", json={"name": name}, timeout=5)
        answer.raise_for_status()
        return answer.json()["active"]


def start_simulator(port: int | None = None) -> Simulator:
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "storefront.simulator", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz")
    return Simulator(url, process)


def app_config(simulator_url: str, data_dir: Any, **overrides: Any) -> dict[str, Any]:
    """Flask config for a test app: the environment variables as given, then Python overrides."""
    env = {**shop_environment(simulator_url), "STOREFRONT_DATA_DIR": str(data_dir)}
    env.update({k: v for k, v in overrides.items() if k.isupper() and isinstance(v, str)})
    config = from_env(env)
    config.update({"TESTING": True, "SECRET_KEY": "test-secret"})
    config.update({k: v for k, v in overrides.items() if not isinstance(v, str)})
    return config


class LiveServer:
    def __init__(self, app, host="127.0.0.1"):
        self.app = app
        self.server = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


def browser_session(persona: str | None = None) -> requests.Session:
    """A new visitor's cookie jar after accepting consent; for a persona, also Klaviyo's
    ``__kla_id`` carrying its exchange id (as its email link would have left it)."""
    session = requests.Session()
    session.cookies.set("shop_consent", "granted")
    if persona:
        session.cookies.set("__kla_id", encode_kla_id(exchange_id(persona), new_cid()))
    return session


_SERVE = """
import sys
from werkzeug.serving import make_server
from storefront import create_app
make_server("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True).serve_forever()
"""


@contextmanager
def shop_processes(
    simulator_url: str, data_dir: Any, count: int = 2, **env: str
) -> Iterator[list[str]]:
    """``count`` shop processes configured from the environment like a deployed app (one
    data dir, one ``SECRET_KEY``, and whatever ``env`` adds, e.g. ``CACHE_REDIS_URL``); their
    URLs. Each is a Werkzeug server started with ``python -c``."""
    environment = {
        **os.environ,
        **shop_environment(simulator_url),
        "STOREFRONT_DATA_DIR": str(data_dir),
        "SECRET_KEY": "one-shop-one-secret",
        "OUTBOX_RELAY_IN_APP": "0",
        **env,
    }
    ports = [free_port() for _ in range(count)]
    logs = [Path(data_dir) / f"shop-{port}.log" for port in ports]
    processes = []
    for port, log in zip(ports, logs, strict=True):
        with open(log, "wb") as stderr:  # the child keeps its own copy of the descriptor
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", _SERVE, str(port)],
                    env=environment,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, log in zip(urls, logs, strict=True):
            try:
                wait_for(f"{url}/healthz")
            except AssertionError as exc:  # say why: the process's last words
                raise AssertionError(f"{exc}:\n{log.read_text()[-2000:]}") from None
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    """A server process (and its children, in a process group of their own) started with
    ``command`` and the environment ``env``, once ``/healthz`` on ``port`` answers; all of it
    stopped afterwards."""
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", 60)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def start_redis(
    directory: Any = None, *, appendfsync: str = "always", port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server on a free loopback port (or ``port``), and its URL; without
    persistence, or with ``directory``, its append-only file there as docs/operations.md
    requires for the outbox (``appendonly yes``, ``appendfsync`` as given)."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (`make system-test-deps` installs it)")
    port = port or free_port()
    if directory is not None:
        Path(directory).mkdir(parents=True, exist_ok=True)
    persistence = (
        ("--appendonly", "no")
        if directory is None
        else ("--dir", str(directory), "--appendonly", "yes", "--appendfsync", appendfsync)
    )
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"

    def pings() -> bool:
        try:
            return bool(redis.Redis.from_url(url).ping())
        except redis.ConnectionError:
            return process.poll() is not None  # exited: stop waiting, the check below fails

    wait_until(pings, 10, "redis-server did not come up")
    if process.poll() is not None:
        raise RuntimeError("redis-server exited at start")
    return process, url


def redis_database(redis_url: str, number: int) -> str:
    """``redis_url`` pointing at database ``number`` (0-15) of the same server: apps with
    other settings must not share answers."""
    return f"{redis_url.rsplit('/', 1)[0]}/{number}"


class RecordingProxy:
    """An HTTP hop in front of the simulator that keeps every request and its answer.

    Two clients pointed at it (the shop, Klevu's own SDK) can be compared on what they sent
    byte for byte, which the simulator's journal does not keep. Requests go on unchanged,
    ``Host`` included, so answers that name their own host (the config's ``basePath``) name
    the proxy, and the search comes back through it too.
    """

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.exchanges: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        proxy = self

        class Hop(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    key: value
                    for key, value in self.headers.items()
                    if key.lower() not in HOP_HEADERS
                }
                answer = requests.request(
                    self.command, proxy.target + self.path, data=body, headers=headers, timeout=10
                )
                proxy.keep(self.command, self.path, body, answer.content)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_HEADERS:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hop)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keep(self, method: str, target: str, body: bytes, answer: bytes) -> None:
        path, _, query = target.partition("?")
        with self._lock:
            self.exchanges.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "body": _json_or_none(body),
                    "answer": _json_or_none(answer),
                }
            )

    def take(self) -> list[dict[str, Any]]:
        """The exchanges so far, forgetting them."""
        with self._lock:
            taken, self.exchanges = self.exchanges, []
        return taken

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


HOP_HEADERS = {
    "connection",
    "content-length",
    "transfer-encoding",
    "content-encoding",
    "keep-alive",
    "accept-encoding",
}


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
