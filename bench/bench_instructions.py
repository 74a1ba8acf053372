"""Instructions per warm home page under callgrind: the banner rows' ratios without the noise.

    .venv/bin/python -m bench.bench_instructions [--pages 100]

Pages per CPU second (``bench_pages.py``) is what the targets are set in, but on this shared
machine one shop's one-second blocks vary by a third, so a ratio moves by a few hundredths from
run to run. Valgrind's callgrind counts the instructions a process executes instead: the same
count for the same code and input whatever else the machine does. Each case runs in a process
of its own under callgrind (``bench_page_cpu.warm_client``: the shop's app and test client, the
simulator and Redis as separate processes, the inspector off); the process warms up, then has
callgrind zero its counters (``callgrind_control``), serves ``--pages`` pages and has them
dumped. Under valgrind the shop runs some fifty times slower, so the answers' TTLs and the
render and page budgets are raised for the run: a page must not find its answers stale nor its
template timed out. About a minute and a half, two cases at a time. Instructions are not time
(a page that misses caches costs more per instruction): this is beside the HTTP rows, not
instead of them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.bench_page_cpu import HOME_BANNERS, warm_client
from storefront.klevu.segments import cookie as segments_cookie
from tests.helpers import start_redis, start_simulator

CASES = {  # name → (home banners, the visitor's browser without the segments cookie)
    "no banner": ("", False),
    "1 banner": (HOME_BANNERS[0], False),
    "1 banner, no segments cookie": (HOME_BANNERS[0], True),
    "3 banners": (",".join(HOME_BANNERS), False),
}
SLOW_RUN = {  # callgrind is ~50x slower: answers stay fresh, nothing times out
    "KLEVU_CONFIG_TTL": "3600",
    "KLEVU_SEARCH_TTL": "3600",
    "BANNER_RENDER_TIME_LIMIT_MS": "5000",
    "KLEVU_PAGE_BUDGET_MS": "30000",
}
WARM_UP_PAGES = 40


def serve_case(name: str, pages: int) -> None:
    """In the process callgrind runs: warm up, then count ``pages`` pages only."""
    recs_home, without_cookie = CASES[name]
    simulator = start_simulator()
    redis_process, redis_url = start_redis()
    try:
        client, _ = warm_client(simulator.url, redis_url, recs_home, 1, **SLOW_RUN)
        cookies = "; ".join(
            f"{c.key}={c.value}"
            for c in client._cookies.values()
            if not (without_cookie and c.key == segments_cookie.COOKIE)
        )
        bare = client.application.test_client(use_cookies=False)
        for _ in range(WARM_UP_PAGES):
            page = bare.get("/", headers={"Cookie": cookies})
            assert page.status_code == 200, page.status_code
        control("--zero")
        for _ in range(pages):
            bare.get("/", headers={"Cookie": cookies})
        control("--dump")
    finally:
        simulator.process.terminate()
        redis_process.terminate()


def control(action: str) -> None:
    subprocess.run(["callgrind_control", action, str(os.getpid())], check=True, capture_output=True)


def count(name: str, pages: int) -> int:
    """Instructions per page of ``name``, from a callgrind run of ``serve_case``."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as out:  # MBs of dumps
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.%p",
            sys.executable,
            "-m",
            "bench.bench_instructions",
            "--case",
            name,
            "--pages",
            str(pages),
        ]
        run = subprocess.run(command, capture_output=True, text=True)
        dumps = list(Path(out).glob("callgrind.*.1"))  # the "--dump" part: the counted pages
        if run.returncode != 0 or len(dumps) != 1:
            raise SystemExit(f"{name}: callgrind run failed\n{run.stderr[-2000:]}")
        for line in dumps[0].read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1]) // pages
    raise SystemExit(f"{name}: no totals in its callgrind dump")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    if args.case:
        serve_case(args.case, args.pages)
        return
    with ThreadPoolExecutor(2) as pool:  # two cores: two valgrinds at a time
        per_page = dict(zip(CASES, pool.map(lambda n: count(n, args.pages), CASES), strict=True))
    for name, instructions in per_page.items():
        print(f"{name:30} {instructions / 1e6:6.3f} M instructions per page")
    plain, one, cookieless, three = per_page.values()
    print(f"1 banner / none, pages per instruction:        {plain / one:.3f}")
    print(f"same, without the segments cookie:             {plain / cookieless:.3f}")
    print(f"3 banners / 1 banner (3: one banner clicked):  {one / three:.3f}")


if __name__ == "__main__":
    main()
