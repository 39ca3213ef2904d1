"""Companion benchmark: 1,000 questions from 100 traders through the full path, then 50 at once against a
slow model server.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/companion.py [--users 100] [--questions 1000] [--concurrent 50] [--delay 0.5]

It uses a database of its own (<name>_bench_companion, recreated) and a Redis key prefix of its own.
Setup (not timed): the companion's test market and, per trader, the account the question set is written
for (tests/bot/seed.py: a portfolio built through the portfolio services, alerts, bots, orders).

1. Offline: the question set's questions (tests/bot/question_set.py) asked round robin by 100 traders,
   one web conversation each, through `companion_ask` with the offline provider: the conversation and
   question rows, the plan check, the provider's tool calls run under RLS as the trader, grounding, the
   metered use and the stored answer (history folding included, as conversations grow). Reports the
   time per question (p50 / p95 / p99) and SQL queries per question (p50 / p95 / max).
2. Remote: `--concurrent` traders ask at the same moment while the OpenAI provider (the official client)
   talks to a local Chat Completions server (tests/bot/openai_server.py) that waits `--delay` seconds
   before each answer: first a tool call (price of BTC/USDT), then an answer built from the tool result.
   A monitor samples pg_stat_activity for the runtime role: the peak number of connections and of
   connections idle in a transaction (a question waiting for the model holds neither).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

os.environ.update(
    bench_environment(
        "bench_companion",
        DJANGO_SECRET_KEY=os.environ.get(
            "DJANGO_SECRET_KEY", "bench-only-insecure-key-0123456789-abcdefghijklmnop"
        ),
        OPENAI_API_KEY="",
    )
)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(users: int) -> list:
    from billing.choices import PlanCode
    from tests.bot.seed import market_seed, trader_seed
    from tests.factories import SubscriptionFactory, UserFactory

    market = market_seed()
    traders = []
    for n in range(users):
        user = UserFactory(email=f"companion-bench-{n}@nexus.bench")
        trader_seed(user, instruments=market)
        SubscriptionFactory(user=user, plan=PlanCode.PRO)  # 1,000 AI queries a month: the run stays metered
        traders.append(user)
    return traders


def offline_run(traders: list, questions: int) -> dict:
    from bot.companion.service import companion_ask
    from tests.bot.question_set import QUESTIONS

    asked = [q for q in QUESTIONS if not q.after]
    for n, trader in enumerate(traders[:10]):  # warm-up, off the clock: imports, plans, connection
        companion_ask(
            user=trader,
            text=asked[n].text,
            surface="web",
            surface_key="web:warmup",
            idempotency_key=f"warm-{n}",
        )
    times, queries, statuses = [], [], {}
    for n in range(questions):
        trader = traders[n % len(traders)]
        question = asked[(n * 7 + n // len(traders)) % len(asked)]
        reset_queries()  # the query log keeps 9,000 entries: count from an empty one
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            reply = companion_ask(
                user=trader,
                text=question.text,
                surface="web",
                surface_key="web:bench",
                idempotency_key=f"bench-{n}",
            )
            times.append((time.perf_counter() - started) * 1000)
        queries.append(len(captured.captured_queries))
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
    return {
        "questions": questions,
        "users": len(traders),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "p99_ms": round(percentile(times, 0.99), 1),
        "max_ms": round(max(times), 1),
        "target_p95_ms": 150,
        "queries_p50": int(statistics.median(queries)),
        "queries_p95": int(percentile(queries, 0.95)),
        "queries_max": max(queries),
        "statuses": statuses,
    }


def _completion(message: dict, finish: str) -> dict:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 420, "completion_tokens": 24, "total_tokens": 444},
    }


def model_answer(body: dict) -> dict:
    """A model that looks up the BTC price, then states it as the tool returned it."""
    last = body["messages"][-1]
    if last["role"] != "tool":
        call = {
            "id": "call_bench_price",
            "type": "function",
            "function": {"name": "price", "arguments": json.dumps({"pair": "BTC/USDT"})},
        }
        return _completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")
    result = json.loads(last["content"])
    text = f"{result['pair']} is at {result['price']} {result['currency']} ({result['change_24h_pct']} over 24h)."
    return _completion({"role": "assistant", "content": text}, "stop")


def _connection_counts(stop: threading.Event, peaks: dict) -> None:
    role = settings.DB_APP_ROLE
    with connections["owner"].cursor() as cursor:
        while not stop.is_set():
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'idle in transaction') FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = %s",
                [role],
            )
            total, idle_in_transaction = cursor.fetchone()
            peaks["connections"] = max(peaks["connections"], total)
            peaks["idle_in_transaction"] = max(peaks["idle_in_transaction"], idle_in_transaction)
            time.sleep(0.01)
    connections["owner"].close()


@contextlib.contextmanager
def model_server(delay: float):
    """The recorded Chat Completions server (tests/bot/openai_server.py) in a process of its own, so that
    serving 50 requests does not compete with the questions for this process's interpreter."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-model", str(delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def serve_model(delay: float) -> None:
    from tests.bot.openai_server import RecordedOpenAIServer

    with RecordedOpenAIServer([model_answer], delay=delay, cycle=True) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the bench closes our stdin


def remote_run(traders: list, concurrent: int, delay: float) -> dict:
    from bot.companion.service import companion_ask

    with connections["owner"].cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    connection.close()
    results: list = []
    errors: list[str] = []
    barrier = threading.Barrier(concurrent)
    run = uuid.uuid4().hex[:8]

    def ask(n: int) -> None:
        try:
            barrier.wait()
            started = time.perf_counter()
            reply = companion_ask(
                user=traders[n % len(traders)],
                text="What's the BTC price?",
                surface="web",
                surface_key="web:remote",
                idempotency_key=f"remote-{run}-{n}",
            )
            results.append((reply.status, time.perf_counter() - started, reply.text))
        except Exception as exc:  # reported, not raised: the figure is how many got through
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        finally:
            connections.close_all()

    with model_server(delay) as base_url:
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "sk-bench", base_url
        settings.OPENAI_TIMEOUT_SECONDS, settings.OPENAI_MAX_RETRIES = 30.0, 0
        companion_ask(
            user=traders[-1],
            text="What's the BTC price?",
            surface="web",
            surface_key="web:remote",
            idempotency_key=f"remote-{run}-warmup",
        )  # the client and its HTTP pool, off the clock
        connection.close()
        stop, peaks = threading.Event(), {"connections": 0, "idle_in_transaction": 0}
        monitor = threading.Thread(target=_connection_counts, args=(stop, peaks))
        monitor.start()
        started = time.perf_counter()
        threads = [threading.Thread(target=ask, args=(n,)) for n in range(concurrent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        stop.set()
        monitor.join()
    settings.OPENAI_API_KEY = ""
    answered = [r for r in results if r[0] == "answered"]
    latencies = [r[1] * 1000 for r in results]
    return {
        "concurrent": concurrent,
        "model_delay_s": delay,
        "answered": len(answered),
        "other_statuses": sorted({r[0] for r in results} - {"answered"}),
        "errors": errors[:3],
        "wall_s": round(wall, 2),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_max_ms": round(max(latencies), 1) if latencies else None,
        "peak_db_connections": peaks["connections"],
        "peak_idle_in_transaction": peaks["idle_in_transaction"],
        "max_connections": max_connections,
        "answer_sample": answered[0][2] if answered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--serve-model", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model is not None:
        serve_model(args.serve_model)
        return

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    started = time.perf_counter()
    traders = seed(args.users)
    setup_seconds = time.perf_counter() - started
    with connections["owner"].cursor() as cursor:  # what autovacuum does on a live database
        cursor.execute("ANALYZE")
    offline = offline_run(traders, args.questions)
    remote = remote_run(traders, args.concurrent, args.delay) if args.concurrent else None
    print(
        json.dumps(
            {
                "bench": "companion",
                "offline": offline,
                "remote_concurrent": remote,
                "setup_seconds": round(setup_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
