"""Drill: a slow database. Another session holds a lock on the portfolios table and sleeps in
PostgreSQL (`LOCK TABLE ...; SELECT pg_sleep(n)`), as a long migration or a runaway report would.

The web process runs with the runtime connections' timeouts (config/database.py: `DB_LOCK_TIMEOUT`,
`DB_STATEMENT_TIMEOUT`, set short here: 2 s and 3 s). Concurrent API requests that need the locked table must
all be answered (not hang) within the lock timeout plus a margin, while the lock is still held; requests
that do not touch the table keep answering 200; once the lock is released the same requests answer 200.
It also checks that a runtime connection really has both timeouts (SHOW on the app role's connection).

    python bench/faults/slow_database.py [--requests 20] [--hold 20]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from common import SUFFIX, Platform, django_setup, report

LOCK_TIMEOUT, STATEMENT_TIMEOUT = "2s", "3s"
MARGIN_S = 5


def call(url: str, token: str) -> tuple[int | str, float, str]:
    started = time.monotonic()
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
            status, retry_after = response.status, response.headers.get("Retry-After", "")
    except urllib.error.HTTPError as error:
        status, retry_after = error.code, error.headers.get("Retry-After", "")
    except OSError as error:
        status, retry_after = f"exception:{type(error).__name__}", ""
    return status, time.monotonic() - started, retry_after


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--hold", type=float, default=20, help="seconds the other session holds the lock")
    args = parser.parse_args()
    platform = Platform(
        SUFFIX, processes=["web"], web_processes=1,
        settings={"DB_LOCK_TIMEOUT": LOCK_TIMEOUT, "DB_STATEMENT_TIMEOUT": STATEMENT_TIMEOUT},
    )
    platform.prepare(recreate=False)
    django_setup(platform.env)
    import psycopg
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import api_token_create
    from core.rls import system_context, tenant
    from portfolios.choices import PortfolioKind
    from portfolios.services import portfolio_create

    with system_context(reason="drill: a trader"):
        user = User.objects.create_user(email=f"slow-{time.time_ns()}@drill.local", password=None)
    with tenant(user.pk):
        portfolio_create(user=user, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER)
        _, token = api_token_create(user=user, name="drill", expires_on=(timezone.now() + timedelta(days=1)).date())
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            lock_setting = cursor.fetchone()[0]
            cursor.execute("SHOW statement_timeout")
            statement_setting = cursor.fetchone()[0]
    try:
        platform.start()
        base = platform.web_urls[0]
        locked_url, free_url = f"{base}/api/v1/portfolios/", f"{base}/api/v1/markets/instruments/"
        before = call(locked_url, token)
        holder = psycopg.connect(platform.env["DATABASE_URL"], autocommit=False)
        holder.execute("LOCK TABLE portfolios_portfolio IN ACCESS EXCLUSIVE MODE")
        sleeper = threading.Thread(target=lambda: holder.execute("SELECT pg_sleep(%s)", (args.hold,)), daemon=True)
        locked_at = time.monotonic()
        sleeper.start()
        with ThreadPoolExecutor(args.requests + 2) as pool:
            locked = list(pool.map(lambda _: call(locked_url, token), range(args.requests)))
            free = list(pool.map(lambda _: call(free_url, token), range(2)))
        answered_while_locked = time.monotonic() - locked_at < args.hold
        sleeper.join()
        holder.rollback()
        holder.close()
        after = call(locked_url, token)
        slowest = max(seconds for _, seconds, _ in locked)
        limit = 2 + MARGIN_S
        statuses = Counter(str(status) for status, _, _ in locked)
        passed = (
            before[0] == 200 and after[0] == 200 and slowest < limit and answered_while_locked
            and all(status == 200 for status, _, _ in free) and lock_setting == LOCK_TIMEOUT
            and statement_setting == STATEMENT_TIMEOUT
        )
        return report(
            "slow_database", passed,
            requests=args.requests, lock_held_s=args.hold, lock_timeout=lock_setting,
            statement_timeout=statement_setting, slowest_locked_request_s=round(slowest, 2),
            must_answer_within_s=limit, statuses_while_locked=dict(statuses),
            retry_after_while_locked=sorted({retry for _, _, retry in locked}),
            other_tables_while_locked=[status for status, _, _ in free], status_after_release=after[0],
        )
    finally:
        platform.stop()


if __name__ == "__main__":
    sys.exit(main())
