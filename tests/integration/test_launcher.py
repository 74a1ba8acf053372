"""``make run``'s launcher (``python -m storefront``) stops what it started, however it is asked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import requests

from tests.helpers import free_port, wait_for, wait_until


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def test_a_sigterm_to_the_launcher_stops_the_shop_and_the_simulator(tmp_path):
    port, simulator_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("KLEVU_")}
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storefront",
            "--port",
            str(port),
            "--simulator-port",
            str(simulator_port),
        ],
        env={**env, "STOREFRONT_DATA_DIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so a failure below can still stop the whole group
    )
    shop, simulator = (
        f"http://127.0.0.1:{port}/healthz",
        f"http://127.0.0.1:{simulator_port}/healthz",
    )
    try:
        wait_for(shop, 60)
        assert answers(simulator)
        launcher.send_signal(signal.SIGTERM)  # the launcher alone, as `kill <pid>` does
        assert launcher.wait(timeout=30) == 0
        wait_until(lambda: not answers(shop) and not answers(simulator), 15, "servers left running")
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
            os.killpg(launcher.pid, signal.SIGKILL)
