"""Upstream calls per second with 10 and with 1,000 connected clients: they must be the same, and REST < 1/s.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/upstream_calls.py [--small 10] [--large 1000] [--seconds 30]

The "exchange" is a local server speaking Binance's public spot API formats (REST exchangeInfo and
klines, the raw WebSocket trade stream; tests/marketdata/mock_binance.py) that counts every request,
connection and subscription. The real stack runs on a database of its own (<name>_bench_upstream):
daphne and `manage.py run_marketfeed --source ccxt` (the real ccxt.pro Binance client, pointed at the
local server through MARKET_CCXT_CONFIG). Traffic is counted in a window with `--small` clients
connected to /ws/market/, then in the same window length with `--large`; the start-up calls (market list,
one gap fill per symbol) are reported apart.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from market_stack import (  # noqa: E402
    PYTHON,
    ClientFleet,
    bench_environment,
    free_port,
    prepare_database,
    raise_fd_limit,
    start,
    start_daphne,
    stop,
)

from tests.marketdata.mock_binance import MockBinance  # noqa: E402

PRICES = {
    "BTC/USDT": 23000.0,
    "BTC/USDC": 23010.0,
    "ETH/USDT": 1600.0,
    "SOL/USDT": 21.5,
    "XRP/USDT": 0.3781,
    "ETH/BTC": 0.0695,
}


class ExchangeThread(threading.Thread):
    """The mock exchange on an event loop of its own, so counting never waits for the bench."""

    def __init__(self, trades_per_second: float) -> None:
        super().__init__(daemon=True)
        self.mock = MockBinance(prices=PRICES, trades_per_second=trades_per_second)
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.mock.start())
        self.started.set()
        self.loop.run_forever()

    def counts(self) -> dict:
        mock = self.mock
        return {
            "rest": sum(mock.requests.values()),
            "rest_by_endpoint": dict(mock.requests),
            "ws_connections": mock.ws_connections,
            "ws_subscribe_messages": mock.ws_subscriptions,
            "trades_streamed": mock.trades_sent,
        }


def window(exchange: ExchangeThread, fleet: ClientFleet, seconds: float, clients: int) -> dict:
    before = exchange.counts()
    started = time.monotonic()
    received = fleet.measure(seconds)
    elapsed = time.monotonic() - started
    after = exchange.counts()
    return {
        "clients": clients,
        "connected": received["connected"],
        "rest_calls_per_s": round((after["rest"] - before["rest"]) / elapsed, 3),
        "ws_connects_per_s": round((after["ws_connections"] - before["ws_connections"]) / elapsed, 3),
        "ws_subscribes_per_s": round(
            (after["ws_subscribe_messages"] - before["ws_subscribe_messages"]) / elapsed, 3
        ),
        "trades_per_s": round((after["trades_streamed"] - before["trades_streamed"]) / elapsed, 1),
        "frames_to_clients_per_s": received["frames_per_s"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--trades-per-second", type=float, default=5, help="per symbol, from the exchange")
    parser.add_argument("--client-procs", type=int, default=2)
    args = parser.parse_args()

    raise_fd_limit()
    exchange = ExchangeThread(args.trades_per_second)
    exchange.start()
    exchange.started.wait(10)
    env = bench_environment("bench_upstream")
    env["MARKET_FEED_SOURCE"] = "ccxt"
    env["MARKET_CCXT_CONFIG"] = json.dumps(exchange.mock.ccxt_config())
    os.environ.update(env)
    prepare_database(env)
    logs = Path(tempfile.mkdtemp(prefix="nexus-bench-upstream-"))
    port = free_port()
    daphne = start_daphne(env, port, logs / "daphne.log")
    feed = start(env, [PYTHON, "manage.py", "run_marketfeed", "--backfill-minutes", "60"], logs / "feed.log")
    try:
        time.sleep(5)  # market list and gap fill, then streaming
        if feed.poll() is not None:
            raise RuntimeError("the feed stopped:\n" + (logs / "feed.log").read_text()[-3000:])
        startup = exchange.counts()
        url, origin = f"ws://127.0.0.1:{port}/ws/market/?view=row", f"http://127.0.0.1:{port}"
        results = []
        for clients in (args.small, args.large):
            fleet = ClientFleet(url=url, origin=origin, count=clients, procs=args.client_procs)
            fleet.wait_connected()
            time.sleep(2)
            results.append(window(exchange, fleet, args.seconds, clients))
        small, large = results
        print(
            json.dumps(
                {
                    "bench": "upstream_calls",
                    "source": "ccxt.pro binance -> local Binance-format server",
                    "symbols": len(PRICES),
                    "startup": {
                        "rest_calls": startup["rest"],
                        "by_endpoint": startup["rest_by_endpoint"],
                        "ws_connections": startup["ws_connections"],
                        "ws_subscribe_messages": startup["ws_subscribe_messages"],
                    },
                    "small": small,
                    "large": large,
                    "same_upstream_traffic": all(
                        small[k] == large[k]
                        for k in ("rest_calls_per_s", "ws_connects_per_s", "ws_subscribes_per_s")
                    ),
                    "rest_under_1_per_s": small["rest_calls_per_s"] < 1 and large["rest_calls_per_s"] < 1,
                    "logs": str(logs),
                }
            )
        )
    finally:
        stop(feed, daphne)
    return 0


if __name__ == "__main__":
    sys.exit(main())
