"""Drill: PostgreSQL restarts (a private cluster of the drill's own: the machine's binaries, a temporary
data directory, a free port; never the machine's server).

The platform (web, worker, beat, feed) runs on it. A bot fan-out (`--bots` plans) is sent and PostgreSQL is
stopped at once (`pg_ctl stop -m fast`: connections are cut mid-work) for `--down` seconds, then started
again. While it is down the drill calls an API endpoint, a page and /readyz over and over: every answer must
be 503 with a Retry-After header (not a 500, not a hang). Afterwards the workers' retries must finish the
fan-out with no plan lost and none run twice, and the same requests must answer 200 again.

The 503 + Retry-After answer comes from the scale-out work's middleware (branch `scale`); until it is
merged this drill fails on the outage answers (it reports what came back instead).

    python bench/faults/postgres_restart.py [--bots 100] [--down 10]
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import timedelta

from common import Platform, PrivatePostgres, django_setup, report, wait_until
from fanout_kit import counts, seed_bots, signal_send


def call(url: str, token: str = "") -> tuple[str, str]:
    headers = {"Accept": "application/json", **({"Authorization": f"Token {token}"} if token else {})}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return str(response.status), response.headers.get("Retry-After", "")
    except urllib.error.HTTPError as error:
        return str(error.code), error.headers.get("Retry-After", "")
    except OSError as error:
        return f"exception:{type(error).__name__}", ""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=100)
    parser.add_argument("--down", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    pg = PrivatePostgres()
    pg.start()
    platform = Platform(
        "drills_pg", processes=["web", "worker", "beat", "feed"], web_processes=1, database_url=pg.url,
        settings={"TRADING_SIGNAL_MAX_LAG_SECONDS": "7200"},
    )
    try:
        platform.prepare(recreate=True)
        django_setup(platform.env)
        from django.db import connections
        from django.utils import timezone

        from accounts.models import User
        from accounts.services import api_token_create
        from core.rls import system_context, tenant
        from marketdata.models import Quote

        with system_context(reason="drill: a trader"):
            user = User.objects.create_user(email="pg-drill@drill.local", password=None)
        with tenant(user.pk):
            _, token = api_token_create(user=user, name="drill", expires_on=(timezone.now() + timedelta(days=1)).date())
        tag = seed_bots(args.bots)
        platform.start()
        base = platform.web_urls[0]

        def fresh_quote():
            with system_context(reason="drill: is the feed live"):
                quote = Quote.objects.filter(instrument__symbol="BTC/USDT").first()
            return quote is not None and timezone.now() - quote.updated_at < timedelta(seconds=5)

        wait_until(fresh_quote, timeout=120, what="the feed writing quotes")
        before = [call(f"{base}/api/v1/portfolios/", token)[0], call(f"{base}/markets")[0]]
        signal_id = signal_send(tag, minutes_ago=0)
        connections.close_all()
        stopped_at = time.monotonic()
        pg.stop("fast")
        answers: Counter[str] = Counter()
        while time.monotonic() - stopped_at < args.down:
            for path, auth in (("/api/v1/portfolios/", token), ("/markets", ""), ("/readyz", "")):
                status, retry_after = call(f"{base}{path}", auth)
                answers[f"{path} {status}{' Retry-After' if retry_after else ''}"] += 1
            time.sleep(0.5)
        pg.start()
        back_at = time.monotonic()

        def done():
            figures = counts(tag, [signal_id])
            executed = figures["plans_by_status"].get("executed", 0)
            return figures if figures["plans"] >= args.bots and executed == figures["plans"] else None

        try:
            final = wait_until(done, timeout=args.timeout, interval=1, what="every plan executed")
        except TimeoutError:
            final = counts(tag, [signal_id])
        settled = time.monotonic() - back_at
        after = [call(f"{base}/api/v1/portfolios/", token)[0], call(f"{base}/markets")[0]]
        outage_ok = all(key.endswith("503 Retry-After") for key in answers)
        lost = args.bots - final["plans_by_status"].get("executed", 0)
        clean = final["duplicate_orders"] == 0 and final["duplicate_fills"] == 0
        passed = outage_ok and lost == 0 and clean and before == ["200", "200"] and after == ["200", "200"]
        return report(
            "postgres_restart", passed,
            down_s=args.down, answers_while_down=dict(answers), all_503_with_retry_after=outage_ok,
            status_before=before, status_after=after, plans_lost=lost, plans_settled_after_s=round(settled, 1),
            **final,
        )
    except TimeoutError as error:
        return report("postgres_restart", False, error=str(error), worker_log=platform.log_tail("worker", 1500))
    finally:
        platform.stop()
        pg.cleanup()


if __name__ == "__main__":
    sys.exit(main())
