"""REST API load benchmark: concurrent API clients mixing reads and paper market orders.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/api.py [--duration 60] [--clients 200] [--servers 2] [--pause 1.0] \
        [--warmup 5] [--sockets 2000] [--socket-batch 250] [--log daphne.log]

It uses a database of its own (<name>_bench_api, recreated), a Redis key prefix of its own, DEBUG off, and:

1. seeds (not timed), through the services the product uses: the default instruments with live quotes and
   a day of one-minute candles for BTC/USDT and ETH/USDT (in system_context, as the feed writes them), and
   one trader per client (200 clients = 200 traders, one each), each with a paper portfolio holding
   1,000,000 USDT, a paper exchange connection, an open limit order, an alert, an API token (read + trade)
   and a Pro trial granted by billing's own service (`subscription_trial_grant`): 600 API requests a
   minute, which one client's load stays under. Any 429 is still counted and reported
   (`rate_limited_429`), never hidden.
2. starts `--servers` daphne processes (config.asgi, the real stack; default 2, one per core; clients are
   spread over them as a load balancer would) and, while a thread keeps the quotes fresh once a second as
   the feed does (a paper market order fills at once at the latest quote; a stale one is refused),
3. runs `--clients` clients in this process with aiohttp, one ClientSession (its own connection) per
   client, for `--duration` seconds. Each client picks an operation at random (weights in OPERATIONS: about
   one request in nine is a paper market order, POST /api/v1/trading/orders/ with an Idempotency-Key), then
   waits a random pause (uniform 0 .. 2 x `--pause` seconds, mean `--pause`; `--pause 0`: back to back,
   the server's saturation) before the next one. A request's latency runs from sending it to having read
   its whole body. The first `--warmup` seconds of load are not measured (the servers' first requests).
   A request still unanswered after 60 s counts as an error (`exception:TimeoutError`).
4. meanwhile holds `--sockets` program sockets on /ws/v1/ (default 2,000), spread evenly over the traders
   (2,000 sockets and 200 traders: 10 each, on both servers; opened `--socket-batch` at a time before the
   load starts) and subscribed to `fills`, answering the
   server's heartbeats with a ping as a program does. For every measured paper order that fills, each of
   its trader's sockets records when the `fill` event arrived; `fill_event_ms` is the time from sending
   the order's POST to that arrival (the fill is committed somewhere inside that request, so this bounds
   fill-to-event latency from above), and `fill_events_missing` counts socket/fill pairs that never
   arrived within 10 s of the order's response.

Prints one JSON line: per operation count and p50/p95/p99 ms, errors (non-2xx/3xx and failed connections)
with their rate and statuses, orders/s, requests/s, the server process count and the target (p95 < 300 ms,
no errors). The clients run on the same host as the servers, PostgreSQL and Redis, and share its cores
(the reference machine has 2, and other work may be running on it): the figures are an upper bound of
what a dedicated host would show.

Measured 2026-12-01 06:05 UTC on that host (2 cores; the 200 clients, the 2,000 sockets, both daphne
processes, PostgreSQL and Redis all on it; a pool of 4 per process, the default then, 10 now), 200 clients
for 60 s, pause 1 s, 2,000 sockets: 4,774 requests
(74.9 a second), 8.8 orders a second, **0 errors**, p50 1,444 ms, p95 2,289 ms, p99 2,725 ms (target p95 <
300 ms: not met on this host; the cores are saturated, the offered load is about 190 requests a second);
2,000 sockets held, none closed, 5,610 fill events, 0 missing, order-to-fill-event p50 1,666 ms, p99 2,933
ms. Back to back (`--clients 60 --pause 0 --sockets 0`, 30 s), the most the two processes serve here: 107
requests a second (74 before the one-hop middleware chain of core/asgi_handler.py, the same day); in a
later series 96 with a pool of 4, 92 with 8 and 87 with 10 (the spread between runs is about 10 %).

Measured 2026-12-02 on another 2-core host of the same kind, slower than that one (the code of 12-01 served
41-43 requests a second back to back there, not 107), after the token and plan caches, the pool without a
query per checkout and the main context freed of asgiref Locals (docs/scale-out.md): back to back 54-58 a
second (the web processes 31-33 ms of CPU a request, 42-44 before); the default run (200 clients, pause
1 s, 2,000 sockets): 2,170 requests (32.9 a second), 3.9 orders a second, **0 errors**, p50 4,419 ms, p95
6,562 ms, p99 7,306 ms (target not met: the offered load is about 190 a second on two cores that serve
some 55 without the sockets); 2,000 sockets held, none closed, 2,390 fill events, 210 missing after 10 s,
order-to-fill-event p50 22.8 s, p99 36.4 s (the events queue behind the saturated processes).

Measured 2026-12-02 later the same day on a third host of that kind, after the programs' socket events
moved to Redis pub/sub (docs/scale-out.md) and the rate limit, candle and DISTINCT savings: the default run
served 3,845 requests (59.2 a second), 6.7 orders a second, **0 errors**, p50 2,058 ms, p95 3,197 ms,
p99 3,668 ms (target not met); 2,000 sockets held, none closed, 4,330 fill events, **0 missing**,
order-to-fill-event p50 2,576 ms, p99 4,247 ms (the same code before the events moved, on that host:
64.4 requests a second, p95 2,828 ms, fill events p50 16.0 s, p99 25.3 s, 980 missing). The floor
(`--operations`, `--sockets 0`): the lightest API read alone (instruments) at the default load, 200
clients with a 1 s pause, 172.9 requests a second, p95 286 ms: that read alone meets the target, the mix
costs some 2.7 times as much a request; back to back from 60 clients it serves 200 a second, and /healthz
(`--operations healthz`) 374.

Measured 2026-12-02 in the evening on a fourth host of that kind, faster than the third (/healthz back to
back 762-890 a second there with that code): the default run served 130.5-139.2 requests a second, p95
884-994 ms, in six runs. After the one-hop handler on reused threads, per-channel event groups and one
presence write per process and interval (docs/scale-out.md): /healthz 1,278-1,345 a second; the default
run 138-146 requests a second, 16-17 orders a second, **0 errors**, p50 251-336 ms, p95 781-937 ms
(target not met), 2,000 sockets held, 9,970-10,440 fill events, 0 missing, order-to-fill-event p50
597-686 ms, p99 1,260-1,479 ms. The same code with WEB_HTTP_CONCURRENCY=3 (10 by default: fewer requests
contend for each process's GIL): 166.9 a second, p95 448 ms, fill events p50 194 ms; without the sockets
(`--sockets 0`) 176.3 a second at p95 275 ms with 3 and 182.5 at p95 170 ms with 2 (158.1 at p95 539 ms
with 10): the HTTP mix alone meets the target there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

ENV = bench_environment(
    "bench_api",
    DJANGO_SETTINGS_MODULE="config.settings.local",
    DJANGO_SECRET_KEY=os.environ.get(
        "DJANGO_SECRET_KEY", "bench-only-insecure-key-0123456789-abcdefghijklmnop"
    ),
    DJANGO_ALLOWED_HOSTS="testserver,localhost,127.0.0.1",
)
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

ORDER_SYMBOLS = {"BTC/USDT": Decimal("0.001"), "ETH/USDT": Decimal("0.01")}  # about $23 and $16 a fill
CANDLE_SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CASH = Decimal("1000000")
TARGET_P95_MS = 300
# Operation -> weight: reads mostly, about one request in nine a paper market order.
OPERATIONS = {
    "portfolios": 2,
    "positions": 2,
    "orders_list": 2,
    "order_detail": 2,
    "instruments": 1,
    "quotes": 3,
    "candles": 2,
    "alerts_list": 1,
    "account_usage": 1,
    "order_place": 2,
}
# Not in the default mix: the web tier's floor, a request that reaches Django and no database (`--operations
# healthz`; the token is sent and not read).
FLOOR_OPERATIONS = {"healthz": 1}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Seeded:
    token: str
    portfolio: int
    connection: int
    orders: list[str] = field(default_factory=list)
    sockets: int = 0  # program sockets held for this trader
    sockets_total: int = 0  # sockets held over all traders (to know when all are open)


def seed_market() -> None:
    """The default instruments, a live quote each, and a day of one-minute candles for two pairs."""
    from marketdata.models import Quote
    from marketdata.registry import DEFAULT_INSTRUMENTS
    from marketdata.services import candles_store, instruments_seed, quotes_store
    from marketdata.types import CandleBar

    instruments = {i.symbol: i for i in instruments_seed()}
    now = datetime.now(UTC)
    quotes_store(
        quotes=[
            Quote(
                instrument=instruments[spec["symbol"]],
                price=spec["reference_price"],
                open_24h=spec["reference_price"],
                source="bench",
                at=now,
                updated_at=now,
            )
            for spec in DEFAULT_INSTRUMENTS
        ]
    )
    start = now.replace(second=0, microsecond=0) - timedelta(days=1)
    rows = []
    for spec in DEFAULT_INSTRUMENTS:
        if spec["symbol"].replace("/", "-") not in CANDLE_SYMBOLS:
            continue
        price = spec["reference_price"]
        for minute in range(24 * 60):
            close = (price * Decimal(1 + random.uniform(-0.001, 0.001))).quantize(Decimal("0.01"))
            rows.append(
                (
                    instruments[spec["symbol"]].pk,
                    CandleBar(
                        open_time=start + timedelta(minutes=minute),
                        open=price,
                        high=max(price, close),
                        low=min(price, close),
                        close=close,
                        volume=Decimal(random.randint(1, 100)),
                    ),
                )
            )
            price = close
    candles_store(rows=rows)


def quotes_refresh(stop: threading.Event) -> None:
    """Every second, a small random step on every quote, written as the feed writes them."""
    from core.rls import system_context
    from marketdata.models import Quote
    from marketdata.services import quotes_store

    with system_context(reason="bench: read the quotes to move"):
        quotes = list(Quote.objects.select_related("instrument"))
    while not stop.wait(1.0):
        now = datetime.now(UTC)
        for quote in quotes:
            step = Decimal(1 + random.uniform(-0.0005, 0.0005))
            quote.price = (quote.price * step).quantize(Decimal(10) ** -quote.instrument.price_precision)
            quote.at = quote.updated_at = now
        quotes_store(quotes=quotes)


def seed_traders(count: int) -> list[Seeded]:
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import api_token_create
    from alerts.choices import AlertKind
    from alerts.services import alert_create
    from billing.choices import PlanCode
    from billing.services import subscription_trial_grant
    from core.rls import system_context, tenant
    from portfolios.choices import PortfolioKind, TransactionKind
    from portfolios.services import portfolio_create, transaction_record
    from trading.choices import OrderSide, OrderSource, OrderType
    from trading.connections.services import connection_create
    from trading.orders.services import order_place

    seeded = []
    expires_on = datetime.now(UTC).date() + timedelta(days=2)
    for n in range(count):
        with system_context(reason="bench: a trader signs up"):
            user = User.objects.create_user(email=f"api{n}@bench.local", password=None)
        subscription_trial_grant(user=user, plan_code=PlanCode.PRO)
        with tenant(user.pk):
            portfolio = portfolio_create(
                user=user, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER
            )
            transaction_record(
                user=user,
                portfolio=portfolio,
                kind=TransactionKind.DEPOSIT,
                quantity=CASH,
                currency="USDT",
                executed_at=timezone.now(),
                external_id="bench-cash",
            )
            connection = connection_create(user=user, label="Paper", venue="paper")
            order = order_place(
                user=user,
                connection=connection,
                portfolio=portfolio,
                symbol="BTC/USDT",
                side=OrderSide.BUY,
                type=OrderType.LIMIT,
                quantity=Decimal("0.01"),
                price=Decimal("15000"),
                source=OrderSource.API,
            )
            alert_create(user=user, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="90000")
            _, token = api_token_create(user=user, name="bench", expires_on=expires_on)
        seeded.append(
            Seeded(token=token, portfolio=portfolio.pk, connection=connection.pk, orders=[str(order.pk)])
        )
    return seeded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_daphne(port: int, log) -> subprocess.Popen:
    from config.webserver import bind, default_db_pool_size

    # Bound here with the web tier's listen backlog (config.webserver: 2,048), passed to daphne with --fd:
    # daphne's own `-p` listens with Twisted's backlog of 50, and 2,000 sockets connecting at once then
    # overflow it (the kernel resets the connections it cannot queue).
    listener = bind("127.0.0.1", port)
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "--fd", str(listener.fileno()), "config.asgi:application"],
        pass_fds=(listener.fileno(),),
        cwd=ROOT,
        # As config.webserver runs its daphne children in production: a pool of database connections per
        # runtime role (WEB_DB_POOL_SIZE, 10), not one connection per thread.
        env={**ENV, "DB_POOL_SIZE": str(default_db_pool_size())},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    listener.close()  # daphne holds its own copy
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310 - loopback
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("daphne did not start") from None
            time.sleep(0.2)


class Results:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[str] = Counter()
        self.errors_by_operation: Counter[str] = Counter()
        self.orders_filled = 0
        # order id -> (perf_counter when its POST was sent, how many of its trader's sockets to expect)
        self.fills_expected: dict[str, tuple[float, int]] = {}
        self.fill_arrivals: dict[str, list[float]] = defaultdict(list)
        self.sockets_open = 0
        self.socket_failures: Counter[str] = Counter()
        self.socket_failure_examples: dict[str, str] = {}  # one message per kind, to tell causes apart


async def watch_fills(
    client: Seeded, base: str, until: dict, results: Results, ready: asyncio.Event, opened: list
) -> None:
    """One program socket of `client`'s trader, subscribed to its fills, until `until["deadline"]` (the
    end of the load, set once it starts) plus 10 s for the last orders' events."""
    import aiohttp

    headers = {"Authorization": f"Token {client.token}"}
    try:
        async with aiohttp.ClientSession(base) as session, session.ws_connect(
            "/ws/v1/", headers=headers, heartbeat=None, max_msg_size=0
        ) as socket:
            await socket.send_json({"op": "subscribe", "channels": ["fills"]})
            results.sockets_open += 1
            opened.append(1)
            if len(opened) >= client.sockets_total:
                ready.set()
            while True:
                left = min(until["deadline"] + 10 - time.monotonic(), 30.0)
                if left <= 0:
                    return
                try:
                    message = await socket.receive(timeout=left)
                except TimeoutError:
                    continue  # heartbeats come every 20 s; look at the deadline again
                if message.type != aiohttp.WSMsgType.TEXT:
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        results.socket_failures[f"closed:{socket.close_code}"] += 1
                    return
                event = json.loads(message.data)
                if event["type"] == "heartbeat":
                    await socket.send_json({"op": "ping"})
                elif event["type"] == "fill":
                    results.fill_arrivals[event["order_id"]].append(time.perf_counter())
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        results.socket_failures[type(error).__name__] += 1
        results.socket_failure_examples.setdefault(type(error).__name__, str(error)[:200])
        opened.append(1)
        if len(opened) >= client.sockets_total:
            ready.set()


def request_for(operation: str, client: Seeded, rng: random.Random) -> tuple[str, str, dict | None]:
    """Method, path and JSON body of one operation of this client."""
    if operation == "healthz":
        return "GET", "/healthz", None
    if operation == "portfolios":
        return "GET", "/api/v1/portfolios/", None
    if operation == "positions":
        return "GET", f"/api/v1/portfolios/{client.portfolio}/positions/", None
    if operation == "orders_list":
        return "GET", "/api/v1/trading/orders/", None
    if operation == "order_detail":
        return "GET", f"/api/v1/trading/orders/{rng.choice(client.orders[-20:])}/", None
    if operation == "instruments":
        return "GET", "/api/v1/markets/instruments/", None
    if operation == "quotes":
        return "GET", "/api/v1/markets/quotes/", None
    if operation == "candles":
        return "GET", f"/api/v1/markets/instruments/{rng.choice(CANDLE_SYMBOLS)}/candles/?limit=200", None
    if operation == "alerts_list":
        return "GET", "/api/v1/alerts/", None
    if operation == "account_usage":
        return "GET", "/api/v1/accounts/me/usage/", None
    symbol, quantity = rng.choice(list(ORDER_SYMBOLS.items()))
    body = {
        "connection": client.connection,
        "portfolio": client.portfolio,
        "symbol": symbol,
        "side": "buy",
        "type": "market",
        "quantity": str(quantity),
    }
    return "POST", "/api/v1/trading/orders/", body


async def run_client(
    client: Seeded, base: str, measure_from: float, deadline: float, pause: float, results: Results, seed: int,
    operations: dict[str, int],
) -> None:
    import aiohttp

    rng = random.Random(seed)
    names, weights = list(operations), list(operations.values())
    headers = {"Authorization": f"Token {client.token}", "Accept": "application/json"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, headers=headers, timeout=timeout) as session:
        await asyncio.sleep(rng.uniform(0, max(pause, 0.5)))  # the clients do not all start at once
        while time.monotonic() < deadline:
            operation = rng.choices(names, weights)[0]
            method, path, body = request_for(operation, client, rng)
            extra = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
            measured = time.monotonic() >= measure_from
            started = time.perf_counter()
            try:
                async with session.request(method, path, json=body, headers=extra) as response:
                    payload = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                payload, status = b"", f"exception:{type(error).__name__}"
            elapsed = (time.perf_counter() - started) * 1000
            if not measured:  # warm-up: the servers' first requests (imports, connections), off the clock
                if isinstance(status, int) and status < 400 and operation == "order_place":
                    client.orders.append(json.loads(payload)["id"])
                if pause:
                    await asyncio.sleep(rng.uniform(0, 2 * pause))
                continue
            results.latencies[operation].append(elapsed)
            results.statuses[str(status)] += 1
            if not isinstance(status, int) or status >= 400:
                results.errors_by_operation[operation] += 1
            elif operation == "order_place":
                order = json.loads(payload)
                client.orders.append(order["id"])
                if order.get("status") == "filled":
                    results.orders_filled += 1
                    if client.sockets:
                        results.fills_expected[order["id"]] = (started, client.sockets)
            if pause:
                await asyncio.sleep(rng.uniform(0, 2 * pause))


async def drive(
    clients: list[Seeded], ports: list[int], warmup: float, duration: float, pause: float, sockets: int,
    socket_batch: int, operations: dict[str, int],
) -> tuple[Results, float]:
    results = Results()
    ready, opened = asyncio.Event(), []
    for n in range(sockets):
        clients[n % len(clients)].sockets += 1
    for client in clients:
        client.sockets_total = sockets
    # The sockets open first (spread over the servers), `socket_batch` at a time as programs come and go
    # (each wave open, or failed, before the next starts), then the load starts.
    until = {"deadline": float("inf")}
    watchers = []
    for first in range(0, sockets, socket_batch):
        wave = range(first, min(first + socket_batch, sockets))
        watchers += [
            asyncio.create_task(
                watch_fills(clients[n % len(clients)], f"http://127.0.0.1:{ports[n % len(ports)]}",
                            until, results, ready, opened)
            )
            for n in wave
        ]
        wave_deadline = time.monotonic() + 120
        while len(opened) < wave.stop and time.monotonic() < wave_deadline:
            await asyncio.sleep(0.05)
    if sockets:
        await asyncio.wait_for(ready.wait(), timeout=300)
    started = time.monotonic() + warmup
    deadline = until["deadline"] = started + duration
    await asyncio.gather(
        *(
            run_client(
                client, f"http://127.0.0.1:{ports[n % len(ports)]}", started, deadline, pause, results, n,
                operations,
            )
            for n, client in enumerate(clients)
        )
    )
    seconds = time.monotonic() - started
    await asyncio.gather(*watchers)  # the last orders' events, then the sockets close
    return results, seconds


def fill_events(results: Results) -> dict:
    """Per socket and measured fill: milliseconds from sending the order to the `fill` event."""
    latencies, missing = [], 0
    for order_id, (sent, sockets) in results.fills_expected.items():
        arrivals = results.fill_arrivals.get(order_id, [])
        latencies += [(arrival - sent) * 1000 for arrival in arrivals]
        missing += max(sockets - len(arrivals), 0)
    return {
        "sockets_held": results.sockets_open,
        "socket_failures": dict(results.socket_failures),
        "socket_failure_examples": results.socket_failure_examples,
        "fills_watched": len(results.fills_expected),
        "fill_events": len(latencies),
        "fill_events_missing": missing,
        "fill_event_p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
        "fill_event_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients, one trader each")
    parser.add_argument("--servers", type=int, default=2, help="daphne processes")
    parser.add_argument("--log", help="a file for the servers' output (default: discarded)")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before measuring")
    parser.add_argument("--pause", type=float, default=1.0, help="mean seconds between a client's requests")
    parser.add_argument("--sockets", type=int, default=2000, help="program sockets held, spread over the traders")
    parser.add_argument("--socket-batch", type=int, default=250,
                        help="sockets opened at once (a wave opens once the one before is open)")
    parser.add_argument("--operations", default=",".join(OPERATIONS),
                        help="comma-separated operations to mix, with their weights in OPERATIONS (default: all of "
                             "them); one light read alone (instruments), or healthz, measures the stack's floor")
    args = parser.parse_args()
    known = {**OPERATIONS, **FLOOR_OPERATIONS}
    unknown = set(args.operations.split(",")) - set(known)
    if unknown:
        parser.error(f"unknown operations: {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    mix = {name: known[name] for name in args.operations.split(",")}
    random.seed(7)

    call_command("db_bootstrap", recreate=True, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    seed_started = time.perf_counter()
    seed_market()
    clients = seed_traders(args.clients)
    seed_seconds = time.perf_counter() - seed_started

    stop = threading.Event()
    refresher = threading.Thread(target=quotes_refresh, args=(stop,), daemon=True)
    refresher.start()
    ports = [free_port() for _ in range(args.servers)]
    servers: list[subprocess.Popen] = []
    log = open(args.log, "w") if args.log else subprocess.DEVNULL  # noqa: SIM115 - the servers write it
    try:
        for port in ports:
            servers.append(start_daphne(port, log))
        results, seconds = asyncio.run(
            drive(
                clients, ports, args.warmup, args.duration, args.pause, args.sockets, max(1, args.socket_batch),
                mix,
            )
        )
    finally:
        stop.set()
        for process in servers:
            process.terminate()
        for process in servers:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()

    requests = sum(results.statuses.values())
    errors = {
        status: count
        for status, count in results.statuses.items()
        if not status.isdigit() or int(status) >= 400
    }
    error_count = sum(errors.values())
    operations = {
        name: {
            "count": len(samples),
            "p50_ms": round(percentile(samples, 0.50), 1),
            "p95_ms": round(percentile(samples, 0.95), 1),
            "p99_ms": round(percentile(samples, 0.99), 1),
        }
        for name, samples in sorted(results.latencies.items())
    }
    every = [sample for samples in results.latencies.values() for sample in samples]
    worst_p95 = max((row["p95_ms"] for row in operations.values()), default=None)
    print(
        json.dumps(
            {
                "bench": "api",
                "clients": args.clients,
                "traders": args.clients,
                "plan": "pro trial (600 requests/min per trader)",
                "server_processes": args.servers,
                "duration_s": round(seconds, 1),
                "warmup_s": args.warmup,
                "mean_pause_s": args.pause,
                "operations_mixed": mix,
                "requests": requests,
                "requests_per_s": round(requests / seconds, 1),
                "orders_placed": len(results.latencies.get("order_place", []))
                - results.errors_by_operation["order_place"],
                "orders_filled": results.orders_filled,
                "orders_per_s": round(results.orders_filled / seconds, 1),
                "all_p50_ms": round(percentile(every, 0.50), 1) if every else None,
                "all_p95_ms": round(percentile(every, 0.95), 1) if every else None,
                "all_p99_ms": round(percentile(every, 0.99), 1) if every else None,
                "operations": operations,
                "errors": error_count,
                "error_rate": round(error_count / requests, 5) if requests else None,
                "errors_by_status": errors,
                "errors_by_operation": dict(results.errors_by_operation),
                "rate_limited_429": results.statuses.get("429", 0),
                "target": {"p95_ms_below": TARGET_P95_MS, "errors": 0},
                "target_met": worst_p95 is not None and worst_p95 < TARGET_P95_MS and error_count == 0,
                "sockets": fill_events(results),
                "seed_seconds": round(seed_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
