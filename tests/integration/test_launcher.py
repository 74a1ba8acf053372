"""``make run``'s launcher (``python -m storefront``) stops what it started, however it is asked."""

from __future__ import annotations

import contextlib
import os
import signal

import requests

from storefront.pytest_plugin import launch, offline_environment
from tests.helpers import wait_until


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def test_a_sigterm_to_the_launcher_stops_the_shop_and_the_simulator(tmp_path):
    served, launcher = launch(tmp_path, env=offline_environment())  # its own process group
    shop, simulator = f"{served.url}/healthz", f"{served.simulator_url}/healthz"
    try:
        assert answers(shop) and answers(simulator)
        launcher.send_signal(signal.SIGTERM)  # the launcher alone, as `kill <pid>` does
        assert launcher.wait(timeout=30) == 0
        wait_until(lambda: not answers(shop) and not answers(simulator), 15, "servers left running")
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
            os.killpg(launcher.pid, signal.SIGKILL)
