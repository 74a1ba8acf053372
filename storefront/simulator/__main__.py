"""``python -m storefront.simulator [--host H] [--port P] [--shop-url URL] [--scenario PACK]``.

It listens on loopback (127.0.0.1) unless told otherwise, since its ``/_sim/`` control routes
have no authentication. Options fall back to ``SIMULATOR_HOST``, ``SIMULATOR_PORT`` and
``SIMULATOR_SHOP_URL`` (and ``SIMULATOR_SCENARIO``), so ``make run`` and a container can
configure it without a command line; ``--list-scenarios`` prints the shipped scenario packs.
The server is threaded: the storefront calls it from parallel banner fetches and its outbox
relay at once.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shlex
from collections.abc import Mapping

from . import LOOPBACK_NAMES, create_app
from .account import DEFAULT_PORT, shop_environment
from .scenarios import BadPack, catalogue


def parse_args(
    argv: list[str] | None = None, env: Mapping[str, str] | None = None
) -> argparse.Namespace:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="python -m storefront.simulator", description="Offline Klevu simulator"
    )
    parser.add_argument("--host", default=env.get("SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("SIMULATOR_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--shop-url",
        default=env.get("SIMULATOR_SHOP_URL", ""),
        help="prefix for product and image links (default: root-relative)",
    )
    parser.add_argument(
        "--scenario",
        default=env.get("SIMULATOR_SCENARIO", ""),
        help="start in this scenario pack: a shipped pack's name, or a pack file's path",
    )
    parser.add_argument(
        "--list-scenarios", action="store_true", help="print the shipped scenario packs, and exit"
    )
    parser.add_argument(
        "--allowed-hosts",
        default=env.get("SIMULATOR_ALLOWED_HOSTS", ""),
        help="comma-separated host names it answers to besides loopback and --host",
    )
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="print the shell exports that point a shop at this simulator, and exit",
    )
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.print_env:
        url = f"http://{args.host}:{args.port}"
        for name, value in shop_environment(url).items():
            print(f"export {name}={shlex.quote(value)}")
        return
    if args.list_scenarios:
        for pack in catalogue().values():
            print(f"{pack.name:32} {pack.title}")
        return
    if not is_loopback(args.host):
        logging.getLogger(__name__).warning(
            "listening on %s: anyone who can reach it can reset the simulator and plan faults "
            "(/_sim/ has no authentication); keep it on 127.0.0.1 unless that is intended",
            args.host,
        )
    hosts = {*LOOPBACK_NAMES, args.host.lower()} - {"0.0.0.0", "::"}  # noqa: S104
    hosts |= {h.strip().lower() for h in args.allowed_hosts.split(",") if h.strip()}
    try:
        app = create_app(
            {
                "SIMULATOR_SHOP_URL": args.shop_url,
                "SIMULATOR_SCENARIO": args.scenario,
                "SIMULATOR_HOSTS": tuple(hosts),
            }
        )
    except BadPack as exc:
        raise SystemExit(str(exc)) from None
    app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
