"""CPU per warm home page, with and without banners: docs/performance.md, "Where the time goes".

    .venv/bin/python -m bench.bench_page_cpu [--pages 300] [--blocks 5] [--banners 1]

`make bench` measures pages over HTTP, where gunicorn, HTTP parsing and the load generator
dilute what the shop itself spends on a banner. This isolates it: two apps in this process
(home with no banner, home with ``--banners`` banners), the app's test client, Redis as the
shared cache as in the bench (``CACHE_REDIS_URL``), the simulator without latency, the page
inspector off, one identified persona whose cookies are all set and whose answers are warm.
Blocks of ``--pages`` pages alternate between the two apps; each figure is the median block's
``time.process_time`` per page, and the ratio (pages per CPU second, banners ÷ none) is the
figure to compare across runs and commits (run it in a ``git worktree`` of each). A third app
serves the banner page with ``STOREFRONT_METRICS=false``: the cost of counting for
``/metrics`` (and of ``Server-Timing``'s clock reads, which stay on) is the ratio of the two
banner apps. About 30 s.
"""

from __future__ import annotations

import argparse
import html
import statistics
import tempfile
import time

from bench.bench_pages import A_PRODUCT, BANNER_LINK, THREE  # the same shop and placements
from storefront import create_app
from tests.helpers import (
    app_config,
    browser_session,
    redis_database,
    start_redis,
    start_simulator,
)

HOME_BANNERS = THREE.split(",")
WARM_UP_PAGES = 20


def warm_client(
    simulator_url: str,
    redis_url: str,
    recs_home: str,
    database: int,
    metrics: str = "true",
    **settings: str,
):
    """A test client of a shop configured as for shoppers, after a returning visitor's pages."""
    config = app_config(
        simulator_url,
        tempfile.mkdtemp(prefix="bench-cpu-"),
        KLEVU_RECS_HOME=recs_home,
        STOREFRONT_INSPECTOR="false",
        STOREFRONT_METRICS=metrics,
        OUTBOX_RELAY_IN_APP="0",
        CACHE_REDIS_URL=redis_database(redis_url, database),
        **settings,
    )
    config["TESTING"] = False  # errors as in production: logged, the page still rendered
    client = create_app(config).test_client()
    for cookie in browser_session("maya").cookies:
        client.set_cookie(cookie.name, cookie.value or "")
    client.get(f"/p/{A_PRODUCT}")
    if "," in recs_home:  # a banner click: "recently viewed" has content with three banners
        link = BANNER_LINK.search(client.get("/").get_data(as_text=True))
        assert link, "a banner to click"
        client.get(html.unescape(link[1]))
    for _ in range(WARM_UP_PAGES):
        response = client.get("/")
        if response.status_code != 200:
            raise SystemExit(f"home page answered {response.status_code}")
    return client, len(response.data)


def cpu_ms_per_page(client, pages: int) -> float:
    started = time.process_time()
    for _ in range(pages):
        client.get("/")
    return (time.process_time() - started) / pages * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--banners", type=int, choices=(1, 2, 3), default=1)
    args = parser.parse_args()

    simulator = start_simulator()
    redis_process, redis_url = start_redis()
    try:
        recs_home = ",".join(HOME_BANNERS[: args.banners])
        clients = {
            "no banner": warm_client(simulator.url, redis_url, "", 1),
            f"{args.banners} banner(s)": warm_client(simulator.url, redis_url, recs_home, 2),
            "  metrics off": warm_client(simulator.url, redis_url, recs_home, 3, "false"),
        }
        blocks: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(args.blocks):
            for name, (client, _size) in clients.items():
                blocks[name].append(cpu_ms_per_page(client, args.pages))
    finally:
        simulator.process.terminate()
        redis_process.terminate()

    medians = {name: statistics.median(times) for name, times in blocks.items()}
    for name, (_client, size) in clients.items():
        print(
            f"{name:14} {medians[name]:.3f} ms CPU per page "
            f"(best block {min(blocks[name]):.3f} ms), {size:,} bytes"
        )
    plain, banners, unmetered = medians.values()
    print(f"pages per CPU second, banners / none: {plain / banners:.2f}")
    print(f"pages per CPU second, metrics on / off: {unmetered / banners:.3f}")


if __name__ == "__main__":
    main()
