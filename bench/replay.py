"""Replay benchmark: the demo bots' settings over the whole March 2023 recording (30,240 one-minute candles).

    .venv/bin/python bench/replay.py [--runs 3]

Times `trading.tracker.replay.replay_steps` (the live decision, regime, gatekeeper, sizing, paper fill and
bot book code over a `MemoryCandles` source) for the demo's "BTC trend" (SMA 9/21) and "BTC DCA" (every 5
candles) settings, after loading the recording once (timed separately). No database: the replay reads no
rows; what `trading.replay_run` adds is storing the fills and its progress.

Prints one JSON line: seconds per run (best and median) per setting, and the decisions, blocks and fills.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from marketdata.selectors import recorded_candles  # noqa: E402
from trading.decisions.candles import MemoryCandles  # noqa: E402
from trading.tracker.replay import PaperSink, ReplaySettings, replay_steps  # noqa: E402

SETTINGS = {
    "sma_crossover 9/21": ("sma_crossover", {"fast": 9, "slow": 21}, "250", "0.1", "150"),
    "dca every 5": ("dca", {"every": 5}, "100", "0.2", "100"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    bars = recorded_candles(symbol="BTC/USDT")
    load_seconds = time.perf_counter() - started
    minutes = [bar.open_time for bar in bars]
    result: dict[str, object] = {"candles": len(bars), "load_seconds": round(load_seconds, 3)}
    for label, (strategy, params, allocation, max_position, loss_limit) in SETTINGS.items():
        times, counts = [], {}
        for _ in range(args.runs):
            source = MemoryCandles(symbol="BTC/USDT", minutes=bars)  # a fresh source: no warm aggregate cache
            replay_settings = ReplaySettings(
                symbol="BTC/USDT", strategy_key=strategy, params=params, timeframe="1m",
                allocation=Decimal(allocation), max_position=Decimal(max_position),
                daily_loss_limit=Decimal(loss_limit), taker_fee=Decimal(settings.TRADING_PAPER_FEE_RATE),
                max_fee=Decimal(settings.TRADING_BOT_MAX_TAKER_FEE), quantity_precision=6, price_precision=2,
                min_notional=Decimal("10"), quote="USDT",
            )
            started = time.perf_counter()
            steps = [
                s for s in replay_steps(source=source, settings=replay_settings, minutes=minutes,
                                        sink=PaperSink(price_precision=2, quote="USDT"))
                if s.decision.action != "hold"
            ]
            times.append(time.perf_counter() - started)
            counts = {
                "decisions": len(steps),
                "blocked": sum(1 for s in steps if s.block_reason),
                "fills": sum(1 for s in steps if s.fill is not None),
            }
        result[label] = {"best_seconds": round(min(times), 2), "median_seconds": round(statistics.median(times), 2),
                         **counts}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
