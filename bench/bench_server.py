"""The shop's HTTP server: banner-page throughput and slow clients, gunicorn gthread vs Granian.

Both serve the same app as ``make run`` does (1 worker, 8 Python threads, the simulator with
``--latency-ms`` on every Klevu call), one after the other, in alternating rounds, because this
machine is shared and absolute rates move from run to run. Throughput is ``wrk`` against the
home page of a warm identified visitor (banners from cached answers). The slow-client check
opens ``--slow`` connections that send their request headers one line a second and never
finish them, then times pages of other visitors while they hang on. docs/performance.md,
"HTTP server", has the figures.

    .venv/bin/python -m bench.bench_server [--rounds 3] [--seconds 10] [--slow 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from storefront.__main__ import THREADS, serve_command
from storefront.simulator.account import shop_environment
from tests.helpers import PERSONAS, browser_session, free_port, serving, start_simulator

ROOT = Path(__file__).resolve().parent.parent


def gunicorn_command(host: str, port: int) -> list[str]:
    """What ``make run`` served with before Granian."""
    return [
        sys.executable,
        *("-m", "gunicorn", "--bind", f"{host}:{port}", "--worker-class", "gthread"),
        *("--threads", str(THREADS), "--workers", "1", "--no-control-socket"),
        "storefront:create_app()",
    ]


SERVERS = {
    "gunicorn gthread": gunicorn_command,
    "granian": lambda host, port: serve_command(host, port, 1),
}


def warm_cookie(url: str) -> str:
    visitor = browser_session(next(iter(PERSONAS)))
    for _ in range(3):
        page = visitor.get(f"{url}/", timeout=10)
    assert "data-klevu-banner=" in page.text, "the warm visitor's home page has no banner"
    return "; ".join(f"{c.name}={c.value}" for c in visitor.cookies)


def wrk_rate(url: str, cookie: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "-H", f"Cookie: {cookie}", f"{url}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def slow_clients(port: int, url: str, count: int, seconds: float = 12.0) -> float:
    """The slowest of the pages fetched while ``count`` clients trickle their headers."""
    hanging = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: shop\r\n")
        hanging.append(sock)
    slowest = 0.0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for sock in hanging:
                with contextlib.suppress(OSError):  # dropped: what a server should do, in time
                    sock.sendall(b"X-Slow: 1\r\n")
            for path in ("/healthz", "/"):
                started = time.monotonic()
                try:
                    requests.get(f"{url}{path}", timeout=10)
                    slowest = max(slowest, time.monotonic() - started)
                except requests.RequestException:
                    slowest = max(slowest, 10.0)
            time.sleep(1)
    finally:
        for sock in hanging:
            sock.close()
    return slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    sim = start_simulator()
    plan = {"latency_ms": args.latency_ms}
    sim.faults(visitor=plan, config=plan, search=plan)
    shops = {}
    try:
        with contextlib.ExitStack() as running:
            for name, command in SERVERS.items():
                port = free_port()
                env = {
                    **os.environ,
                    **shop_environment(sim.url),
                    "STOREFRONT_DATA_DIR": tempfile.mkdtemp(prefix="bench-server-"),
                }
                running.enter_context(serving(command("127.0.0.1", port), env, port))
                shops[name] = (port, f"http://127.0.0.1:{port}")
            cookies = {name: warm_cookie(url) for name, (_, url) in shops.items()}
            rates: dict[str, list[float]] = {name: [] for name in shops}
            for _ in range(args.rounds):
                for name, (_, url) in shops.items():
                    rates[name].append(wrk_rate(url, cookies[name], args.seconds))
            slowest = {
                name: slow_clients(port, url, args.slow) for name, (port, url) in shops.items()
            }
    finally:
        sim.process.terminate()
    before = statistics.median(rates["gunicorn gthread"])
    print(f"\nbanner home page, wrk -t2 -c8 -d{args.seconds}s, {args.rounds} rounds, medians:")
    for name, values in rates.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        ratio = statistics.median(values) / before
        print(f"  {name:18} {statistics.median(values):6.1f} pages/s ({shown})  ratio {ratio:.2f}")
    print(f"\n{args.slow} clients sending headers slowly; slowest other page in 12 s:")
    for name, seconds in slowest.items():
        print(f"  {name:18} {seconds:6.3f} s{'  (timed out at 10 s)' if seconds >= 10 else ''}")


if __name__ == "__main__":
    main()
