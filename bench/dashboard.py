"""Dashboard render benchmark: a portfolio of 200 positions and 10,000 transactions.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/dashboard.py [--positions 200] [--transactions 10000] [--renders 60]

It uses a database of its own (<name>_bench_portfolios, recreated) and a Redis key prefix of its own.
Setup (not timed): 200 instruments with live quotes, one trader, 10,000 transactions applied through
the same FIFO service the pages use, and a year of daily snapshots. Then it renders GET /dashboard/
through the whole Django stack (middleware, tenant transaction, template) in this process and reports
the server time per render (p50 / p95 / max) and the SQL queries per render, for this portfolio and for
one ten times smaller (equal counts: no N+1). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
        "bench_portfolios",
        DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bench-only-insecure-key-0123456789-abcdefghijklmnop"),
        DJANGO_ALLOWED_HOSTS="testserver,localhost,127.0.0.1",
    )
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

QUOTE = "USDT"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(*, positions: int, transactions: int, label: str, rng: random.Random):
    """One trader whose portfolio holds `positions` instruments after `transactions` trades."""
    from accounts.models import User
    from core.rls import system_context, tenant
    from marketdata.models import Instrument, Quote
    from portfolios.models import Snapshot
    from portfolios.services import portfolio_create, transaction_build, transactions_apply_many

    now = datetime.now(UTC)
    with system_context(reason="bench: instruments and quotes"):
        instruments = []
        for n in range(positions):
            instrument, _ = Instrument.objects.get_or_create(
                symbol=f"P{n:03d}/{QUOTE}",
                defaults={"base": f"P{n:03d}", "quote": QUOTE, "price_precision": 4},
            )
            instruments.append(instrument)
            price = Decimal(rng.randint(100, 500_000)) / 100
            Quote.objects.update_or_create(
                instrument=instrument,
                defaults={
                    "price": price,
                    "open_24h": price * Decimal("0.98"),
                    "source": "bench",
                    "at": now,
                    "updated_at": now,
                },
            )
        trader = User.objects.create_user(email=f"{label}@bench.nexus")  # logs in with force_login
        prices = {i.pk: Quote.objects.get(instrument=i).price for i in instruments}
    with tenant(trader.pk):
        portfolio = portfolio_create(user=trader, name="Bench", base_currency=QUOTE)
        start = now - timedelta(days=365)
        step = timedelta(days=365) / transactions
        held = {i.pk: Decimal(0) for i in instruments}
        built = [
            transaction_build(
                portfolio=portfolio,
                kind="deposit",
                currency=QUOTE,
                quantity=Decimal("1e9"),
                executed_at=start,
            )
        ]
        for n in range(transactions - 1):
            instrument = instruments[n % positions] if n < positions else rng.choice(instruments)
            price = (prices[instrument.pk] * Decimal(rng.randint(80, 120)) / 100).quantize(Decimal("0.0001"))
            if n < positions or held[instrument.pk] < 2 or rng.random() < 0.6:
                kind, quantity = "buy", Decimal(rng.randint(1, 40)) / 10
            else:
                kind, quantity = "sell", (held[instrument.pk] / 2).quantize(Decimal("0.1"))
            held[instrument.pk] += quantity if kind == "buy" else -quantity
            built.append(
                transaction_build(
                    portfolio=portfolio,
                    kind=kind,
                    instrument=instrument,
                    quantity=quantity,
                    price=price,
                    fee=(quantity * price / 1000).quantize(Decimal("0.0001")),
                    fee_currency=QUOTE,
                    executed_at=start + step * (n + 1),
                )
            )
        problems = transactions_apply_many(portfolio=portfolio, transactions=built, dry_run=False)
        assert not problems, problems[:3]
        value = Decimal("1e9")
        Snapshot.objects.bulk_create(
            [
                Snapshot(
                    user_id=trader.pk,
                    portfolio=portfolio,
                    date=date.today() - timedelta(days=d),
                    taken_at=now - timedelta(days=d - 1),
                    value=value + d * 1000,
                    net_flow=0,
                    flows={QUOTE: "1000000000"},
                )
                for d in range(365, 0, -1)
            ]
        )
    return trader, portfolio


def render_times(trader, renders: int) -> tuple[list[float], list[int]]:
    from core.rls import tenant

    client = Client()
    with tenant(trader.pk):  # signing in updates last_login, a row only its owner may write
        client.force_login(trader)
    for _ in range(5):  # warm-up: template loading, connection, caches
        assert client.get("/dashboard/").status_code == 200
    times, queries = [], []
    for _ in range(renders):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/dashboard/")
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
        queries.append(len(captured.captured_queries))
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=200)
    parser.add_argument("--transactions", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=60)
    args = parser.parse_args()

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    rng = random.Random(42)
    started = time.perf_counter()
    trader, portfolio = seed(positions=args.positions, transactions=args.transactions, label="large", rng=rng)
    setup_seconds = time.perf_counter() - started
    small, _ = seed(
        positions=max(1, args.positions // 10),
        transactions=max(2, args.transactions // 10),
        label="small",
        rng=rng,
    )
    with connections["owner"].cursor() as cursor:  # what autovacuum does on a live database
        cursor.execute("ANALYZE")

    times, queries = render_times(trader, args.renders)
    _, small_queries = render_times(small, 10)
    ms = [t * 1000 for t in times]
    print(
        json.dumps(
            {
                "bench": "dashboard",
                "positions": args.positions,
                "transactions": args.transactions,
                "snapshots": 365,
                "renders": args.renders,
                "p50_ms": round(statistics.median(ms), 1),
                "p95_ms": round(percentile(ms, 0.95), 1),
                "max_ms": round(max(ms), 1),
                "target_p95_ms": 150,
                "queries_per_render": sorted(set(queries)),
                "queries_per_render_10x_smaller": sorted(set(small_queries)),
                "setup_seconds_10k_transactions_fifo": round(setup_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
