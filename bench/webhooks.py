"""Stripe webhooks at the running endpoint: N distinct events, each delivered 3 times concurrently.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/webhooks.py [--events 1000] [--copies 3] [--clients 48] [--workers 4]

Uses a database of its own (<name>_bench_billing, recreated) and a Redis key prefix of its own. Starts
the real stack: daphne (config.asgi, dj-stripe's endpoint behind billing's wrapper) and a Celery worker
(billing.process_webhook_event) on Redis. The events are real subscription lifecycles (checkout, trial,
invoices, payment failures, cancellation: tests/billing/scenarios.py) of as many users as it takes,
built from Stripe's example objects and signed with the endpoint's secret. Every event is posted
`--copies` times at once; all events are shuffled, so each user's events also arrive out of order.

Reports the endpoint's p50/p99 latency, 4xx/5xx counts, how many events were stored and processed (must
be exactly N, each processed once), how long processing took, and whether every user whose whole
lifecycle was sent ended canceled with the right invoices. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

ENV = bench_environment("bench_billing")
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(events_wanted: int) -> tuple[list[dict], dict[int, object]]:
    """Users linked to Stripe customers, and their lifecycles' events (the last one possibly cut short)."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from billing.models import Subscription
    from core.rls import system_context
    from tests.billing.scenarios import DAY, lifecycle

    start = int(timezone.now().timestamp()) - 70 * DAY
    events: list[dict] = []
    lifecycles = {}
    with system_context(reason="bench: seed billing customers"):
        n = 0
        while len(events) < events_wanted:
            user = User.objects.create(email=f"billing{n}@bench.local", password=make_password(None))
            Subscription.objects.create(user=user, stripe_customer_id=f"cus_bench{n}")
            scenario = lifecycle(
                user_id=user.pk, email=user.email, customer_id=f"cus_bench{n}", start=start, tag=f"b{n}"
            )
            taken = scenario.events[: events_wanted - len(events)]
            events.extend(taken)
            if len(taken) == len(scenario.events):
                lifecycles[user.pk] = scenario
            n += 1
    return events, lifecycles


def start(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 - the process owns it until the end
    return subprocess.Popen(command, cwd=ROOT, env={**ENV, **env}, stdout=handle, stderr=subprocess.STDOUT)


def wait_for(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    sys.exit(f"daphne did not start: {log.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--clients", type=int, default=48, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)

    import redis

    from billing.models import Invoice, Subscription, WebhookEvent
    from billing.services import webhook_endpoint_ensure_local
    from core.rls import system_context
    from tests.billing.stripe_events import sign

    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(f"{settings.REDIS_KEY_PREFIX}:*"):
        client.delete(key)

    events, lifecycles = seed(args.events)
    port = free_port()
    endpoint = webhook_endpoint_ensure_local(
        secret=settings.STRIPE_WEBHOOK_SECRET, base_url=f"http://127.0.0.1:{port}"
    )
    logs = Path(tempfile.gettempdir())
    daphne_log, worker_log = logs / "bench_billing_daphne.log", logs / "bench_billing_worker.log"
    from config.webserver import default_db_pool_size

    # As config.webserver runs its daphne children in production: a pool of database connections per runtime
    # role (WEB_DB_POOL_SIZE) and at most that many requests in Django at once. Without it every one of the
    # 48 clients' requests held connections of its own and PostgreSQL ran out of its 100 (a 500 in a drill).
    daphne = start(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        daphne_log, DB_POOL_SIZE=str(default_db_pool_size()),
    )
    worker = start(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--concurrency",
            str(args.workers),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        worker_log,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", daphne, daphne_log)
        rng = random.Random(args.seed)
        order = list(events)
        rng.shuffle(order)
        bodies = [json.dumps(event).encode() for event in order]
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()

        def deliver(body: bytes) -> None:
            request = urllib.request.Request(  # noqa: S310 - loopback http
                endpoint.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign(body, secret=endpoint.secret),
                },
            )
            began = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 599
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            for body in bodies:
                for _ in range(args.copies):  # the copies of one event go out together
                    pool.submit(deliver, body)
        delivered = time.perf_counter() - began

        ids = [event["id"] for event in events]
        deadline = time.monotonic() + 600
        processed = 0
        while time.monotonic() < deadline:
            with system_context(reason="bench: count processed Stripe events"):
                processed = WebhookEvent.objects.filter(stripe_id__in=ids, processed_at__isnull=False).count()
            if processed >= len(ids):
                break
            time.sleep(0.2)
        all_done = time.perf_counter() - began

        with system_context(reason="bench: count stored Stripe events"):
            stored = WebhookEvent.objects.filter(stripe_id__in=ids).count()
            processed_more_than_once = WebhookEvent.objects.filter(stripe_id__in=ids, attempts__gt=1).count()
        right = 0
        with system_context(reason="bench: check final states"):
            for user_id in lifecycles:
                subscription = Subscription.objects.get(user_id=user_id)
                invoices = list(
                    Invoice.objects.filter(user_id=user_id)
                    .order_by("stripe_id")
                    .values_list("status", flat=True)
                )
                if (subscription.status, subscription.plan, invoices) == (
                    "canceled",
                    "pro",
                    ["paid", "paid", "open"],
                ):
                    right += 1
    finally:
        daphne.terminate()
        worker.terminate()
        daphne.wait(timeout=15)
        worker.wait(timeout=30)

    print(
        json.dumps(
            {
                "bench": "webhooks",
                "events": len(events),
                "deliveries": sum(statuses.values()),
                "copies_per_event": args.copies,
                "clients": args.clients,
                "celery_workers": args.workers,
                "stored": stored,
                "processed": processed,
                "processed_more_than_once": processed_more_than_once,
                "endpoint_p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
                "endpoint_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                "status_counts": {str(k): v for k, v in sorted(statuses.items())},
                "5xx": sum(v for k, v in statuses.items() if k >= 500),
                "delivery_seconds": round(delivered, 2),
                "deliveries_per_second": round(sum(statuses.values()) / delivered, 1),
                "all_processed_seconds": round(all_done, 2),
                "complete_lifecycles": len(lifecycles),
                "final_state_right": right,
            }
        )
    )


if __name__ == "__main__":
    main()
