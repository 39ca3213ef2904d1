"""Research search benchmark: full-text search over 100,000 published notes.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/research_search.py [--notes 100000] [--queries 200]

It uses a database of its own (<name>_bench_research, recreated), and:

1. seeds the notes with one COPY on the owner connection (timed as `seed_s`, with VACUUM ANALYZE): 100
   authors; bodies of 60 to 150 words drawn from a 20,000-word vocabulary with Zipf frequencies (the
   commonest words are in most notes, most words in few), each with two to four of 48 trading words (each
   in about 6% of the notes) and, in one note of three, one of 8 two-word trading phrases; titles led by a
   trading word; up to three tags; one instrument. The table's triggers fill `search_vector` and
   `rank_vector` and the search side table `research_publishednotesearch`, as for every write (the bench
   checks that every row has both vectors and a search row); both tables are VACUUM ANALYZEd;
2. times `research.selectors.note_search` (the one code path pages and the API use: top 20, ranked, with
   snippets) as a signed-in reader on a paid plan, round robin over five kinds of query: a common word (a
   trading word), a rare word (a vocabulary word in about 0.1-0.5% of the notes), a two-word phrase
   ("short squeeze"), a common word with a tag filter and a common word with an instrument filter;
3. EXPLAINs one query of each kind and says whether it matched through the GIN index on the search side
   table's search_vector.

Prints one JSON line: p50 / p95 / p99 in milliseconds per kind and overall, the mean number of matching
notes per kind (counted outside the timing), index use per kind, and whether p95 < 50 ms overall.
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
PHRASES = ["short squeeze", "funding rate", "open interest", "higher low", "lower high", "fair value", "order book", "risk appetite"]
TAGS = ["macro", "breakout", "swing", "intraday", "onchain", "options", "cycles", "levels"]
SYMBOLS = ["BTC/USDT", "BTC/USDC"]
AUTHORS = 100
VOCABULARY = 20_000
KINDS = ["common_word", "rare_word", "phrase", "tag_filter", "symbol_filter"]
TARGET_P95_MS = 50
COLUMNS = (
    "note_id", "author_id", "author_name", "title", "body_html", "body_text", "tags", "symbols", "thesis_symbol",
    "chart_symbol", "audience", "first_published_at", "published_at", "updated_at", "direction", "chart_interval",
    "chart_alt", "outcome",
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def vocabulary(rng: random.Random) -> list[str]:
    """Pronounceable made-up words (no trading word among them), the commonest first."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    found: list[str] = []
    seen = set(WORDS) | {w for p in PHRASES for w in p.split()}
    while len(found) < VOCABULARY:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            found.append(word)
    return found


def seed(count: int, rng: random.Random, vocab: list[str]):
    from django.contrib.auth.hashers import make_password
    from django.db import connections

    from accounts.models import User
    from billing.choices import PlanCode, SubscriptionStatus
    from billing.models import Subscription
    from core.rls import system_context
    from marketdata.models import Instrument

    cumulative, total = [], 0.0
    for rank in range(len(vocab)):
        total += 1 / (rank + 1)
        cumulative.append(total)

    start = datetime(2023, 3, 1, tzinfo=UTC)
    with system_context(reason="bench: seed published research"):
        Instrument.objects.bulk_create([Instrument(symbol=s, base="BTC", quote=s[4:]) for s in SYMBOLS])
        reader = User.objects.create(email="reader@bench.local", password=make_password(None))
        Subscription.objects.create(
            user=reader, plan=PlanCode.PRO, status=SubscriptionStatus.ACTIVE, stripe_customer_id="cus_bench",
            stripe_subscription_id="sub_bench", state_at=start,
        )
    copy_sql = f"COPY research_publishednote ({', '.join(COLUMNS)}) FROM STDIN"
    with connections["owner"].cursor() as cursor, cursor.copy(copy_sql) as copy:
        for n in range(count):
            at = start + timedelta(minutes=n)
            body_words = rng.choices(vocab, cum_weights=cumulative, k=rng.randint(60, 150))
            for topic in rng.sample(WORDS, rng.randint(2, 4)):
                body_words.insert(rng.randrange(len(body_words) + 1), topic)
            if rng.random() < 1 / 3:
                body_words.insert(rng.randrange(len(body_words) + 1), rng.choice(PHRASES))
            sentences = [" ".join(body_words[i:i + 12]).capitalize() for i in range(0, len(body_words), 12)]
            body = ". ".join(sentences) + "."
            title = " ".join([rng.choice(WORDS), *rng.choices(vocab, cum_weights=cumulative, k=rng.randint(2, 5))])
            copy.write_row((
                n + 1, 1 + n % AUTHORS, f"Author {n % AUTHORS}", title.capitalize(), f"<p>{body}</p>", body,
                rng.sample(TAGS, rng.randint(0, 3)), [rng.choice(SYMBOLS)], "", "", "members", at, at, at,
                "", "", "", "",
            ))
    with connections["owner"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE research_publishednote")
        cursor.execute("VACUUM ANALYZE research_publishednotesearch")
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE search_vector IS NULL OR rank_vector IS NULL),"
            " (SELECT count(*) FROM research_publishednotesearch) FROM research_publishednote"
        )
        rows, unfilled, searchable = cursor.fetchone()
    # the triggers filled every vector and every search row
    assert rows == count and unfilled == 0 and searchable == count, (rows, unfilled, searchable)  # noqa: S101
    return reader


def queries(rng: random.Random, vocab: list[str]) -> dict[str, list[tuple[str, dict]]]:
    rare = vocab[3_000:8_000]
    per_kind: dict[str, list[tuple[str, dict]]] = {kind: [] for kind in KINDS}
    for _ in range(200):
        per_kind["common_word"].append((rng.choice(WORDS), {}))
        per_kind["rare_word"].append((rng.choice(rare), {}))
        per_kind["phrase"].append((f'"{rng.choice(PHRASES)}"', {}))
        per_kind["tag_filter"].append((rng.choice(WORDS), {"tag": rng.choice(TAGS)}))
        per_kind["symbol_filter"].append((rng.choice(WORDS), {"symbol": rng.choice(SYMBOLS)}))
    return per_kind


def uses_search_index(reader, query: str, filters: dict) -> bool:
    """EXPLAIN the query note_search matches with (with note_search's planner setting): does the plan read
    the GIN index on the search side table's search_vector?"""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.rls import tenant
    from research.selectors import note_search

    with tenant(reader.pk), CaptureQueriesContext(connection) as captured:
        note_search(user=reader, query=query, **filters)
        matching = [q["sql"] for q in captured.captured_queries if "@@" in q["sql"] and "search_vector" in q["sql"]]
        if not matching:
            return False
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('enable_seqscan', 'off', true)")
            cursor.execute("EXPLAIN (FORMAT JSON) " + matching[0])
            plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node: dict) -> bool:
        if node.get("Index Name") == "research_search_vector":
            return True
        return any(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


def match_count(reader, query: str, filters: dict) -> int:
    from core.rls import tenant
    from research.selectors import published_search_matches

    with tenant(reader.pk):
        return published_search_matches(user=reader, query=query, **filters).count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="timed queries, spread over the five kinds")
    args = parser.parse_args()
    rng = random.Random(7)

    began = time.perf_counter()
    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    print(f"database ready in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    vocab = vocabulary(rng)
    started = time.perf_counter()
    reader = seed(args.notes, rng, vocab)
    seed_seconds = time.perf_counter() - started
    print(f"seeded {args.notes} notes in {seed_seconds:.0f} s", file=sys.stderr)

    from core.rls import tenant
    from research.selectors import note_search

    per_kind = queries(rng, vocab)
    warmup = 2
    rounds = max(1, args.queries // len(KINDS))
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for n in range(rounds + warmup):
        for kind in KINDS:
            query, filters = per_kind[kind][n]
            with tenant(reader.pk):
                began = time.perf_counter()
                note_search(user=reader, query=query, **filters)
                elapsed = time.perf_counter() - began
            if n >= warmup:  # the first rounds warm the caches
                samples[kind].append(elapsed * 1000)

    def figures(values: list[float]) -> dict[str, float]:
        return {f"p{q}": round(percentile(values, q / 100), 2) for q in (50, 95, 99)}

    every = [v for values in samples.values() for v in values]
    result = {
        "bench": "research_search",
        "notes": args.notes,
        "seed_s": round(seed_seconds, 1),
        "queries": len(every),
        "queries_ms": {kind: figures(samples[kind]) for kind in KINDS},
        "overall_ms": figures(every),
        "mean_matches": {
            kind: round(sum(match_count(reader, *per_kind[kind][n]) for n in range(5)) / 5) for kind in KINDS
        },
        "search_index_used": {kind: uses_search_index(reader, *per_kind[kind][0]) for kind in KINDS},
        "target_p95_ms": TARGET_P95_MS,
    }
    result["target_met"] = result["overall_ms"]["p95"] < TARGET_P95_MS
    print(json.dumps(result))


if __name__ == "__main__":
    main()
