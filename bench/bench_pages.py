"""Page throughput under Klevu latency: gunicorn gthread workers vs sync workers.

Every home page waits on Klevu (segments, two configs, a search), so what a worker does while
it waits decides how many shoppers one host serves. This starts the simulator with a fixed
latency on config and search, then the shop twice on loopback — 4 sync workers, then 2 gthread
workers with 8 threads each — and drives each with the same closed loop of concurrent
shoppers for the same time. It prints pages/s and the ratio to the sync baseline measured in
the same run (this machine is shared, so absolute figures move).

    .venv/bin/python bench/bench_pages.py [--seconds 8] [--shoppers 16] [--latency-ms 150]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port, start_simulator, wait_for

WORKERS = {
    "sync, 4 workers": ["--worker-class", "sync", "--workers", "4"],
    "gthread, 2 workers x 8 threads": ["--worker-class", "gthread", "--workers", "2",
                                       "--threads", "8"],
}


def start_shop(simulator_url: str, worker_args: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "KLEVU_SIMULATOR_URL": simulator_url,
           "STOREFRONT_DATA_DIR": tempfile.mkdtemp(prefix="bench-shop-"),
           "SECRET_KEY": "bench"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--no-control-socket",
         "--timeout", "60", *worker_args, "storefront:create_app()"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz")
    return process, url


def drive(url: str, shoppers: int, seconds: float) -> tuple[float, float]:
    """Closed loop: each shopper loads the home page again as soon as the last one arrived."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    lock = threading.Lock()

    def shopper():
        with requests.Session() as session:
            session.cookies.set("shop_consent", "granted")
            while time.monotonic() < stop:
                started = time.monotonic()
                ok = session.get(f"{url}/", timeout=30).status_code == 200
                if ok:
                    with lock:
                        latencies.append(time.monotonic() - started)

    threads = [threading.Thread(target=shopper) for _ in range(shoppers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / seconds, statistics.median(latencies) if latencies else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=150)
    args = parser.parse_args()

    simulator = start_simulator()
    try:
        plan = {"latency_ms": args.latency_ms}
        requests.post(f"{simulator.url}/_sim/faults", json={"config": plan, "search": plan},
                      timeout=5).raise_for_status()
        print(f"home page, {args.shoppers} shoppers, {args.seconds:.0f} s each, "
              f"Klevu config/search latency {args.latency_ms} ms")
        baseline = None
        for name, worker_args in WORKERS.items():
            shop, url = start_shop(simulator.url, worker_args)
            try:
                drive(url, 2, 1.0)  # warm up: engines, connection pools, caches
                rate, median = drive(url, args.shoppers, args.seconds)
            finally:
                os.killpg(shop.pid, signal.SIGTERM)
                shop.wait(timeout=30)
            baseline = baseline or rate
            print(f"  {name:34s} {rate:7.1f} pages/s  median {median * 1000:6.0f} ms"
                  f"  x{rate / baseline:.2f}")
    finally:
        simulator.process.terminate()
        simulator.process.wait(timeout=10)


if __name__ == "__main__":
    main()
