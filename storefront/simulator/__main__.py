"""``python -m storefront.simulator [--host H] [--port P] [--shop-url URL]``.

Options fall back to ``SIMULATOR_HOST``, ``SIMULATOR_PORT`` and ``SIMULATOR_SHOP_URL``, so
``make run`` and a container can configure it without a command line. The server is threaded:
the storefront calls it from parallel banner fetches and its outbox relay at once.
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from . import create_app


def parse_args(argv: list[str] | None = None,
               env: Mapping[str, str] | None = None) -> argparse.Namespace:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m storefront.simulator",
                                     description="Offline Klevu simulator")
    parser.add_argument("--host", default=env.get("SIMULATOR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("SIMULATOR_PORT", "5001")))
    parser.add_argument("--shop-url", default=env.get("SIMULATOR_SHOP_URL", ""),
                        help="prefix for product and image links (default: root-relative)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    app = create_app({"SIMULATOR_SHOP_URL": args.shop_url})
    app.run(host=args.host, port=args.port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
