"""Drill: Redis restarts under load (a private redis-server of the drill's own, never the machine's).

Redis is the Celery broker, the channel layer, the cache and the session store. The platform (web, worker,
beat, feed: the Procfile's commands) runs on a private redis-server; browser-like sockets hold /ws/market/.
A bot fan-out (`--bots` traders with one DCA bot each) is sent, and Redis is restarted (SIGTERM: it writes
its append-only file; it stays down `--down` seconds) while the fan-out's messages are queued. The drill
then checks that every socket receives prices again (clients reconnect where the server closed them),
that Celery resumes (a second fan-out sent after the restart completes), and that no plan was lost or run
twice: every plan of both signals executed, one order / fill / portfolio transaction each.

    python bench/faults/redis_restart.py [--bots 200] [--sockets 20] [--down 3]
"""

from __future__ import annotations

import argparse
import sys
import time

from common import SUFFIX, Fleet, Platform, PrivateRedis, django_setup, report, wait_until
from fanout_kit import counts, seed_bots, signal_send


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bots", type=int, default=200)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--down", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=180, help="seconds allowed for every plan to execute")
    args = parser.parse_args()
    redis = PrivateRedis()
    redis.start()
    platform = Platform(
        SUFFIX, processes=["web", "worker", "beat", "feed"], web_processes=1, redis_url=redis.url,
        settings={"CELERY_BROKER_URL": redis.url, "TRADING_SIGNAL_MAX_LAG_SECONDS": "7200"},
    )
    fleet = None
    try:
        platform.prepare(recreate=False)
        django_setup(platform.env)
        tag = seed_bots(args.bots)
        platform.start()
        base = platform.web_urls[0]
        fleet = Fleet(args.sockets, [base.replace("http://", "ws://") + "/ws/market/?view=row"], base)
        wait_until(lambda: fleet.receiving_since(time.time() - 3) == args.sockets, timeout=120, what="sockets live")
        connects_before = fleet.connects()

        first = signal_send(tag, minutes_ago=1)
        restarted_at = time.time()
        redis.restart(down_seconds=args.down)
        back_at = time.time()
        wait_until(lambda: fleet.receiving_since(back_at + 1) == args.sockets, timeout=120,
                   what="every socket receiving again")
        sockets_back = time.time() - back_at
        second = signal_send(tag, minutes_ago=0)

        def all_executed():
            figures = counts(tag, [first, second])
            done = figures["plans_by_status"].get("executed", 0)
            return figures if figures["plans"] >= 2 * args.bots and done == figures["plans"] else None

        try:
            final = wait_until(all_executed, timeout=args.timeout, interval=1, what="every plan executed")
        except TimeoutError:
            final = counts(tag, [first, second])
        executed_after = time.time() - back_at
        lost = 2 * args.bots - final["plans_by_status"].get("executed", 0)
        passed = (
            lost == 0 and final["duplicate_orders"] == 0 and final["duplicate_fills"] == 0
            and final["duplicate_portfolio_transactions"] == 0 and fleet.connected() == args.sockets
        )
        return report(
            "redis_restart", passed,
            bots=args.bots, sockets=args.sockets, redis_down_s=round(back_at - restarted_at, 1),
            sockets_receiving_again_after_s=round(sockets_back, 1),
            socket_reconnects=fleet.connects() - connects_before,
            plans_executed_within_s=round(executed_after, 1), plans_lost=lost, **final,
        )
    except TimeoutError as error:
        return report("redis_restart", False, error=str(error), web_log=platform.log_tail("web", 1500))
    finally:
        if fleet is not None:
            fleet.close()
        platform.stop()
        redis.cleanup()


if __name__ == "__main__":
    sys.exit(main())
