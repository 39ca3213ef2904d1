"""`manage.py run_marketfeed`: the market-data process. One upstream connection per venue, whatever
the number of users; see docs/market-data.md. Run two or more for failover: one leads (a Redis lease with a
fencing token, marketdata/feed/leader.py), the others wait as standbys and take over within the lease's TTL
when it dies (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from marketdata.feed.leader import FeedDeposed, FeedLease
from marketdata.feed.runner import SOURCES, FeedOptions, build_sources, run_feed
from marketdata.selectors import canonical_symbol, instrument_list
from marketdata.tickstream import stream_client

logger = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Run the market feed: replay (default), simulated or a live ccxt exchange."

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=SOURCES, default=settings.MARKET_FEED_SOURCE)
        parser.add_argument(
            "--speed",
            type=float,
            default=settings.MARKET_REPLAY_SPEED,
            help="Replay/simulation speed; 1 follows the clock, 60 plays a minute a second.",
        )
        parser.add_argument("--replay-dir", type=Path, default=settings.MARKET_REPLAY_DIR)
        parser.add_argument("--ticks-per-minute", type=int, default=settings.MARKET_TICKS_PER_MINUTE)
        parser.add_argument("--backfill-minutes", type=int, default=settings.MARKET_BACKFILL_MINUTES)
        parser.add_argument("--coalesce-ms", type=int, default=settings.MARKET_COALESCE_MS)
        parser.add_argument("--exchange", default=settings.MARKET_EXCHANGE)
        parser.add_argument(
            "--symbols", default="", help="Comma-separated symbols (default: every active instrument)."
        )
        parser.add_argument(
            "--lease-seconds",
            type=float,
            default=settings.MARKET_FEED_LEASE_SECONDS,
            help="TTL of the leader's lease: a standby takes over within about this long after the leader dies.",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.MARKET_METRICS_PORT,
            help="Serve Prometheus metrics on this port; 0 turns it off.",
        )

    def handle(self, *args, **opts):
        if opts["speed"] <= 0:
            raise CommandError("--speed must be positive")
        if opts["ticks_per_minute"] < 4:
            raise CommandError("--ticks-per-minute must be at least 4 (open, high, low, close)")
        instruments = list(instrument_list())
        if opts["symbols"]:
            wanted = {canonical_symbol(s) for s in opts["symbols"].split(",") if s.strip()}
            unknown = wanted - {i.symbol for i in instruments}
            if unknown:
                raise CommandError(f"unknown or inactive instruments: {', '.join(sorted(unknown))}")
            instruments = [i for i in instruments if i.symbol in wanted]
        if not instruments:
            raise CommandError("no active instruments: run `manage.py seed_demo` (or add some in the admin)")
        options = FeedOptions(
            source=opts["source"],
            replay_dir=opts["replay_dir"],
            speed=opts["speed"],
            ticks_per_minute=opts["ticks_per_minute"],
            backfill_minutes=opts["backfill_minutes"],
            coalesce_seconds=opts["coalesce_ms"] / 1000,
            exchange=opts["exchange"],
            ccxt_config=settings.MARKET_CCXT_CONFIG,
        )
        if opts["lease_seconds"] <= 0:
            raise CommandError("--lease-seconds must be positive")
        if opts["metrics_port"]:
            self._serve_metrics(opts["metrics_port"])
        lease = FeedLease(stream_client(), ttl=opts["lease_seconds"])
        asyncio.run(self._serve(lease=lease, instruments=instruments, options=options))

    @staticmethod
    def _serve_metrics(port: int) -> None:
        from prometheus_client import start_http_server

        try:
            start_http_server(port, addr="127.0.0.1")
        except OSError as exc:
            logger.warning("marketdata.metrics_port_unavailable", port=port, error=str(exc))

    async def _serve(self, *, lease: FeedLease, instruments, options: FeedOptions) -> None:
        """Standby until leading; lead until stopped or deposed; when deposed, standby again."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        current: list[asyncio.Task] = []

        def stop() -> None:
            stopping.set()
            for task in current:
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        try:
            while not stopping.is_set():
                term = asyncio.create_task(self._term(lease=lease, instruments=instruments, options=options))
                current[:] = [term]
                try:
                    await term
                except FeedDeposed as exc:
                    logger.warning("marketdata.feed_deposed", holder=lease.holder, token=lease.token, reason=str(exc))
                    continue
                except asyncio.CancelledError:
                    break
                break  # the sources ended (a replay with a fixed number of loops)
        finally:
            # Hand over at once rather than after the TTL.
            await asyncio.to_thread(lease.release)
            logger.info("marketdata.feed_stopped", holder=lease.holder)

    async def _term(self, *, lease: FeedLease, instruments, options: FeedOptions) -> None:
        await lease.wait_until_leader()
        # Built now, not at start: a simulated source continues from the latest stored prices.
        sources = await sync_to_async(build_sources)(instruments=instruments, options=options)
        feed = asyncio.create_task(run_feed(instruments=instruments, sources=sources, options=options, fence=lease))
        keeper = asyncio.create_task(lease.keep())
        try:
            done, _ = await asyncio.wait([feed, keeper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            keeper.cancel()
            if not feed.done():
                feed.cancel()
            await asyncio.gather(feed, keeper, return_exceptions=True)
        if feed in done:
            feed.result()  # FeedDeposed, or whatever else ended it
            return
        raise FeedDeposed("the lease could not be renewed in time")
