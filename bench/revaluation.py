"""Revaluation on a tick: 5,000 portfolios hold the symbol that moved.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/revaluation.py [--portfolios 5000] [--ticks 5]

It uses a database of its own (<name>_bench_revaluation, recreated) and a Redis key prefix of its own.
Setup (not timed): 5,000 traders, each with a portfolio holding REV/USDT (two FIFO lots) and BTC/USDT,
USDT cash and a month of daily snapshots.

Timed, per tick: the change batch of the `revaluation` tick consumer
(`portfolios.live.portfolios_revalue`): one cross-tenant query for the holders, one presence lookup,
one quote map, then for each holder with a dashboard open, inside their tenant, the valuation, the
day change and the fragment, and one channel-layer message each (Redis). First with 500 of the 5,000
watching; then the same 500 through the tick stream (the feed appends the batch, the consumer reads,
revalues and acknowledges it, in this process), with what the stream adds; then with all of them
watching (the worst case). Also what the feed pays per publish for all tick consumers: one append to
the tick stream.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

os.environ.update(
    bench_environment(
        "bench_revaluation",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-insecure-key-0123456789-abcdefghijklmnop"),
    )
)

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

SYMBOL = "REV/USDT"


def seed(count: int) -> list[int]:
    """Bulk rows equal to what the services write for: deposit, two buys of REV, one buy of BTC."""
    from accounts.models import User
    from core.rls import system_context
    from marketdata.models import Instrument, Quote
    from marketdata.services import instruments_seed
    from portfolios.models import CashBalance, Lot, Portfolio, Position, Snapshot, Transaction

    now = datetime.now(UTC)
    start = now - timedelta(days=40)
    with system_context(reason="bench: 5,000 holders"):
        instruments_seed()
        rev, _ = Instrument.objects.get_or_create(symbol=SYMBOL, defaults={"base": "REV", "quote": "USDT"})
        btc = Instrument.objects.get(symbol="BTC/USDT")
        for instrument, price in ((rev, "10"), (btc, "25000")):
            Quote.objects.update_or_create(
                instrument=instrument,
                defaults={
                    "price": Decimal(price),
                    "open_24h": Decimal(price),
                    "source": "bench",
                    "at": now,
                    "updated_at": now,
                },
            )
        users = User.objects.bulk_create(
            [User(email=f"holder{n}@bench.nexus", display_name=f"Holder {n}") for n in range(count)],
            batch_size=2000,
        )
        portfolios = Portfolio.objects.bulk_create(
            [Portfolio(user=u, name="Main", base_currency="USDT", kind="manual") for u in users],
            batch_size=2000,
        )
        txns, plans = [], []
        for p in portfolios:
            rows = [
                Transaction(
                    user_id=p.user_id,
                    portfolio=p,
                    kind="deposit",
                    currency="USDT",
                    quantity=Decimal(10000),
                    executed_at=start,
                    flow_amount=Decimal(10000),
                    flow_currency="USDT",
                ),
                Transaction(
                    user_id=p.user_id,
                    portfolio=p,
                    kind="buy",
                    instrument=rev,
                    currency="USDT",
                    quantity=Decimal(100),
                    price=Decimal(8),
                    executed_at=start + timedelta(days=1),
                ),
                Transaction(
                    user_id=p.user_id,
                    portfolio=p,
                    kind="buy",
                    instrument=rev,
                    currency="USDT",
                    quantity=Decimal(50),
                    price=Decimal(12),
                    executed_at=start + timedelta(days=2),
                ),
                Transaction(
                    user_id=p.user_id,
                    portfolio=p,
                    kind="buy",
                    instrument=btc,
                    currency="USDT",
                    quantity=Decimal("0.1"),
                    price=Decimal(20000),
                    executed_at=start + timedelta(days=3),
                ),
            ]
            txns += rows
            plans.append((p, rows))
        Transaction.objects.bulk_create(txns, batch_size=5000)
        positions, lots, cash, snapshots = [], [], [], []
        for p, (_, buy_a, buy_b, buy_btc) in plans:
            rev_position = Position(
                user_id=p.user_id,
                portfolio=p,
                instrument=rev,
                quantity=Decimal(150),
                cost_basis=Decimal(1400),
                last_price=Decimal(12),
                opened_at=buy_a.executed_at,
            )
            btc_position = Position(
                user_id=p.user_id,
                portfolio=p,
                instrument=btc,
                quantity=Decimal("0.1"),
                cost_basis=Decimal(2000),
                last_price=Decimal(20000),
                opened_at=buy_btc.executed_at,
            )
            positions += [rev_position, btc_position]
            lots += [
                (rev_position, buy_a, 100, 800),
                (rev_position, buy_b, 50, 600),
                (btc_position, buy_btc, "0.1", 2000),
            ]
            cash.append(CashBalance(user_id=p.user_id, portfolio=p, currency="USDT", amount=Decimal(6600)))
            snapshots += [
                Snapshot(
                    user_id=p.user_id,
                    portfolio=p,
                    date=date.today() - timedelta(days=d),
                    taken_at=now - timedelta(days=d - 1),
                    value=Decimal(10000 + d),
                    flows={"USDT": "10000"},
                )
                for d in range(30, 0, -1)
            ]
        Position.objects.bulk_create(positions, batch_size=5000)
        Lot.objects.bulk_create(
            [
                Lot(
                    user_id=pos.user_id,
                    portfolio_id=pos.portfolio_id,
                    position=pos,
                    opening_transaction=txn,
                    opened_at=txn.executed_at,
                    quantity=Decimal(q),
                    quantity_open=Decimal(q),
                    cost_open=Decimal(c),
                )
                for pos, txn, q, c in lots
            ],
            batch_size=5000,
        )
        CashBalance.objects.bulk_create(cash, batch_size=5000)
        Snapshot.objects.bulk_create(snapshots, batch_size=10000)
    with connections["owner"].cursor() as cursor:
        cursor.execute("ANALYZE")
    return [u.pk for u in users]


def ticks(live, Quote, count: int, watching: list[int]) -> list[float]:
    from portfolios.presence import viewer_touch

    seconds = []
    for n in range(count):
        for user_id in watching:  # the open dashboards' heartbeats (not timed)
            viewer_touch(user_id=user_id)
        set_price(Quote, Decimal(10) + Decimal(n + 1) / 10)
        result = live.portfolios_revalue(symbols={SYMBOL})
        assert result.portfolios == len(watching), result
        seconds.append(result.seconds)
    return seconds


def set_price(Quote, price: Decimal) -> None:
    """What the feed writes before it publishes (shared reference data: its own process's context)."""
    from core.rls import system_context

    with system_context(reason="bench: the feed's quote"):
        Quote.objects.filter(instrument__symbol=SYMBOL).update(price=price, updated_at=datetime.now(UTC))


def through_the_stream(live, Quote, count: int, watching: list[int]) -> tuple[list[float], list[float]]:
    """Feed append to acknowledged, through the revaluation consumer (run here, as its process would):
    the seconds per tick, and what the stream added to the revaluation itself (read, decode, ack)."""
    from config.celery import keep_worker_connections
    from marketdata.tick_consumers import TickConsumer
    from marketdata.tickstream import tick_batches_append
    from marketdata.types import TickEvent
    from portfolios.presence import viewer_touch

    keep_worker_connections()  # as `manage.py run_tick_consumer` does
    consumer = TickConsumer.named("revaluation", consumer="bench")
    consumer.start()
    revalue, revalued = live.portfolios_revalue, []

    def timed_revalue(*, symbols):
        result = revalue(symbols=symbols)
        revalued.append(result.seconds)
        return result

    live.portfolios_revalue = timed_revalue
    seconds, overhead = [], []
    try:
        for n in range(count):
            for user_id in watching:
                viewer_touch(user_id=user_id)
            price = Decimal(20) + Decimal(n + 1) / 10
            set_price(Quote, price)
            tick = TickEvent(symbol=SYMBOL, price=price, previous_price=None, at=datetime.now(UTC))
            started = time.perf_counter()
            tick_batches_append([[tick]])
            assert consumer.run(max_entries=1, timeout=60) == 1
            seconds.append(time.perf_counter() - started)
            overhead.append(seconds[-1] - revalued[-1])
    finally:
        live.portfolios_revalue = revalue
    return seconds, overhead


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--portfolios", type=int, default=5000)
    parser.add_argument("--watching", type=int, default=500, help="holders with a dashboard open")
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    user_ids = seed(args.portfolios)

    from core.consumers import user_group
    from marketdata.models import Quote
    from marketdata.tickstream import stream_client, tick_batches_append, tick_stream_key
    from marketdata.types import TickEvent
    from portfolios import live
    from portfolios.presence import presence_key, viewer_touch

    cache.delete_many([presence_key(user_id) for user_id in user_ids])  # marks left by an earlier run
    stream_client().delete(tick_stream_key())
    layer = get_channel_layer()
    listener = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user_ids[0]), listener)
    watching = user_ids[: args.watching]
    for user_id in watching:
        viewer_touch(user_id=user_id)
    live.portfolios_revalue(symbols={SYMBOL})  # warm-up: templates, connections
    some_watching = ticks(live, Quote, args.ticks, watching)
    fragment = async_to_sync(layer.receive)(listener)["html"]
    streamed, stream_overhead = through_the_stream(live, Quote, args.ticks, watching)  # before all watch
    all_watching = ticks(live, Quote, max(2, args.ticks // 2), user_ids)

    # The feed's whole share of the work: one append per publish, whoever consumes the ticks.
    tick = TickEvent(symbol=SYMBOL, price=Decimal("11"), previous_price=Decimal("10.9"), at=datetime.now(UTC))
    started = time.perf_counter()
    for _ in range(1000):
        tick_batches_append([[tick]])
    append_us = (time.perf_counter() - started) / 1000 * 1e6

    print(
        json.dumps(
            {
                "bench": "revaluation",
                "portfolios_holding_symbol": args.portfolios,
                "watching": args.watching,
                "seconds_per_tick_p50": round(statistics.median(some_watching), 3),
                "seconds_per_tick_max": round(max(some_watching), 3),
                "all_watching_seconds_per_tick_p50": round(statistics.median(all_watching), 3),
                "all_watching_ms_per_portfolio": round(
                    statistics.median(all_watching) / args.portfolios * 1000, 3
                ),
                "fragment_delivered": fragment.count("data-total") == 1,
                "through_stream_seconds_per_tick_p50": round(statistics.median(streamed), 3),
                "through_stream_overhead_ms_p50": round(statistics.median(stream_overhead) * 1000, 2),
                "render_threads": live.REVALUE_THREADS,
                "feed_stream_append_us": round(append_us, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
