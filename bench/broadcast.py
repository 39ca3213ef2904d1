"""Tick-to-client latency of the live market pages, against a minimal broadcast server as the floor.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/broadcast.py --clients 1000 [--seconds 20] [--speed 1] [--client-procs 2]

Starts the real stack on a database of its own (<name>_bench_market, recreated) and a Redis key prefix of
its own: daphne (config.asgi), the Redis channel layer, and `manage.py run_marketfeed` replaying the
recorded data (plus simulated pairs). N clients open /ws/market/?view=row (what /markets opens, every
symbol) and time each frame from the moment its tick reached the feed (`data-tick-at`, same host clock)
to its arrival. Then the same N clients do the same against the floor: a minimal aiohttp WebSocket
server that reads the same channel-layer group once and writes the same fragments to its sockets.
Reports p50/p95/p99, frames per second, daphne's RSS (idle and with N sockets) and CPU, and our
latency as a ratio to the floor's. Clients run on the same host, so they share its cores.

A publish coalesces the ticks of its interval and `data-tick-at` stamps only the last of them, which
hides the wait of the earlier ones. So the feed runs with every accepted tick stamped (the bench wraps
the publisher, `--stamped-feed`; the product is unchanged): it writes each publish's symbol, seq and the
arrival time of every tick it carries, and `every_tick` times each tick to the first frame showing that
publish or a newer one of its symbol (`ticks_lost`: ticks of the window no frame ever showed).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from market_stack import (  # noqa: E402
    PYTHON,
    ROOT,
    ClientFleet,
    bench_environment,
    free_port,
    histogram_quantiles,
    prepare_database,
    raise_fd_limit,
    scrape,
    start,
    start_daphne,
    stop,
    wait_http,
)


def floor_server(port: int) -> None:
    """The floor: one channel-layer reader, a loop over the sockets, nothing else."""
    from aiohttp import web
    from channels_redis.core import RedisChannelLayer

    prefix = os.environ["REDIS_KEY_PREFIX"]
    layer = RedisChannelLayer(
        hosts=[os.environ["REDIS_URL"]], prefix=f"{prefix}:asgi", capacity=200, expiry=30
    )
    sockets: dict = {}  # socket -> the slugs it wants (None: all)

    async def socket_handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        wanted = frozenset(filter(None, request.query.get("symbols", "").split(","))) or None
        sockets[ws] = wanted
        try:
            async for _ in ws:
                pass
        finally:
            sockets.pop(ws, None)
        return ws

    async def healthz(request):
        return web.Response(text="ok")

    async def pump(app):
        channel = await layer.new_channel()
        await layer.group_add("market.all", channel)

        async def forward():
            while True:
                message = await layer.receive(channel)
                html, slug = message["html"]["row"], message["slug"]
                # Concurrently, so one client that does not read cannot stall the others.
                await asyncio.gather(
                    *(
                        ws.send_str(html)
                        for ws, wanted in list(sockets.items())
                        if wanted is None or slug in wanted
                    ),
                    return_exceptions=True,
                )

        task = asyncio.create_task(forward())
        yield
        task.cancel()

    app = web.Application()
    app.router.add_get("/ws", socket_handler)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(pump)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def stamped_feed(stamps: Path, argv: list[str]) -> None:
    """`manage.py run_marketfeed <argv>`, writing one JSON line per symbol per publish: [slug, seq, the
    arrival time (the feed's own `received_at` clock) of every tick coalesced into it]."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import django

    django.setup()
    from django.core.management import call_command

    from marketdata.feed.publisher import Publisher

    arrivals: dict[str, list[float]] = {}
    taken: dict[str, list[float]] = {}
    out = stamps.open("a", buffering=1)
    accept, publish, render = Publisher.accept_tick, Publisher.publish, Publisher._render

    def accept_tick(self, tick):
        state = self.states.get(tick.symbol)
        pending = len(state.pending_ticks) if state is not None else 0
        accept(self, tick)
        if state is not None and len(state.pending_ticks) > pending:  # accepted (not a late trade)
            arrivals.setdefault(tick.symbol, []).append(state.received_at)

    async def publish_stamped(self, due):
        # Taken where the publish takes the states' pending ticks: before its first await, on the loop.
        for state in due:
            taken[state.symbol] = arrivals.pop(state.symbol, [])
        try:
            await publish(self, due)
        except BaseException:
            for state in due:  # the batch is put back for the next attempt, and its stamps with it
                arrivals.setdefault(state.symbol, [])[:0] = taken.pop(state.symbol, [])
            raise

    def render_stamped(self, batch):
        result = render(self, batch)
        for state, *_ in batch:
            out.write(json.dumps([state.slug, state.last_data["seq"], taken.pop(state.symbol, [])]) + "\n")
        return result

    Publisher.accept_tick, Publisher.publish, Publisher._render = accept_tick, publish_stamped, render_stamped
    call_command("run_marketfeed", *argv)


def process_stats(pid: int):
    import psutil

    return psutil.Process(pid)


HISTOGRAMS = {
    "feed_lag": "marketdata_broadcast_lag_seconds",  # tick in -> channel-layer message sent (feed)
    "hub_lag": "marketdata_hub_lag_seconds",  # tick in -> web process starts writing
    "hub_flush": "marketdata_hub_flush_seconds",  # writing one flush to every socket
}


def run_phase(
    name: str, url: str, origin: str, args, server_pid: int, metrics_urls: dict | None = None,
    stamps: Path | None = None,
) -> dict:
    server = process_stats(server_pid)
    rss_idle = server.memory_info().rss
    fleet = ClientFleet(url=url, origin=origin, count=args.clients, procs=args.client_procs, stamps=stamps)
    connect_seconds = fleet.wait_connected()
    time.sleep(args.warmup)
    rss_connected = server.memory_info().rss
    server.cpu_percent(None)
    metrics_urls = metrics_urls or {}
    before = {key: scrape(metrics_urls[key], HISTOGRAMS[key]) for key in metrics_urls}
    clients = [process_stats(p.pid) for p in fleet.processes]
    for client in clients:
        client.cpu_percent(None)
    import psutil

    psutil.cpu_percent(None)
    result = fleet.measure_started(args.seconds)
    cpu = server.cpu_percent(None)
    clients_cpu = sum(client.cpu_percent(None) for client in clients)
    host_cpu = psutil.cpu_percent(None)
    result.update(fleet.collect())
    breakdown = {
        key: histogram_quantiles(before[key], scrape(metrics_urls[key], HISTOGRAMS[key]))
        for key in metrics_urls
    }
    return {
        **result,
        **({"server_side": breakdown} if breakdown else {}),
        "connect_seconds": round(connect_seconds, 2),
        "server_rss_idle_mb": round(rss_idle / 2**20, 1),
        "server_rss_mb": round(rss_connected / 2**20, 1),
        "server_kb_per_connection": round((rss_connected - rss_idle) / 1024 / max(1, args.clients), 1),
        "server_cpu_pct": round(cpu, 1),
        "clients_cpu_pct": round(clients_cpu, 1),
        "host_cpu_pct": round(host_cpu, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay speed (1: one tick a second per symbol)"
    )
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--symbols",
        default="",
        help="comma-separated slugs each client subscribes to (default: all, like /markets)",
    )
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stamped-feed", type=Path, help=argparse.SUPPRESS)
    args, feed_argv = parser.parse_known_args()
    if args.floor_server:
        floor_server(args.floor_server)
        return 0
    if args.stamped_feed:
        stamped_feed(args.stamped_feed, feed_argv)
        return 0
    if feed_argv:
        parser.error(f"unrecognized arguments: {' '.join(feed_argv)}")

    raise_fd_limit()
    env = bench_environment("bench_market")
    os.environ.update(env)
    prepare_database(env)
    logs = Path(tempfile.mkdtemp(prefix="nexus-bench-market-"))
    port, floor_port, feed_metrics_port = free_port(), free_port(), free_port()
    daphne = start_daphne(env, port, logs / "daphne.log")
    floor = start(env, [PYTHON, __file__, "--floor-server", str(floor_port)], logs / "floor.log")
    stamps = logs / "tick-stamps.jsonl"
    feed = start(
        env,
        [
            PYTHON,
            __file__,
            "--stamped-feed",
            str(stamps),
            "--speed",
            str(args.speed),
            "--backfill-minutes",
            "120",
            "--metrics-port",
            str(feed_metrics_port),
        ],
        logs / "feed.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{floor_port}/healthz", floor, logs / "floor.log")
        time.sleep(3)  # the feed's backfill, then it is live
        if feed.poll() is not None:
            raise RuntimeError("the feed stopped:\n" + (logs / "feed.log").read_text()[-3000:])
        feed_stats = process_stats(feed.pid)
        feed_stats.cpu_percent(None)
        web_metrics = f"http://127.0.0.1:{port}/metrics"
        ours = run_phase(
            "nexus",
            f"ws://127.0.0.1:{port}/ws/market/?view=row&symbols={args.symbols}",
            f"http://127.0.0.1:{port}",
            args,
            daphne.pid,
            {
                "feed_lag": f"http://127.0.0.1:{feed_metrics_port}/metrics",
                "hub_lag": web_metrics,
                "hub_flush": web_metrics,
            },
            stamps,
        )
        feed_cpu = feed_stats.cpu_percent(None)
        result = {
            "bench": "broadcast",
            "clients": args.clients,
            "cpu_count": os.cpu_count(),
            "replay_speed": args.speed,
            "symbols": args.symbols or "all",
            "nexus": ours,
            "feed_cpu_pct": round(feed_cpu, 1),
            "feed_rss_mb": round(feed_stats.memory_info().rss / 2**20, 1),
        }
        if not args.no_floor:
            floor_result = run_phase(
                "floor",
                f"ws://127.0.0.1:{floor_port}/ws?symbols={args.symbols}",
                f"http://127.0.0.1:{floor_port}",
                args,
                floor.pid,
                stamps=stamps,
            )
            result["floor"] = floor_result
            for key in ("p50_ms", "p99_ms"):
                if ours[key] and floor_result[key]:
                    result[f"ratio_{key[:-3]}"] = round(ours[key] / floor_result[key], 2)
                every, floor_every = ours.get("every_tick", {}), floor_result.get("every_tick", {})
                if every.get(key) and floor_every.get(key):
                    result[f"every_tick_ratio_{key[:-3]}"] = round(every[key] / floor_every[key], 2)
        result["target_p99_under_250ms"] = bool(ours["p99_ms"] is not None and ours["p99_ms"] < 250)
        every_p99 = ours.get("every_tick", {}).get("p99_ms")
        result["target_every_tick_p99_under_250ms"] = bool(every_p99 is not None and every_p99 < 250)
        result["logs"] = str(logs)
        print(json.dumps(result))
    finally:
        stop(feed, floor, daphne)
    return 0


if __name__ == "__main__":
    sys.exit(main())
