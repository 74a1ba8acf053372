"""The shop as ``make run`` serves it, tried as an attacker on the network would.

One launcher (``python -m storefront``: the simulator and the shop under the server of
``storefront.__main__.serve_command``) for the module. Each test is one row of what a public
address must withstand: clients that send their headers slowly, forwarded headers nobody was
told to trust, bodies too large to read, and a rebound host name at the simulator's controls.
"""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest
import requests

from tests.helpers import free_port, serving


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    port, sim_port = free_port(), free_port()
    command = [sys.executable, "-m", "storefront", "--port", str(port)]
    env = {**os.environ, "STOREFRONT_DATA_DIR": str(tmp_path_factory.mktemp("public"))}
    env.pop("KLEVU_API_KEY", None)  # offline: the launcher starts the simulator
    with serving([*command, "--simulator-port", str(sim_port)], env, port):
        yield port, sim_port


def raw(port: int, head: bytes, timeout: float = 5.0) -> bytes:
    """Send ``head`` on a new connection; what the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_fifty_clients_sending_headers_slowly_do_not_stop_other_pages(launched):
    port, _ = launched
    url = f"http://127.0.0.1:{port}"
    slow = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: shop\r\n")
            slow.append(sock)
        times = []
        for _ in range(4):
            for sock in slow:
                sock.sendall(b"X-Slow: 1\r\n")
            for path in ("/healthz", "/", "/cart"):
                started = time.monotonic()
                assert requests.get(url + path, timeout=10).status_code == 200
                times.append(time.monotonic() - started)
            time.sleep(0.5)
    finally:
        for sock in slow:
            sock.close()
    assert max(times) < 1.0, times


def test_forwarded_scheme_from_a_client_is_ignored_with_no_proxy_hops(launched):
    port, _ = launched
    page = requests.get(
        f"http://127.0.0.1:{port}/",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"},
        timeout=10,
    )
    assert page.status_code == 200
    assert "Strict-Transport-Security" not in page.headers
    assert page.cookies and not any(cookie.secure for cookie in page.cookies)


def test_forwarded_scheme_is_ignored_under_gunicorn_too(tmp_path):
    """gunicorn believes X-Forwarded-Proto from 127.0.0.1 by default; the app must not."""
    from storefront.simulator.account import shop_environment

    port = free_port()
    env = {
        **os.environ,
        **shop_environment("http://127.0.0.1:1"),
        "STOREFRONT_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    with serving([*command, "--no-control-socket", "storefront:create_app()"], env, port):
        answer = requests.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Forwarded-Proto": "https"}, timeout=10
        )
        assert "Strict-Transport-Security" not in answer.headers


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_body_over_the_limit_gets_413_before_it_is_sent(launched, content_type):
    port, _ = launched
    head = (
        f"POST /cart/add HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = raw(port, head)  # the body is never sent: the answer must not wait for it
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 2


def test_simulator_controls_refuse_a_rebound_host_name(launched):
    _, sim_port = launched
    sim = f"http://127.0.0.1:{sim_port}"
    before = requests.get(f"{sim}/_sim/state", timeout=5).json()["faults"]
    rebound = {
        "Host": f"attacker.example:{sim_port}",
        "Origin": f"http://attacker.example:{sim_port}",
    }
    answer = requests.post(
        f"{sim}/_sim/faults", json={"search": {"status": 503}}, headers=rebound, timeout=5
    )
    assert answer.status_code == 421
    assert requests.get(f"{sim}/_sim/", headers=rebound, timeout=5).status_code == 421
    assert requests.get(f"{sim}/_sim/state", timeout=5).json()["faults"] == before
    assert requests.get(f"http://localhost:{sim_port}/_sim/state", timeout=5).status_code == 200
