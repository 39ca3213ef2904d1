"""Research search benchmark: full-text search over 100,000 published notes.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/research_search.py [--notes 100000] [--queries 200]

It uses a database of its own (<name>_bench_research, recreated), and:

1. bulk-inserts the notes in the system context, as the publish service writes them (not timed): 100
   authors; bodies of everyday text (a 20,000-word vocabulary with Zipf frequencies) each with two to four
   of 50 trading words, titles led by one; tags; two instruments. The search vector is filled by the
   table's trigger, as for every write;
2. times `research.selectors.note_search` (ranked with ts_rank_cd, snippets with ts_headline, the top
   20) for random one- and two-word queries of trading words (each in about 6% of the notes), as a signed-in reader on a paid plan would search, with a
   tag or instrument filter on every fourth query.

Prints one JSON line: search p50 / p95 / p99 in milliseconds (target p95 < 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

ENV = bench_environment("bench_research")
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

WORDS = ["bitcoin", "breakout", "support", "resistance", "halving", "miners", "funding", "liquidation", "rally", "capitulation", "volume", "trend", "range", "reversal", "momentum", "divergence", "accumulation", "distribution", "squeeze", "volatility", "macro", "rates", "inflation", "dollar", "liquidity", "options", "expiry", "basis", "premium", "spot", "futures", "whale", "exchange", "outflow", "inflow", "stablecoin", "etf", "approval", "regulation", "hashrate", "difficulty", "cycle", "bottom", "top", "channel", "wedge", "triangle", "flag"]
TAGS = ["macro", "breakout", "swing", "intraday", "onchain", "options", "cycles", "levels"]
SYMBOLS = ["BTC/USDT", "BTC/USDC"]
AUTHORS = 100


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(count: int, rng: random.Random):
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from billing.choices import PlanCode, SubscriptionStatus
    from billing.models import Subscription
    from core.rls import system_context
    from marketdata.models import Instrument
    from research.models import PublishedNote

    # Everyday text: a 20,000-word vocabulary used with Zipf frequencies, plus two to four of the trading
    # words in each note, so a query's word is in a few percent of the notes, as in real research.
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(20_000)]
    cumulative, total = [], 0.0
    for rank in range(len(vocabulary)):
        total += 1 / (rank + 1)
        cumulative.append(total)

    def words(n: int) -> str:
        return " ".join(rng.choices(vocabulary, cum_weights=cumulative, k=n))

    start = datetime(2023, 3, 1, tzinfo=UTC)
    with system_context(reason="bench: seed published research"):
        Instrument.objects.bulk_create([Instrument(symbol=s, base="BTC", quote=s[4:]) for s in SYMBOLS])
        reader = User.objects.create(email="reader@bench.local", password=make_password(None))
        Subscription.objects.create(
            user=reader, plan=PlanCode.PRO, status=SubscriptionStatus.ACTIVE, stripe_customer_id="cus_bench",
            stripe_subscription_id="sub_bench", state_at=start,
        )
        rows = []
        for n in range(count):
            at = start + timedelta(minutes=n)
            sentences = [words(rng.randint(8, 16)) for _ in range(rng.randint(4, 12))]
            for topic in rng.sample(WORDS, rng.randint(2, 4)):
                sentences[rng.randrange(len(sentences))] += f" {topic}"
            body = ". ".join(sentence.capitalize() for sentence in sentences) + "."
            title = f"{rng.choice(WORDS)} {words(rng.randint(2, 5))}".capitalize()
            rows.append(
                PublishedNote(
                    note_id=n + 1, author_id=1 + n % AUTHORS, author_name=f"Author {n % AUTHORS}",
                    title=title, body_html=f"<p>{body}</p>", body_text=body,
                    tags=rng.sample(TAGS, rng.randint(0, 3)), symbols=[rng.choice(SYMBOLS)], audience="members",
                    first_published_at=at, published_at=at, updated_at=at,
                )
            )
            if len(rows) == 10_000:
                PublishedNote.objects.bulk_create(rows)
                rows = []
        PublishedNote.objects.bulk_create(rows)
    with system_context(reason="bench: statistics"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE research_publishednote")
    return reader


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    started = time.perf_counter()
    reader = seed(args.notes, rng)
    seed_seconds = time.perf_counter() - started

    from core.rls import tenant
    from research.selectors import note_search

    samples, results = [], []
    for n in range(args.queries + 10):
        query = " ".join(rng.sample(WORDS, rng.choice([1, 1, 2])))
        filters = {}
        if n % 4 == 1:
            filters["tag"] = rng.choice(TAGS)
        elif n % 4 == 3:
            filters["symbol"] = rng.choice(SYMBOLS)
        with tenant(reader.pk):
            began = time.perf_counter()
            hits = note_search(user=reader, query=query, **filters)
            elapsed = time.perf_counter() - began
        if n >= 10:  # the first queries warm the caches
            samples.append(elapsed)
            results.append(len(hits))
    print(json.dumps({
        "bench": "research_search",
        "notes": args.notes,
        "queries": args.queries,
        "seed_s": round(seed_seconds, 1),
        "search_p50_ms": round(percentile(samples, 0.50) * 1000, 2),
        "search_p95_ms": round(percentile(samples, 0.95) * 1000, 2),
        "search_p99_ms": round(percentile(samples, 0.99) * 1000, 2),
        "mean_results": round(sum(results) / len(results), 1),
        "target_p95_ms": 50,
    }))


if __name__ == "__main__":
    main()
