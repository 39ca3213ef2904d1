"""Alert evaluation benchmark: 100,000 armed alerts across 20 symbols, and tick-to-toast latency.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/alerts.py [--alerts 100000] [--ticks 5000] [--toasts 300] [--crowd 1000] \
        [--load-rate 50]

It uses a database of its own (<name>_bench_alerts, recreated) and a Redis key prefix of its own, and:

1. bulk-inserts the alerts (1,000 traders, 20 symbols, price above / below / crossing within +-10% of
   each symbol's price; not timed), loads them into the tick evaluator from PostgreSQL (timed), then
   times `Evaluator.candidates()` (finding the alerts a tick fires) for random-walk ticks, p50 / p99,
   against the naive way that is still sensible: the alerts grouped by symbol beforehand (not timed),
   each tick scanning its own symbol's alerts only (one twentieth of them), not every alert;
2. starts daphne (the real ASGI stack) on a free port and the `alerts` tick consumer (`manage.py
   run_tick_consumer alerts`) as processes of their own, opens the per-user WebSocket as a logged-in
   trader with a re-arming alert (cooldown 0) on its own symbol, and for each sample appends a crossing
   tick to the Redis tick stream as the feed does (`marketdata.tickstream.tick_batches_append`) and
   times until the toast frame arrives: tick stream, consumer process, firing recorded in PostgreSQL,
   notification, channel layer, WebSocket.
   First alone (`tick_to_toast_alone_*`: one alert fires, nothing else runs; after each sample the bench
   waits, off the clock, until the consumer has acknowledged every entry), then under load
   (`tick_to_toast_under_load_*`): `--crowd` other traders' re-arming alerts on the same symbol are
   bulk-inserted and announced on the alert change stream (alerts/changes.py), which the running consumer
   reads before its next batch (two warm-up ticks off the clock); they fire on the same tick as the
   trader's (their levels spread around the trader's, so about half fire before it), while a thread
   appends `--load-rate` random-walk ticks a second on the 20 symbols to the same tick stream, firing
   their alerts in the same consumer. `tick_to_last_firing_*` is the time until the last alert of a
   crowded tick was recorded (its toast follows at once): what the last trader of the crowd waits.
   A toast, or the wait for the consumer to acknowledge, taking longer than 60 s (120 s for the final
   catch-up) ends the measuring early and is reported as `a_toast_took_over_timeout`, not a crash.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

ENV = bench_environment("bench_alerts")
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

SYMBOLS = [f"B{n:02d}/USDT" for n in range(20)]
LATENCY_SYMBOL = "LAT/USDT"
TRADERS = 1000
TOAST_TIMEOUT_S = 60


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


def seed(count: int, rng: random.Random) -> dict[str, Decimal]:
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from alerts.choices import AlertKind
    from alerts.models import Alert
    from core.rls import system_context
    from marketdata.models import Instrument

    prices = {symbol: Decimal(100 * (n + 1)) for n, symbol in enumerate(SYMBOLS)}
    with system_context(reason="bench: seed traders and alerts"):
        Instrument.objects.bulk_create(
            [Instrument(symbol=s, base=s.split("/")[0], quote="USDT") for s in [*SYMBOLS, LATENCY_SYMBOL]]
        )
        instruments = {i.symbol: i for i in Instrument.objects.all()}
        User.objects.bulk_create(
            [User(email=f"bench{n}@bench.local", password=make_password(None)) for n in range(TRADERS)],
            batch_size=1000,
        )
        users = list(User.objects.values_list("pk", flat=True))
        kinds = [AlertKind.PRICE_ABOVE] * 4 + [AlertKind.PRICE_BELOW] * 4 + [AlertKind.PRICE_CROSS] * 2
        rows = []
        for n in range(count):
            symbol = SYMBOLS[n % len(SYMBOLS)]
            level = prices[symbol] * Decimal(str(round(rng.uniform(0.9, 1.1), 6)))
            rows.append(
                Alert(
                    user_id=users[n % len(users)],
                    kind=rng.choice(kinds),
                    instrument=instruments[symbol],
                    threshold=level.quantize(Decimal("0.01")),
                )
            )
        Alert.objects.bulk_create(rows, batch_size=5000)
    return prices


def bench_find(prices: dict[str, Decimal], ticks: int, naive_ticks: int, rng: random.Random) -> dict:
    from alerts.crossing import crosses
    from alerts.evaluator import Evaluator
    from marketdata.types import TickEvent

    evaluator = Evaluator(candles=lambda symbol, minutes: [])
    started = time.perf_counter()
    evaluator.load()
    load_seconds = time.perf_counter() - started

    now = datetime.now(UTC)
    current = dict(prices)
    at = now
    stream: list[TickEvent] = []
    for _ in range(ticks):
        symbol = rng.choice(SYMBOLS)
        previous = current[symbol]
        # A random walk of up to +-0.2% per published tick (coalesced ticks move a little at a time).
        price = (previous * Decimal(str(1 + rng.uniform(-0.002, 0.002)))).quantize(Decimal("0.01"))
        current[symbol] = price
        at += timedelta(milliseconds=250)
        stream.append(TickEvent(symbol=symbol, price=price, previous_price=previous, at=at))

    timings, fired = [], []
    for tick in stream:
        t0 = time.perf_counter()
        found = evaluator.candidates(tick, now=now)
        timings.append(time.perf_counter() - t0)
        fired.append(len(found))

    by_series: dict = {}
    for entry in evaluator.index.entries():
        by_series.setdefault(entry.series, []).append(entry)

    def naive(tick):
        return [
            e
            for e in by_series.get(("price", tick.symbol), ())
            if e.live_at(now)
            and any(crosses(d, e.threshold, tick.previous_price, tick.price) for d in e.directions)
        ]

    naive_timings = []
    for tick in stream[:naive_ticks]:
        t0 = time.perf_counter()
        found = naive(tick)
        naive_timings.append(time.perf_counter() - t0)
        assert {e.alert_id for e in found} == {c.entry.alert_id for c in evaluator.candidates(tick, now=now)}

    refresh = []
    for _ in range(200):
        t0 = time.perf_counter()
        evaluator.refresh()
        refresh.append(time.perf_counter() - t0)
    index_p50, naive_p50 = statistics.median(timings), statistics.median(naive_timings)
    return {
        "armed_alerts": len(evaluator.index),
        "symbols": len(SYMBOLS),
        "load_from_postgres_s": round(load_seconds, 3),
        "find_ticks": len(timings),
        "find_p50_ms": ms(index_p50),
        "find_p99_ms": ms(percentile(timings, 0.99)),
        "find_max_ms": ms(max(timings)),
        "fired_per_tick_mean": round(statistics.mean(fired), 2),
        "naive_ticks": len(naive_timings),
        "naive_scans_the_symbols_alerts": round(
            statistics.mean(len(by_series.get(("price", t.symbol), ())) for t in stream[:naive_ticks]), 1
        ),
        "naive_p50_ms": ms(naive_p50),
        "naive_p99_ms": ms(percentile(naive_timings, 0.99)),
        "naive_over_index_p50": round(naive_p50 / index_p50, 1),
        "change_stream_check_p50_ms": ms(statistics.median(refresh)),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310 - loopback
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daphne did not start") from None
            time.sleep(0.2)


def start_alerts_consumer() -> subprocess.Popen:
    """`manage.py run_tick_consumer alerts`, ready: its index loaded and a first batch handled."""
    from marketdata.tickstream import stream_client, tick_batches_append, tick_stream_key
    from marketdata.types import TickEvent

    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_tick_consumer", "alerts", "--consumer", "bench"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (stream_client().exists(tick_stream_key()) and stream_client().xinfo_groups(tick_stream_key())):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the alerts tick consumer did not start")
        time.sleep(0.1)
    probe = TickEvent(symbol="PROBE/USDT", price=Decimal(1), previous_price=Decimal(1), at=datetime.now(UTC))
    tick_batches_append([[probe]])
    try:
        wait_acknowledged(timeout=60)
    except RuntimeError:
        process.kill()
        raise
    return process


def wait_acknowledged(timeout: float = 10) -> None:
    """Until the consumer has handled and acknowledged every entry (not timed)."""
    from marketdata.tickstream import stream_client, tick_stream_key

    client, key = stream_client(), tick_stream_key()
    deadline = time.monotonic() + timeout
    while True:
        (group,) = client.xinfo_groups(key)
        if (
            group["pending"] == 0
            and group["last-delivered-id"] == client.xinfo_stream(key)["last-generated-id"]
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the alerts tick consumer fell behind")
        time.sleep(0.002)


def crowd_add(count: int) -> int:
    """`count` other traders' re-arming alerts crossing LAT/USDT around 100 (99.6 .. 100.4), bulk-inserted,
    then announced on the alert change stream (bulk_create sends no announcement of its own): the running
    consumer re-reads them before its next batch, as it does for any alert written elsewhere."""
    from accounts.models import User
    from alerts.changes import alert_changes_publish
    from alerts.choices import AlertKind
    from alerts.models import Alert
    from core.rls import system_context
    from marketdata.models import Instrument

    with system_context(reason="bench: a crowd of alerts on the latency symbol"):
        instrument = Instrument.objects.get(symbol=LATENCY_SYMBOL)
        users = list(User.objects.filter(email__startswith="bench").values_list("pk", flat=True))
        created = Alert.objects.bulk_create(
            [
                Alert(
                    user_id=users[n % len(users)],
                    kind=AlertKind.PRICE_CROSS,
                    instrument=instrument,
                    threshold=(Decimal("99.6") + Decimal("0.8") * n / max(1, count - 1)).quantize(
                        Decimal("0.01")
                    ),
                    repeat=True,
                    cooldown=timedelta(0),
                )
                for n in range(count)
            ],
            batch_size=5000,
        )
    alert_changes_publish([alert.pk for alert in created])  # after the commit, as the services do
    return count


def background_ticks(prices: dict[str, Decimal], rate: float, stop: threading.Event, sent: list[int]) -> None:
    """Random-walk ticks on the bench symbols, `rate` a second, appended to the tick stream as the feed does."""
    from marketdata.tickstream import tick_batches_append
    from marketdata.types import TickEvent

    rng = random.Random(11)
    current = dict(prices)
    interval, due = 1 / rate, time.monotonic()
    while not stop.is_set():
        symbol = rng.choice(SYMBOLS)
        previous = current[symbol]
        current[symbol] = (previous * Decimal(str(1 + rng.uniform(-0.002, 0.002)))).quantize(Decimal("0.01"))
        tick = TickEvent(symbol=symbol, price=current[symbol], previous_price=previous, at=datetime.now(UTC))
        tick_batches_append([[tick]])
        sent[0] += 1
        due += interval
        stop.wait(max(0.0, due - time.monotonic()))


def bench_toasts(samples: int, *, crowd: int, load_rate: float, prices: dict[str, Decimal]) -> dict:
    import aiohttp
    from django.conf import settings
    from django.db.models import Max
    from django.test import Client

    from accounts.models import User
    from alerts.choices import AlertKind
    from alerts.models import AlertFiring
    from alerts.services import alert_create
    from core.rls import system_context, tenant
    from marketdata.tickstream import tick_batches_append
    from marketdata.types import TickEvent

    with system_context(reason="bench: a trader signs up"):
        trader = User.objects.create_user(email="toast@bench.local", password=None)
    alert_create(
        user=trader,
        kind=AlertKind.PRICE_CROSS,
        symbol=LATENCY_SYMBOL,
        threshold="100",
        repeat=True,
        cooldown=timedelta(0),
    )
    client = Client()
    with tenant(trader.pk):  # signing in updates last_login, a row only its owner may write
        client.force_login(trader)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value

    port = free_port()
    daphne = start_daphne(port)
    try:
        consumer = start_alerts_consumer()
    except RuntimeError:
        daphne.terminate()
        raise
    frames: queue.Queue[float] = queue.Queue()
    opened = threading.Event()
    stop = threading.Event()

    async def listen() -> None:
        async with (
            aiohttp.ClientSession(cookies={settings.SESSION_COOKIE_NAME: session}) as http,
            http.ws_connect(f"ws://127.0.0.1:{port}/ws/user/", origin=f"http://127.0.0.1:{port}") as ws,
        ):
            opened.set()
            while not stop.is_set():
                try:
                    message = await ws.receive(timeout=0.5)
                except TimeoutError:
                    continue
                if message.type == aiohttp.WSMsgType.TEXT and 'class="toast"' in message.data:
                    frames.put(time.perf_counter())
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return

    price = Decimal("99.5")
    timed_out = False

    def measure(count: int, *, warmup: int, idle_between: bool) -> tuple[list[float], dict[str, float]]:
        """Tick-to-toast of `count` crossing ticks; also each tick's occurrence key and wall time sent.
        With `idle_between`, waits (off the clock) until the consumer has acknowledged everything after
        each. Stops early when a toast, or that wait, takes over TOAST_TIMEOUT_S (the consumer is not
        keeping up)."""
        nonlocal price, timed_out
        latencies: list[float] = []
        sent_at: dict[str, float] = {}
        for n in range(count + warmup):
            previous, price = price, Decimal("100.5") if price < 100 else Decimal("99.5")
            tick = TickEvent(
                symbol=LATENCY_SYMBOL, price=price, previous_price=previous, at=datetime.now(UTC)
            )
            wall, sent = time.time(), time.perf_counter()
            tick_batches_append([[tick]])
            try:
                arrived = frames.get(timeout=TOAST_TIMEOUT_S)
            except queue.Empty:
                timed_out = True
                break
            if n >= warmup:
                latencies.append(arrived - sent)
                sent_at[f"{tick.symbol}@{tick.at.isoformat()}={tick.price}"] = wall
            if idle_between:
                try:
                    wait_acknowledged(TOAST_TIMEOUT_S)
                except RuntimeError:
                    timed_out = True
                    break
        return latencies, sent_at

    listener = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    listener.start()
    load_stop, load_sent = threading.Event(), [0]
    load = threading.Thread(
        target=background_ticks, args=(prices, load_rate, load_stop, load_sent), daemon=True
    )
    try:
        if not opened.wait(10):
            raise RuntimeError("the WebSocket did not open")
        alone, _ = measure(samples, warmup=5, idle_between=True)
        crowd_add(crowd)
        measure(0, warmup=2, idle_between=True)  # the consumer re-reads the crowd, off the clock
        load.start()
        loaded_since = datetime.now(UTC)
        under_load, sent_at = measure(samples, warmup=2, idle_between=False)
        load_stop.set()
        load.join(10)
        loaded_seconds = (datetime.now(UTC) - loaded_since).total_seconds()
        try:  # every crowded and background tick handled before the firings are read
            wait_acknowledged(120)
        except RuntimeError:
            timed_out = True
    finally:
        load_stop.set()
        stop.set()
        listener.join(5)
        for process in (consumer, daphne):
            process.terminate()
            process.wait(10)
    with system_context(reason="bench: when each crowded tick's last alert fired"):
        last = dict(
            AlertFiring.objects.filter(occurrence_key__in=list(sent_at))
            .values("occurrence_key")
            .annotate(last=Max("fired_at"))
            .values_list("occurrence_key", "last")
        )
        fired = AlertFiring.objects.filter(occurrence_key__in=list(sent_at)).count()
        background_firings = AlertFiring.objects.filter(
            fired_at__gte=loaded_since, alert__instrument__symbol__in=SYMBOLS
        ).count()
    to_last = [last[key].timestamp() - wall for key, wall in sent_at.items() if key in last]
    return {
        "toast_samples": len(alone),
        "tick_to_toast_alone_p50_ms": ms(statistics.median(alone)) if alone else None,
        "tick_to_toast_alone_p99_ms": ms(percentile(alone, 0.99)) if alone else None,
        "crowd_alerts_on_the_tick": crowd,
        "alerts_fired_per_crowded_tick": round(fired / max(1, len(sent_at)), 1),
        "background_ticks_per_s": round(load_sent[0] / loaded_seconds, 1),
        "background_firings": background_firings,
        "tick_to_toast_under_load_p50_ms": ms(statistics.median(under_load)) if under_load else None,
        "tick_to_toast_under_load_p99_ms": ms(percentile(under_load, 0.99)) if under_load else None,
        "tick_to_last_firing_under_load_p50_ms": ms(statistics.median(to_last)) if to_last else None,
        "tick_to_last_firing_under_load_p99_ms": ms(percentile(to_last, 0.99)) if to_last else None,
        "under_load_samples": len(under_load),
        "a_toast_took_over_timeout": timed_out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=5_000)
    parser.add_argument("--naive-ticks", type=int, default=300)
    parser.add_argument("--toasts", type=int, default=300)
    parser.add_argument("--crowd", type=int, default=1000, help="other alerts firing on each latency tick")
    parser.add_argument("--load-rate", type=float, default=50, help="background ticks a second on 20 symbols")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    from alerts.changes import _client, stream_key
    from marketdata.tickstream import tick_stream_key

    _client().delete(stream_key(), tick_stream_key())
    prices = seed(args.alerts, rng)
    result = {"bench": "alerts", **bench_find(prices, args.ticks, args.naive_ticks, rng)}
    result.update(bench_toasts(args.toasts, crowd=args.crowd, load_rate=args.load_rate, prices=prices))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
