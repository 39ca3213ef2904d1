"""Drill: the market feed drops (its process is killed: the upstream connection and the publisher are gone).

Starts web + feed (bench/nexus_platform.py, the Procfile's commands), with every instrument's stale threshold
lowered to 5 s for the drill. Browser-like sockets watch BTC/USDT's ticker. Then the feed is killed (SIGKILL),
and the drill checks that (1) the market page shows the price as Stale within the threshold plus a margin,
(2) after the feed is started again (as its supervisor would), every socket receives fresh prices again and
the page no longer shows Stale, (3) the one-minute candles of the outage are there, each minute once (the
restarted feed fills the gap from its source: `MARKET_BACKFILL_MINUTES`).

    python bench/faults/feed_drop.py [--sockets 20] [--down 15]
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
import urllib.request
from datetime import timedelta

from common import SUFFIX, Fleet, Platform, django_setup, report, wait_until

STALE_AFTER = 5
BADGE = re.compile(r'<span[^>]*class="badge badge-stale"[^>]*data-stale-watch[^>]*>')


def page_stale(base: str) -> bool | None:
    try:
        with urllib.request.urlopen(f"{base}/markets/btc-usdt", timeout=10) as response:  # noqa: S310
            html = response.read().decode()
    except OSError:
        return None
    badges = BADGE.findall(html)
    return any(" hidden" not in badge for badge in badges) if badges else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--down", type=float, default=15, help="seconds the feed stays down")
    args = parser.parse_args()
    platform = Platform(SUFFIX, processes=["web", "feed"], web_processes=1)
    platform.prepare(recreate=False)
    django_setup(platform.env)
    from django.utils import timezone

    from core.rls import system_context
    from marketdata.models import Candle, Instrument, Quote

    with system_context(reason="drill: a short stale threshold"):
        Instrument.objects.update(stale_after_seconds=STALE_AFTER)
    fleet = None
    try:
        platform.start()
        base = platform.web_urls[0]

        def fresh_quote():
            with system_context(reason="drill: is the feed live"):
                quote = Quote.objects.filter(instrument__symbol="BTC/USDT").first()
            return quote is not None and timezone.now() - quote.updated_at < timedelta(seconds=3)

        wait_until(fresh_quote, timeout=120, what="the feed writing quotes")
        ws = base.replace("http://", "ws://") + "/ws/market/?view=ticker&symbols=btc-usdt"
        fleet = Fleet(args.sockets, [ws], base)
        wait_until(lambda: fleet.receiving_since(time.time() - 2) == args.sockets, timeout=60, what="sockets live")
        stale_before = page_stale(base)

        dropped_at = time.time()
        dropped_minute = timezone.now().replace(second=0, microsecond=0)
        platform.stop_process("feed", signal.SIGKILL)
        wait_until(lambda: page_stale(base), timeout=STALE_AFTER + 30, what="the page showing Stale")
        stale_seconds = time.time() - dropped_at
        time.sleep(max(0.0, args.down - (time.time() - dropped_at)))

        restarted_at = time.time()
        platform.spawn("feed")
        wait_until(lambda: fleet.receiving_since(restarted_at) == args.sockets, timeout=120, what="fresh frames")
        recovery_seconds = time.time() - restarted_at
        wait_until(lambda: page_stale(base) is False, timeout=30, what="the page no longer Stale")
        # Candles: every minute from before the drop to the one before now, each once.
        last_closed = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
        start = dropped_minute - timedelta(minutes=2)
        wait_until(
            lambda: Candle.objects.filter(instrument__symbol="BTC/USDT", open_time=last_closed).exists(),
            timeout=90, what="the last closed minute's candle",
        )
        minutes = list(
            Candle.objects.filter(instrument__symbol="BTC/USDT", open_time__gte=start, open_time__lte=last_closed)
            .values_list("open_time", flat=True)
        )
        expected = int((last_closed - start).total_seconds() // 60) + 1
        missing = expected - len(set(minutes))
        duplicates = len(minutes) - len(set(minutes))
        passed = stale_before is False and missing == 0 and duplicates == 0
        return report(
            "feed_drop", passed,
            sockets=args.sockets, down_seconds=round(restarted_at - dropped_at, 1),
            stale_threshold_s=STALE_AFTER, stale_shown_after_s=round(stale_seconds, 1),
            recovery_s=round(recovery_seconds, 1), candle_minutes_checked=expected,
            candle_minutes_missing=missing, candle_duplicates=duplicates,
        )
    except TimeoutError as error:
        return report("feed_drop", False, error=str(error), feed_log=platform.log_tail("feed", 800))
    finally:
        if fleet is not None:
            fleet.close()
        platform.stop()
        with system_context(reason="drill: restore the stale thresholds"):
            Instrument.objects.update(stale_after_seconds=30)


if __name__ == "__main__":
    sys.exit(main())
