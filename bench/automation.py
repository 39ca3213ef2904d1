"""Automation rules under incoming webhook load: triggers at a steady rate, trigger to action end to end.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/automation.py [--rules 10000] [--hooks 1000] [--rate 500] [--seconds 30] \
        [--replays 0.05] [--web-processes 2] [--workers 2] [--reuse-db]

Uses a database of its own (<name>_bench_automation, recreated unless --reuse-db; its rows are emptied
either way) and a Redis key prefix of its own, and starts the Procfile's processes through
bench/nexus_platform.py: the web tier (`python -m config.webserver`, `--web-processes` daphne children on
one socket) and the `worker-default` Celery worker (`--workers` processes; `automation.run_execute` is on
the default queue, as is `automation.runs_drain`, which carries out the notify runs). No feed, no beat:
the measured path is only the webhook's.

1. Seeds (not timed) `--rules` active rules over `--rules`/5 traders with bulk inserts on the system
   role's connection, their fields built by the product's own validation (`_rule_clean`, once per kind):
   `--hooks` incoming-webhook rules (default a tenth; a TradingView template, one notify action, 120 runs
   an hour allowed), and the rest price-cross / above / below rules and percent-move rules (each with the
   armed, repeating alert it owns, as `rule_create` makes it), schedule, order-filled and regime-change
   rules. Each trader gets automation notices in-app only (an email preference off), so the action is a
   notification row, its in-app delivery row and the toast, all in the database.
2. Sends `--rate` triggers a second for `--seconds` seconds, open loop: each POST to
   /automation/hooks/<token>/ starts at its scheduled time (start + i / rate) whether or not earlier ones
   were answered (aiohttp, up to `--connections` connections). Hook rules are taken round robin; each body
   carries a unique `id`, the `timestamp` and TradingView-style fields; one body in two carries the token,
   the other is signed (X-Nexus-Signature). `--replays` (default 5%) of the triggers are delivered a second
   time at once, to the other web process (a sender retrying): one of the two may be accepted, never both.
   A request unanswered after 30 s counts as unanswered.
3. Waits until every recorded run is finished and no new one has appeared for 5 s (the web tier goes on
   with requests whose sender gave up; nothing moving for 60 s ends the wait too), then reads the runs,
   their action rows and the notifications. Latency of a trigger = the action's result row's `created_at`
   (written in the transaction that acts, by the worker) minus the trigger's scheduled send time; the
   stages (send -> run recorded by the endpoint -> claimed by a worker -> action recorded) are reported
   too. `duplicates`: runs, action rows or notifications beyond one per event id sent, and replayed
   triggers accepted twice; `lost`: triggers answered 202 (either delivery) with no action recorded.

Prints one JSON line. The sender, the web tier, the worker, PostgreSQL and Redis share the host's cores
(2 on the reference machine, often with other work running): the figures are what this host sustains, not
what a deployment with its own database host would.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

from nexus_platform import Platform, wait_until  # noqa: E402 - bench/ is on the path

SUFFIX = "bench_automation"
DRAIN_STALL_SECONDS = 60
REQUEST_TIMEOUT = 30
TEMPLATE = {"ticker": "{{ticker}}", "action": "{{strategy.order.action}}", "contracts": "{{strategy.order.contracts}}"}
TICKERS = ["BINANCE:BTCUSDT", "ETHUSDT", "SOL/USDT", "XRP-USDT"]
# What the rest of the rules are, by share (after the hook rules).
OTHER_KINDS = {"price": 0.45, "percent_move": 0.2, "schedule": 0.12, "order_filled": 0.12, "regime_change": 0.11}


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def stats_ms(samples: list[float]) -> dict:
    return {"p50": ms(percentile(samples, 0.5)), "p90": ms(percentile(samples, 0.9)),
            "p99": ms(percentile(samples, 0.99)), "max": ms(max(samples) if samples else None)}


# --- seeding -----------------------------------------------------------------------------------------------
def kind_fields(kind: str, n: int) -> dict:
    """A rule's cleaned fields, by the product's validation (the notify action; a trigger of `kind`)."""
    from automation.services import _rule_clean

    symbol = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"][n % 4]
    trigger = {
        "webhook": {"template": TEMPLATE},
        "price": {"symbol": symbol, "direction": ["above", "below", "cross"][n % 3],
                  "price": str(1000 + n % 5000), "cooldown_minutes": 15},
        "percent_move": {"symbol": symbol, "percent": ["-5", "3", "-2.5"][n % 3], "window_minutes": 60,
                         "cooldown_minutes": 30},
        "schedule": {"cron": "0 9 * * 1-5"},
        "order_filled": {"symbol": ""},
        "regime_change": {"symbol": symbol, "regime": ""},
    }[kind]
    return _rule_clean(
        user=None, name=f"bench {kind} {n}", trigger_kind=kind, trigger=trigger, conditions=[],
        actions=[{"kind": "notify", "message": "{{rule}}: {{ticker}} {{strategy.order.action}}"
                  if kind == "webhook" else "{{rule}} fired"}],
        max_runs_per_hour=120 if kind == "webhook" else 10, daily_order_cap=None,
    )


def seed(*, rules: int, hooks: int) -> list[tuple[str, str]]:
    """Traders, their rules (and price rules' alerts), their notification preference. Returns the hook
    rules' (token, secret)."""
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from accounts.models import User
    from alerts.models import Alert
    from automation.choices import NOTIFICATION_KIND, TriggerKind
    from automation.models import Rule
    from automation.services import _alert_fields, schedule_next
    from core.models import NotificationPreference
    from core.rls import system_context
    from marketdata.models import Instrument

    traders = max(1, rules // 5)
    kinds = ["webhook"] * hooks
    others = rules - hooks
    for kind, share in OTHER_KINDS.items():
        kinds += [kind] * int(others * share)
    kinds += ["price"] * (rules - len(kinds))
    templates: dict[tuple[str, int], dict] = {}
    now = timezone.now()
    next_schedule = schedule_next(expression="0 9 * * 1-5", time_zone="UTC", after=now)
    password = make_password(None)
    hook_secrets: list[tuple[str, str]] = []
    with system_context(reason="bench: seed automation rules"):
        instruments = {i.symbol: i for i in Instrument.objects.all()}
        users = User.objects.bulk_create(
            [User(email=f"auto{n:06d}@bench.local", password=password) for n in range(traders)], batch_size=5000
        )
        NotificationPreference.objects.bulk_create(
            [NotificationPreference(user=u, kind=NOTIFICATION_KIND, channel="email", enabled=False) for u in users],
            batch_size=5000,
        )
        batch: list[Rule] = []
        alerts: list[Alert] = []
        for n, kind in enumerate(kinds):
            key = (kind, n % 12)  # a dozen variants of each kind (levels, directions, markets)
            if key not in templates:
                templates[key] = kind_fields(kind, n)
            fields = {**templates[key], "name": f"bench {kind} {n}"}
            rule = Rule(user=users[n % traders], secret=secrets.token_urlsafe(32), **fields)
            if kind == TriggerKind.WEBHOOK:
                rule.webhook_token = secrets.token_urlsafe(24)
                hook_secrets.append((rule.webhook_token, rule.secret))
            elif kind == TriggerKind.SCHEDULE:
                rule.next_run_at = next_schedule
            elif kind in (TriggerKind.PRICE, TriggerKind.PERCENT_MOVE):
                alert_fields = _alert_fields(rule)
                symbol = alert_fields.pop("symbol")
                rule.alert = Alert(user=rule.user, instrument=instruments[symbol], **alert_fields)
                alerts.append(rule.alert)
            batch.append(rule)
        Alert.objects.bulk_create(alerts, batch_size=5000)
        for rule in batch:
            if rule.alert is not None:
                rule.alert_id = rule.alert.pk
        Rule.objects.bulk_create(batch, batch_size=2000)
    from django.db import connections

    with connections["owner"].cursor() as cursor:  # what autovacuum does on a live database
        cursor.execute("ANALYZE automation_rule; ANALYZE alerts_alert; ANALYZE accounts_user")
    return hook_secrets


def empty(*, recreated: bool) -> None:
    from django.db import connections

    if recreated:
        return
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "TRUNCATE accounts_user, automation_rule, automation_rulerun, automation_runaction, alerts_alert, "
            "core_notification, core_notificationdelivery, core_notificationpreference, core_auditlog "
            "RESTART IDENTITY CASCADE"
        )


# --- load --------------------------------------------------------------------------------------------------
def body_for(n: int, tag: str, secret: str, sent_at: float) -> tuple[bytes, dict[str, str]]:
    payload = {
        "id": f"{tag}-{n}",
        "timestamp": round(sent_at, 3),
        "ticker": TICKERS[n % len(TICKERS)],
        "action": "buy" if n % 2 else "sell",
        "contracts": "0.01",
        "close": "64000.5",
    }
    headers = {"Content-Type": "application/json"}
    if n % 2:
        body = json.dumps(payload).encode()
        headers["X-Nexus-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    else:
        body = json.dumps({**payload, "token": secret}).encode()
    return body, headers


async def send_all(*, urls: list[str], hooks: list[tuple[str, str]], rate: float, seconds: float,
                   connections: int, tag: str, replays: float = 0) -> dict:
    import aiohttp

    total = int(rate * seconds)
    sent_at: dict[int, float] = {}
    lag: list[float] = []
    answered: dict[int, tuple[int, float]] = {}
    replayed: dict[int, int] = {}  # event -> the status its second delivery got
    failures: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def fire(n: int, scheduled: float, *, replay: bool = False) -> None:
            token, secret = hooks[n % len(hooks)]
            body, headers = body_for(n, tag, secret, scheduled)
            url = f"{urls[(n + replay) % len(urls)]}/automation/hooks/{token}/"
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if replay:
                        replayed[n] = response.status
                    else:
                        answered[n] = (response.status, time.time() - scheduled)
            except TimeoutError:
                failures["unanswered"] += 1
            except aiohttp.ClientError as exc:
                failures[f"connection:{type(exc).__name__}"] += 1

        tasks = []
        loop = asyncio.get_running_loop()
        start_wall, start_mono = time.time() + 0.2, loop.time() + 0.2
        for n in range(total):
            due = start_mono + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            scheduled = start_wall + n / rate  # the wall clock the database's timestamps are compared with
            sent_at[n] = scheduled
            lag.append(max(0.0, loop.time() - due))
            tasks.append(asyncio.create_task(fire(n, scheduled)))
            if replays and int((n + 1) * replays) > int(n * replays):
                # The same delivery again at once (a sender retrying), to the other web process when there are two.
                tasks.append(asyncio.create_task(fire(n, scheduled, replay=True)))
        sending = loop.time() - start_mono
        await asyncio.gather(*tasks)
    return {"total": total, "sent_at": sent_at, "answered": answered, "replayed": replayed, "failures": failures,
            "lag": lag,
            "send_seconds": sending}


# --- results -----------------------------------------------------------------------------------------------
def stored(tag: str) -> dict:
    """Per event id sent: its runs, action rows and notifications, with their timestamps."""
    from django.db import connection

    from core.rls import system_context

    prefix = f"webhook:{tag}-"
    with system_context(reason="bench: read the runs of the triggers sent"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.event_id, r.status, extract(epoch FROM r.created_at), extract(epoch FROM r.claimed_at), "
            "extract(epoch FROM r.finished_at), count(a.id), min(extract(epoch FROM a.created_at)), "
            "count(a.id) FILTER (WHERE a.status = 'succeeded') "
            "FROM automation_rulerun r LEFT JOIN automation_runaction a ON a.run_id = r.id "
            "WHERE r.event_id LIKE %s GROUP BY r.id",
            [prefix + "%"],
        )
        runs = cursor.fetchall()
        cursor.execute(
            "SELECT count(*), count(DISTINCT dedup_key) FROM core_notification WHERE dedup_key IN ("
            "SELECT 'automation-run:' || r.id || ':0' FROM automation_rulerun r WHERE r.event_id LIKE %s)",
            [prefix + "%"],
        )
        notifications, distinct_notifications = cursor.fetchone()
    return {"runs": runs, "notifications": notifications, "distinct_notifications": distinct_notifications}


def run_counts(tag: str) -> tuple[int, int]:
    """(runs recorded, runs not finished yet) of the triggers sent under `tag`."""
    from django.db.models import Count, Q

    from automation.models import RuleRun
    from core.rls import system_context

    with system_context(reason="bench: count the runs of the triggers sent"):
        counts = RuleRun.objects.filter(event_id__startswith=f"webhook:{tag}-").aggregate(
            runs=Count("id"), open=Count("id", filter=Q(finished_at__isnull=True))
        )
    return counts["runs"], counts["open"]


def drain(tag: str) -> float:
    """Seconds until every recorded run is finished and no new run has appeared for a few seconds (the web
    tier still answers requests whose sender gave up), or nothing moved for DRAIN_STALL_SECONDS."""
    began = time.monotonic()
    last, last_change = (-1, -1), time.monotonic()
    while True:
        counts = run_counts(tag)
        if counts != last:
            last, last_change = counts, time.monotonic()
        quiet = time.monotonic() - last_change
        if (counts[1] == 0 and quiet > 5) or quiet > DRAIN_STALL_SECONDS:
            break
        time.sleep(0.5)
    return time.monotonic() - began


def summarize(sent: dict, rows: dict) -> dict:
    sent_at, answered = sent["sent_at"], sent["answered"]
    statuses = Counter(status for status, _ in answered.values())
    replayed = sent["replayed"]
    accepted = {n for n, (status, _) in answered.items() if status == 202} | {
        n for n, status in replayed.items() if status == 202}
    accepted_twice = sum(1 for n, status in replayed.items() if status == 202 and answered.get(n, (0,))[0] == 202)
    by_event: dict[int, list] = {}
    for row in rows["runs"]:
        n = int(row[0].rsplit("-", 1)[1])
        by_event.setdefault(n, []).append(row)
    latency, to_run, queued, acting = [], [], [], []
    for n, found in by_event.items():
        event_id, status, created, claimed, finished, actions, acted, _ = found[0]
        if acted is None:
            continue
        latency.append(float(acted) - sent_at[n])
        to_run.append(float(created) - sent_at[n])
        if claimed is not None:
            queued.append(float(claimed) - float(created))
            acting.append(float(acted) - float(claimed))
    run_duplicates = sum(len(found) - 1 for found in by_event.values())
    action_duplicates = sum(max(0, row[5] - 1) for found in by_event.values() for row in found)
    with_action = {n for n, found in by_event.items() if any(row[5] for row in found)}
    succeeded = {n for n, found in by_event.items() if any(row[7] for row in found)}
    run_statuses = Counter(row[1] for found in by_event.values() for row in found)
    acted_at = sorted(float(row[6]) for found in by_event.values() for row in found if row[6] is not None)
    window = (acted_at[-1] - acted_at[0]) if len(acted_at) > 1 else 0
    return {
        "triggers_sent": sent["total"],
        "trigger_rate_achieved": round(sent["total"] / sent["send_seconds"], 1) if sent["send_seconds"] else None,
        "send_lag_p99_ms": ms(percentile(sent["lag"], 0.99)),
        "answered": len(answered),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "unanswered": sent["failures"].get("unanswered", 0),
        "connection_errors": sum(v for k, v in sent["failures"].items() if k.startswith("connection:")),
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
        "errors": len(sent_at) - len(accepted),
        "response_ms": stats_ms([elapsed for _, elapsed in answered.values()]),
        "runs": sum(len(found) for found in by_event.values()),
        "run_statuses": dict(run_statuses),
        "actions_recorded": len(with_action),
        "actions_succeeded": len(succeeded),
        "replays_sent": len(replayed),
        "replay_status_counts": {str(k): v for k, v in sorted(Counter(replayed.values()).items())},
        "duplicates": run_duplicates + action_duplicates + accepted_twice
        + (rows["notifications"] - rows["distinct_notifications"]),
        "lost": len(accepted - with_action),
        "recorded_without_202": len(with_action - accepted),
        "notifications": rows["notifications"],
        "trigger_to_action_ms": stats_ms(latency),
        "stages_ms": {"send_to_run_recorded": stats_ms(to_run), "run_recorded_to_claimed": stats_ms(queued),
                      "claimed_to_action": stats_ms(acting)},
        "actions_per_second": round((len(acted_at) - 1) / window, 1) if window else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000, help="active rules in the database")
    parser.add_argument("--hooks", type=int, default=None, help="webhook rules the triggers hit (default rules/10)")
    parser.add_argument("--rate", type=float, default=500, help="triggers a second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (worker-default)")
    parser.add_argument("--replays", type=float, default=0.05,
                        help="share of triggers delivered a second time at once (a retrying sender); 0: none")
    parser.add_argument("--connections", type=int, default=1000, help="the sender's most open connections")
    parser.add_argument("--reuse-db", action="store_true", help="Keep the bench database (faster); its rows are emptied.")
    args = parser.parse_args()
    hooks_wanted = args.hooks if args.hooks is not None else max(1, args.rules // 10)
    if not 0 < hooks_wanted <= args.rules:
        parser.error("--hooks must be between 1 and --rules")

    platform = Platform(SUFFIX, processes=["web", "worker-default"], web_processes=args.web_processes)
    platform.commands["worker-default"] = platform.commands["worker-default"].replace(
        "--concurrency 2", f"--concurrency {args.workers}").replace("--loglevel info", "--loglevel warning")
    platform.prepare(recreate=not args.reuse_db)
    os.environ.update(platform.env)
    import django

    django.setup()
    empty(recreated=not args.reuse_db)
    began = time.monotonic()
    hooks = seed(rules=args.rules, hooks=hooks_wanted)
    seed_seconds = time.monotonic() - began
    tag = f"bench{uuid.uuid4().hex[:8]}"
    with platform:
        platform.start()
        # A few triggers through the whole path first: the worker is up, and the processes' first requests
        # and tasks have loaded what they need.
        warm = asyncio.run(send_all(urls=platform.web_urls, hooks=hooks, rate=10, seconds=0.4, connections=10,
                                    tag=f"{tag}warm"))
        if sorted(status for status, _ in warm["answered"].values()) != [202] * warm["total"]:
            sys.exit(f"the warm-up triggers were refused: {warm['answered']}\n{platform.log_tail('web')}")
        wait_until(lambda: run_counts(f"{tag}warm") == (warm["total"], 0), timeout=120, interval=0.5,
                   what="the warm-up triggers' runs")
        sent = asyncio.run(send_all(urls=platform.web_urls, hooks=hooks, rate=args.rate, seconds=args.seconds,
                                    connections=args.connections, tag=tag, replays=args.replays))
        drain_seconds = drain(tag)
        rows = stored(tag)
        worker_log = platform.log_tail("worker-default", 1500)
    result = {
        "bench": "automation",
        "rules_active": args.rules,
        "hook_rules": len(hooks),
        "traders": max(1, args.rules // 5),
        "rate": args.rate,
        "replay_share": args.replays,
        "seconds": args.seconds,
        "web_processes": args.web_processes,
        "celery_workers": args.workers,
        "seed_seconds": round(seed_seconds, 1),
        **summarize(sent, rows),
        "drain_seconds_after_send": round(drain_seconds, 1),
    }
    if result["lost"]:
        result["worker_log_tail"] = worker_log[-600:]
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
