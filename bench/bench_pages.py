"""`make bench`: banner pages against plain pages, with Klevu slow, hung or down; and the beacon.

Every figure is a ratio or a bound measured side by side in the same run, because this machine
is shared and absolute rates move from run to run. The simulator adds ``--latency-ms`` to every
visitor, config and search call (a realistic round trip to Klevu); each shop runs as ``make
run`` serves it (``storefront.__main__.serve_command``; 2 workers) on loopback with a shared
Redis, configured for shoppers (the page inspector off; ``--inspector`` measures the demo's
pages, panel included). ``wrk`` (``bench/load.py``) loads the home page from 16 connections,
each request with the next warm visitor's cookies; the primary figure of a banner-vs-plain row
is pages per CPU second of the shop's processes, pages/s beside it, and the client's share of
the CPU. docs/performance.md says what each row measures.

    .venv/bin/python -m bench.bench_pages [--latency-ms 50] [--shoppers 16] [--seconds 3]
                                          [--inspector]
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import requests

from bench.bench_outbox import durable_events
from bench.load import Block, wrk
from storefront.__main__ import serve_command
from storefront.klevu.analytics.outbox import OutboxStore
from storefront.klevu.client import DEFAULT_TIMEOUT
from storefront.klevu.segments import cookie as segments_cookie
from storefront.simulator.account import shop_environment
from tests.helpers import (
    PERSONAS,
    Simulator,
    browser_session,
    free_port,
    redis_database,
    start_redis,
    start_simulator,
    wait_for,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent

BUDGET_MS = 800
KLEVU_KINDS = ("session_new", "session_refresh", "connector", "config", "search")
ONE, THREE = "k-home-picks", "k-home-picks,k-home-recent,k-home-new"
A_PRODUCT = "10001"  # viewed once by every warm shopper
# Of the warm rows' 1 s blocks: the median of 10 moved by several hundredths from run to run,
# and of 20 still by up to 0.08 (the same code gave 0.84, then 0.92 minutes later).
ROUNDS = 40
# A banner's first no-JavaScript click link: the 3-banner home's shoppers follow one, so that
# Klevu's "recently viewed" (banner clicks, not product pages) has a banner there.
BANNER_LINK = re.compile(r'href="(/klevu/click\?[^"]+)"')
# Every shop's page inspector: off, as for shoppers (``--inspector``: on, as in the demo).
INSPECTOR = {"STOREFRONT_INSPECTOR": "false"}


@dataclass
class Shop:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


_databases = itertools.count(1)


def start_shop(sim: Simulator, redis_url: str, **env: str) -> Shop:
    """A shop with its own Redis database: shops with other settings must not share answers."""
    port = free_port()
    database = redis_database(redis_url, next(_databases) % 16)
    environment = {
        **os.environ,
        **shop_environment(sim.url),
        "SECRET_KEY": "bench",
        "STOREFRONT_DATA_DIR": tempfile.mkdtemp(prefix="bench-shop-"),
        "CACHE_REDIS_URL": database,
        "KLEVU_PAGE_BUDGET_MS": str(BUDGET_MS),
        **INSPECTOR,
        **env,
    }
    process = subprocess.Popen(
        serve_command("127.0.0.1", port, workers=2),
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz")
    return Shop(process, url)


# -- shoppers -------------------------------------------------------------------------------------
def persona(n: int) -> str:
    return list(PERSONAS)[n % len(PERSONAS)]


def warm_shoppers(shop: Shop, n: int, click: bool = False) -> list[requests.Session]:
    """Returning identified visitors: every cookie set, segments and answers cached; with
    ``click``, after following one banner's click link."""
    shoppers = [browser_session(persona(i)) for i in range(n)]
    for shopper in shoppers:
        shopper.get(f"{shop.url}/p/{A_PRODUCT}", timeout=30).raise_for_status()
        if click:
            home = shopper.get(f"{shop.url}/", timeout=30)
            link = BANNER_LINK.search(home.text)
            assert link, "a banner to click"
            shopper.get(f"{shop.url}{html.unescape(link[1])}", timeout=30).raise_for_status()
        for _ in range(3):
            shopper.get(f"{shop.url}/", timeout=30).raise_for_status()
    return shoppers


def cookie_header(shopper: requests.Session, leave_out: str = "") -> str:
    """The ``Cookie`` header the shopper's browser sends (less the cookie ``leave_out``)."""
    return "; ".join(f"{c.name}={c.value}" for c in shopper.cookies if c.name != leave_out)


def in_turn(url: str, personas: list[str | None]) -> list[float]:
    """Seconds each new visitor's first page took, one visitor after another."""
    return first_pages(url, personas, 1)


def first_pages(url: str, personas: list[str | None], parallel: int) -> list[float]:
    """Seconds each new visitor's first page took."""

    def one(who: str | None) -> float:
        with browser_session(who) as shopper:
            started = time.monotonic()
            shopper.get(url, timeout=30).raise_for_status()
            return time.monotonic() - started

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, personas))


def klevu_calls(sim: Simulator) -> int:
    counts = sim.state()["counts"]
    return sum(counts[kind] for kind in KLEVU_KINDS)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


Visitors = tuple[Shop, list[str]]  # a shop, and its visitors' Cookie headers


def side_by_side(shops: dict[str, Visitors], rounds: int) -> dict[str, list[Block]]:
    """One-second ``wrk`` blocks of each shop in turn, ``rounds`` times, so that every shop
    sees the same neighbours' load; every other round in the reverse order, so that a load
    rising or falling through a round weighs on both sides of each ratio alike."""
    blocks: dict[str, list[Block]] = {name: [] for name in shops}
    for round_ in range(rounds):
        order = list(shops.items())
        for name, (shop, cookies) in order if round_ % 2 == 0 else reversed(order):
            block = wrk(f"{shop.url}/", shop.process.pid, cookies)
            if block.failed:
                raise SystemExit(f"{name}: {block.failed} pages failed under load")
            blocks[name].append(block)
    return blocks


def compare(blocks: dict[str, list[Block]], top: str, bottom: str) -> tuple[float, str]:
    """Median of the per-round ratios of pages per CPU second (the row's figure), and the
    row's text: CPU per page, pages/s and the client's share beside it."""

    def median(name: str, of) -> float:
        return statistics.median(of(b) for b in blocks[name])

    def ratios(of) -> list[float]:
        return [of(a) / of(b) for a, b in zip(blocks[top], blocks[bottom], strict=True)]

    per_round = ratios(lambda b: b.per_cpu)
    cpu, rate = statistics.median(per_round), statistics.median(ratios(lambda b: b.rate))
    quartiles = statistics.quantiles(per_round, n=4)
    client = max(b.client_share for b in blocks[top] + blocks[bottom])
    return cpu, (
        f"{cpu:.2f} (rounds {quartiles[0]:.2f}-{quartiles[2]:.2f}; "
        f"{1000 / median(top, lambda b: b.per_cpu):.2f} / "
        f"{1000 / median(bottom, lambda b: b.per_cpu):.2f} ms CPU per page); pages/s "
        f"{rate:.2f} ({median(top, lambda b: b.rate):.0f} / "
        f"{median(bottom, lambda b: b.rate):.0f}); client <= {client:.0%} of CPU"
    )


def until(check, seconds: float, what: str) -> bool:
    """Repeat ``check`` (which itself drives pages) until it holds; False when time runs out."""
    try:
        wait_until(check, seconds, interval=0.0)
    except AssertionError:
        print(f"  .. {what}: still not so after {seconds:.0f} s", file=sys.stderr)
        return False
    return True


def breakers(shop: Shop) -> set[str]:
    """Services whose breaker is open in the worker that answered."""
    body = requests.get(f"{shop.url}/healthz", timeout=5).json()
    return {name for name, b in body["breakers"].items() if b["state"] != "closed"}


# -- the beacon's outbox --------------------------------------------------------------------------
def beacon(sim: Simulator, seconds: float, writers: int = 16) -> tuple[float, float]:
    """The SQLite outbox's durable events/s and collector POSTs per 20 events
    (``bench_outbox`` compares it with the Redis outbox)."""
    return durable_events(
        partial(OutboxStore, tempfile.mkdtemp(prefix="bench-outbox-")), sim, seconds, writers
    )


# -- the table ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0, help="the beacon's")
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument(
        "--inspector",
        action="store_true",
        help="shops with the page inspector on (the demo's default)",
    )
    args = parser.parse_args()
    if args.inspector:
        INSPECTOR["STOREFRONT_INSPECTOR"] = "true"
    latency, seconds, n = args.latency_ms, args.seconds, args.shoppers
    started = time.monotonic()
    rows: list[tuple[str, str, str, bool]] = []

    def row(name: str, value: str, target: str, ok: bool) -> None:
        rows.append((name, value, target, ok))
        print(f"  .. {name}: {value}", file=sys.stderr, flush=True)

    # Stopped (Ctrl-C, SIGTERM): still stop every process this started, in ``finally``.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sim = start_simulator()
    redis_process, redis_url = start_redis()
    shops: list[Shop] = []
    try:
        plan = {"latency_ms": latency}
        sim.faults(visitor=plan, config=plan, search=plan)
        none, one, three = (
            start_shop(sim, redis_url, KLEVU_RECS_HOME=keys) for keys in ("", ONE, THREE)
        )
        shops += [none, one, three]

        # Warm identified visitors: 1 banner and 3 banners against none; and the same
        # visitors without the segments cookie (refused, or not set yet).
        warm = {
            name: (shop, warm_shoppers(shop, n, click=name == "three"))
            for name, shop in (("none", none), ("one", one), ("three", three))
        }
        headers: dict[str, Visitors] = {
            name: (shop, [cookie_header(s) for s in shoppers])
            for name, (shop, shoppers) in warm.items()
        }
        headers["one, no segments cookie"] = (
            one,
            [cookie_header(s, leave_out=segments_cookie.COOKIE) for s in warm["one"][1]],
        )
        for shop, cookies in headers.values():  # engines, pools and threads warm, alike
            wrk(f"{shop.url}/", shop.process.pid, cookies)
        # Short alternating blocks (40 of 1 s each per shop): the neighbours' load on this
        # shared machine changes within seconds (one shop's blocks of one run vary by a third,
        # one round's ratio by a tenth either way), and every ratio is a median over the
        # rounds, their middle half shown beside it.
        blocks = side_by_side(headers, rounds=ROUNDS)
        r1, text = compare(blocks, "one", "none")
        row(
            "warm identified visitor: home with 1 banner / no banner, pages per CPU second",
            text,
            ">= 0.90",
            r1 >= 0.90,
        )
        r1c, text = compare(blocks, "one, no segments cookie", "none")
        row(
            "same, the visitor's browser without the segments cookie",
            text,
            ">= 0.85",
            r1c >= 0.85,
        )
        before = klevu_calls(sim)
        for i in range(50):
            warm["one"][1][i % n].get(f"{one.url}/", timeout=30).raise_for_status()
        calls = klevu_calls(sim) - before
        row("Klevu calls per 50 warm page views (any service)", str(calls), "<= 1", calls <= 1)
        r3, text = compare(blocks, "three", "one")
        row(
            "home with 3 banners / home with 1 banner, pages per CPU second",
            text,
            ">= 0.90",
            r3 >= 0.90,
        )
        sizes = {
            name: len(warm[name][1][0].get(f"{shop.url}/", timeout=30).content)
            for name, shop in (("none", none), ("one", one))
        }
        extra = sizes["one"] - sizes["none"]
        row(
            "simulator's demo banner: banner page bytes - plain page bytes, uncompressed HTML",
            f"{extra:,} B ({sizes['one']:,} - {sizes['none']:,})",
            "<= 8 KB",
            extra <= 8192,
        )

        # New identified visitors' first page: their segment's answers cached, then nothing.
        cached = first_pages(f"{one.url}/", [persona(i) for i in range(40)], 4)
        p50 = statistics.median(cached) * 1000
        bound = 2 * latency + 15
        row(
            "new identified visitor, first page p50, segment's config and search cached",
            f"{p50:.0f} ms",
            f"<= {bound} ms",
            p50 <= bound,
        )
        cold = start_shop(
            sim, redis_url, KLEVU_RECS_HOME=ONE, KLEVU_CONFIG_TTL="0", KLEVU_SEARCH_TTL="0"
        )
        shops.append(cold)
        first_pages(f"{cold.url}/", [None] * 4, 4)
        nothing = first_pages(f"{cold.url}/", [persona(i) for i in range(40)], 4)
        p50 = statistics.median(nothing) * 1000
        bound = 4 * latency + 15
        row(
            "new identified visitor, first page p50, nothing cached",
            f"{p50:.0f} ms",
            f"<= {bound} ms",
            p50 <= bound,
        )
        for shop in (three, cold):
            shop.stop()
            shops.remove(shop)

        # Klevu hung, one service after another, then all: a shop per case whose answers
        # from the hung service(s) expire every second and may not be used stale, so pages
        # need that service. New visitors' first pages wait at most the budget; once the
        # breakers are open, returning visitors' pages do not wait at all.
        worst_p95, worst_ratio, cases = 0.0, float("inf"), []
        most_waited, slowest_after, in_turn_cases = 0, 0.0, []
        for hung in (("visitor",), ("config",), ("search",), ("visitor", "config", "search")):
            ttls = {f"KLEVU_{service.upper()}_TTL": "1" for service in hung if service != "visitor"}
            hung_shop = start_shop(
                sim, redis_url, KLEVU_RECS_HOME=ONE, KLEVU_STALE_LIMIT="0", **ttls
            )
            shops.append(hung_shop)
            hung_warm = warm_shoppers(hung_shop, n)
            browser_session().get(f"{hung_shop.url}/", timeout=30)  # the anonymous banner
            time.sleep(1.1)  # the hung service's answers expired
            sim.faults(**{service: {"latency_ms": 5000} for service in hung})
            # New identified visitors one after another: the first pages wait the budget,
            # and count as the breaker's failures when they stop waiting.
            turns = in_turn(f"{hung_shop.url}/", [persona(i) for i in range(8)])
            waited = sum(t >= BUDGET_MS * 0.9 / 1000 for t in turns)
            after = max(turns[waited:], default=0.0) * 1000
            if len(hung) == 1:  # the target is per service; all hung at once: shown only
                most_waited, slowest_after = max(most_waited, waited), max(slowest_after, after)
            in_turn_cases.append(f"{'+'.join(hung)} {waited}, {after:.0f} ms")
            firsts = turns + first_pages(f"{hung_shop.url}/", [persona(i) for i in range(n)], 4)
            p95 = percentile(firsts, 95) * 1000
            # Keep new visitors coming until the breakers are open; with config hung, pages
            # never get as far as the search, so its breaker has nothing to open on.
            reached = set(hung) - ({"search"} if "config" in hung else set())
            opened = until(
                lambda h=reached, shop=hung_shop: (
                    first_pages(f"{shop.url}/", [persona(0)] * 4, 4)
                    and h <= breakers(shop) & breakers(shop)
                ),
                30,
                f"{hung} open",
            )
            # "Once the breaker is open": the steady state, not the hang's tail. Calls that
            # went out before the opening still hold pool threads until the client's
            # (connect, read) timeouts. The breakers' cool-down is the default 10 s: over this
            # wait and the measurement (8 rounds: with 4, one case's median alone fell to
            # 0.69 where the other three were 0.92-1.02) at most two probes per worker go out,
            # and no page waits on a probe.
            time.sleep(sum(DEFAULT_TIMEOUT))
            open_blocks = side_by_side(
                {
                    "open": (hung_shop, [cookie_header(s) for s in hung_warm]),
                    "none": headers["none"],
                },
                rounds=8,
            )
            open_ratio = compare(open_blocks, "open", "none")[0] if opened else 0.0
            worst_p95, worst_ratio = max(worst_p95, p95), min(worst_ratio, open_ratio)
            cases.append(
                f"{'+'.join(hung)} {p95:.0f} ms / "
                + (f"x{open_ratio:.2f}" if opened else "breaker did not open")
            )
            sim.faults(**dict.fromkeys(hung, plan))
            hung_shop.stop()
            shops.remove(hung_shop)
        row(
            "each Klevu service hung in turn (then all, not judged): new identified visitors one "
            "after another, pages that waited the budget; the slowest page after them",
            f"{most_waited}; {slowest_after:.0f} ms ({'; '.join(in_turn_cases)})",
            "<= 3; < 100 ms",
            most_waited <= 3 and slowest_after < 100,
        )
        row(
            "same, then 16 more, 4 at a time: first pages p95",
            f"{worst_p95:.0f} ms ({'; '.join(cases)})",
            f"<= {BUDGET_MS + 100} ms",
            worst_p95 <= BUDGET_MS + 100,
        )
        row(
            "same, once the breaker is open: pages per CPU second / no banner's",
            f"{worst_ratio:.2f} (worst case)",
            ">= 0.8",
            worst_ratio >= 0.8,
        )

        # Klevu down after a warm visit: the banner from stale answers.
        stale_shop = start_shop(
            sim, redis_url, KLEVU_RECS_HOME=ONE, KLEVU_CONFIG_TTL="1", KLEVU_SEARCH_TTL="1"
        )
        shops.append(stale_shop)
        visitor = warm_shoppers(stale_shop, 1)[0]
        time.sleep(1.1)
        sim.faults(visitor={"down": True}, config={"down": True}, search={"down": True})
        text = visitor.get(f"{stale_shop.url}/", timeout=30).text
        shown = f'data-klevu-banner="{ONE}"' in text
        row(
            "Klevu down after a warm visit: banner still shown from stale answers",
            "yes" if shown else "no",
            "yes",
            shown,
        )
        sim.faults(visitor=plan, config=plan, search=plan)

        events_per_s, posts_per_20 = beacon(sim, seconds)
        row(
            "beacon: distinct durable events/s; collector POSTs per 20 events",
            f"{events_per_s:,.0f}; {posts_per_20:.2f}",
            ">= 1,500; <= 1",
            events_per_s >= 1500 and posts_per_20 <= 1,
        )
    finally:
        for shop in shops:
            shop.stop()
        redis_process.terminate()
        sim.process.terminate()
        sim.process.wait(timeout=10)

    print(
        f"\nmake bench: Klevu latency {latency} ms per call, page budget {BUDGET_MS} ms, "
        f"{n} shoppers, wrk -c16, {' '.join(serve_command('127.0.0.1', 0, workers=2)[1:])} "
        f"+ Redis, {time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.2f}\n"
    )
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"| {'row':{width}} | {'measured':{value_width}} | target | met |")
    print(f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|---|---|")
    for name, value, target, ok in rows:
        print(f"| {name:{width}} | {value:{value_width}} | {target} | {'yes' if ok else 'NO'} |")
    print(
        json.dumps(
            {
                "load": os.getloadavg()[0],
                "rows": [
                    {"row": r[0], "measured": r[1], "target": r[2], "met": r[3]} for r in rows
                ],
            }
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
