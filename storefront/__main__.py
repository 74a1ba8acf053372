"""``make run``: the Klevu simulator and the shop, each in its own process; Ctrl-C stops both.

The shop runs under Granian (``serve_command``; docs/operations.md says why). With no Klevu
keys in the environment the shop talks to the simulator started here; with keys, only the shop
starts and talks to Klevu itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from .simulator.account import DEFAULT_PORT, shop_environment
from .simulator.scenarios import BadPack, load as load_pack

THREADS = 8  # Python threads per worker process
HEADER_TIMEOUT_MS = 10_000  # a client that has not sent its headers by then is dropped


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited before it was ready (code {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def serve_command(host: str, port: int, workers: int = 1) -> list[str]:
    """The shop under Granian, as ``make run`` and docs/operations.md serve it.

    Granian's Rust side reads each request (headers, with a deadline) before a Python thread
    sees it, so clients that send slowly hold sockets, not the shop's threads. It applies no
    ``X-Forwarded-*`` header itself: the app trusts those as ``STOREFRONT_PROXY_HOPS`` says.
    """
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        # A page waits on Klevu (segments, config, search): threads keep serving meanwhile.
        "--blocking-threads",
        str(THREADS),
        "--http1-header-read-timeout",
        str(HEADER_TIMEOUT_MS),
        "--no-ws",
        "--respawn-failed-workers",
        "--access-log",
        "storefront:create_app",
    ]


def start_simulator(port: int, env: dict[str, str]) -> tuple[subprocess.Popen, dict[str, str]]:
    """The simulator on ``port``, and the shop's environment pointed at it."""
    simulator_url = f"http://127.0.0.1:{port}"
    # The shop learns the simulator's URL, api key and recs keys from its settings, as it
    # would a live account's; anything set in the environment wins.
    env = {**shop_environment(simulator_url), **env}
    # The demo merchant registers a euro sign, as a shop does in its Klevu JavaScript, so
    # banner prices read like the shop's own; unset, Klevu prints "EUR 850.00".
    env.setdefault("KLEVU_CURRENCY_FORMATS", '{"EUR": {"string": "€"}}')
    # The console's scenario packs change the banners Klevu serves: with config answers kept
    # 5 s, not 5 minutes, the audience sees the change seconds later (an old answer is still
    # served once while it is refreshed behind the page).
    env.setdefault("KLEVU_CONFIG_TTL", "5")
    command = [sys.executable, "-m", "storefront.simulator", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env)
    wait_healthy(f"{simulator_url}/healthz", process)
    return process, env


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def pack_environment(pack: str) -> dict[str, str]:
    """The simulator starts in the pack; a recorded account's pack also gives the shop that
    account's api key and recs keys."""
    if not pack:
        return {}
    try:
        loaded = load_pack(pack)
    except BadPack as exc:
        raise SystemExit(str(exc)) from None
    recorded = loaded.recorded.shop_settings() if loaded.recorded else {}
    return {"SIMULATOR_SCENARIO": pack, **recorded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--simulator-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--pack", default="", help="start the simulator in this scenario pack (name or file)"
    )
    args = parser.parse_args(argv)
    # A SIGTERM (a supervisor, `kill`) stops both servers too, as Ctrl-C does: without this the
    # launcher died at once and left the simulator and the shop's server running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    env = dict(os.environ)
    processes: list[subprocess.Popen] = []
    offline = not env.get("KLEVU_API_KEY")
    # SIGTERM (a supervisor, a test) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    metrics_dir = None
    if args.workers > 1 and not env.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker counts for itself: /metrics sums their files (storefront/metrics.py).
        # A new, empty directory per run: files left by an earlier run would be summed too.
        metrics_dir = tempfile.mkdtemp(prefix="storefront-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        if offline:
            simulator, env = start_simulator(
                args.simulator_port, {**env, **pack_environment(args.pack)}
            )
            processes.append(simulator)
        shop_url = f"http://{args.host}:{args.port}"
        processes.append(
            subprocess.Popen(serve_command(args.host, args.port, args.workers), env=env)
        )
        wait_healthy(f"{shop_url}/healthz", processes[-1])
        print(f"\n  Shop:      {shop_url}", flush=True)
        if offline:
            print(f"  Simulator: {env['KLEVU_SIMULATOR_URL']}/_sim/  (what Klevu received)")
        print("  Ctrl-C stops both.\n", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
