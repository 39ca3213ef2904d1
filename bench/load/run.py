"""Whole-system load test: N simulated traders against the platform `make run` starts, with locust.

    source your env (DATABASE_URL, REDIS_URL)
    .venv/bin/python bench/load/run.py --users 5000 --duration 120      # the full run (a quiet host)
    .venv/bin/python bench/load/run.py --users 200 --duration 30        # a quick check

1. Starts the platform through bench/nexus_platform.py (the Procfile's processes, as `make run` does, on a
   database of its own `<database>_bench_load`, recreated, and a Redis key prefix of its own), with
   `--web-processes` web servers (WEB_CONCURRENCY; extra daphnes on their own ports while the Procfile
   starts one).
2. Seeds one trader per user (not timed; `--seed-procs` processes in parallel), each through the product's
   services in its own row-level-security context: the user (system context), a Pro trial, a paper portfolio
   holding 1,000,000 USDT, a paper connection, an API token, and a signed-in session (in the Redis session
   store, as a login leaves it).
3. Runs locust (bench/load/locustfile.py) headless with `--processes` worker processes: every trader holds the
   dashboard's sockets (/ws/user/ and /ws/market/) and browses pages, places paper orders, creates alerts and
   calls the API. Users start at `--spawn-rate` a second; statistics are reset once all are running, then the
   run lasts `--duration` seconds.
4. Then the raw floor in the same run: bench/broadcast.py's minimal WebSocket broadcast server (one
   channel-layer reader, a loop over its sockets) gets the same number of sockets from the same locust
   clients for `--floor-duration` seconds, timing the same ticks.

While it runs, a sampler records every 2 s the database connections of the bench database
(pg_stat_activity, by state and role) and each process's RSS and CPU (psutil, summed over its children).

Prints ONE JSON line: per-endpoint count / p50 / p95 / p99 / failures, the HTTP error rate, sockets held
(connected minus dropped, and what reconnected), tick-to-browser p50/p95/p99 for Nexus and for the floor and
their ratio, database connections (peak and mean), RSS and CPU per process (peak and mean), and the targets:
HTTP p95 < 500 ms on every endpoint, errors < 0.1 %, tick-to-browser p99 within 1.5x the floor's.
Percentiles are locust's (rounded to two significant digits above 100 ms). All of it runs on one host: the
clients take CPU from the servers, so the figures are an upper bound of a dedicated deployment's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent))

from nexus_platform import (  # noqa: E402 - bench/ is on the path
    PYTHON,
    ROOT,
    Platform,
    free_port,
    http_status,
    pg_connections,
    raise_fd_limit,
    wait_until,
)

TARGET_P95_MS = 500
TARGET_ERROR_RATE = 0.001
TARGET_TICK_RATIO = 1.5
CASH = Decimal("1000000")


# --- seeding ---------------------------------------------------------------------------------------------
def _seed_range(args: tuple[int, int]) -> list[dict]:
    from django.conf import settings
    from django.contrib.sessions.backends.cache import SessionStore
    from django.db import connections
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from accounts.models import User
    from accounts.services import api_token_create
    from billing.choices import PlanCode
    from billing.services import subscription_trial_grant
    from core.rls import system_context, tenant
    from portfolios.choices import PortfolioKind, TransactionKind
    from portfolios.services import portfolio_create, transaction_record
    from trading.connections.services import connection_create

    connections.close_all()  # a forked child opens its own
    start, stop = args
    expires_on = datetime.now(UTC).date() + timedelta(days=2)
    traders = []
    for n in range(start, stop):
        with system_context(reason="load test: a trader signs up"):
            user = User.objects.create_user(email=f"load{n}@bench.local", password=None)
        subscription_trial_grant(user=user, plan_code=PlanCode.PRO)
        with tenant(user.pk):
            portfolio = portfolio_create(user=user, name="Paper", base_currency="USDT", kind=PortfolioKind.PAPER)
            transaction_record(
                user=user, portfolio=portfolio, kind=TransactionKind.DEPOSIT, quantity=CASH, currency="USDT",
                executed_at=timezone.now(), external_id="load-cash",
            )
            connection = connection_create(user=user, label="Paper", venue="paper")
            _, token = api_token_create(user=user, name="load", expires_on=expires_on)
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        traders.append({
            "session": session.session_key, "csrf": get_random_string(32), "token": token,
            "portfolio": portfolio.pk, "connection": connection.pk,
        })
    connections.close_all()
    return traders


def seed_traders(count: int, procs: int) -> list[dict]:
    import django

    django.setup()
    from django.db import connections

    connections.close_all()
    size = math.ceil(count / procs)
    ranges = [(start, min(count, start + size)) for start in range(0, count, size)]
    with mp.get_context("fork").Pool(len(ranges)) as pool:
        return [trader for part in pool.map(_seed_range, ranges) for trader in part]


# --- sampling --------------------------------------------------------------------------------------------
class Sampler(threading.Thread):
    def __init__(self, platform: Platform, extra: dict[str, list[int]] | None = None) -> None:
        super().__init__(daemon=True)
        self.platform = platform
        self.stop_event = threading.Event()
        self.db: list[dict[str, int]] = []
        self.procs: list[dict[str, dict[str, float]]] = []
        self.host_cpu: list[float] = []
        self.locust_pids: list[int] = []
        self.market_sockets: list[float] = []

    def run(self) -> None:
        import psutil

        psutil.cpu_percent(None)
        locust_cache: dict[int, psutil.Process] = {}
        while not self.stop_event.wait(2):
            try:
                self.db.append(pg_connections(self.platform.env))
            except Exception:  # noqa: BLE001, S110 - the database refusing connections is itself a figure
                self.db.append({"total": -1})
            self.market_sockets.append(sum(_gauge(f"{url}/metrics", "marketdata_ws_clients")
                                           for url in self.platform.web_urls))
            sample = self.platform.sample()
            rss = cpu = 0.0
            for pid in self.locust_pids:
                try:
                    root = locust_cache.setdefault(pid, psutil.Process(pid))
                    for proc in [root, *root.children(recursive=True)]:
                        proc = locust_cache.setdefault(proc.pid, proc)
                        rss += proc.memory_info().rss
                        cpu += proc.cpu_percent(None)
                except psutil.Error:
                    continue
            if self.locust_pids:
                sample["locust (clients)"] = {"rss_mb": round(rss / 2**20, 1), "cpu_pct": round(cpu, 1)}
            self.procs.append(sample)
            self.host_cpu.append(psutil.cpu_percent(None))

    def summary(self) -> dict:
        db_totals = [row["total"] for row in self.db if row["total"] >= 0]
        keys = sorted({key for row in self.db for key in row if key != "total"})
        processes: dict[str, dict] = {}
        for name in sorted({name for row in self.procs for name in row}):
            rows = [row[name] for row in self.procs if name in row]
            processes[name] = {
                "rss_mb_peak": max(r["rss_mb"] for r in rows),
                "cpu_pct_mean": round(sum(r["cpu_pct"] for r in rows[1:]) / max(1, len(rows) - 1), 1),
                "cpu_pct_peak": max(r["cpu_pct"] for r in rows[1:]) if len(rows) > 1 else None,
            }
        return {
            "db_connections": {
                "peak": max(db_totals, default=None),
                "mean": round(sum(db_totals) / len(db_totals), 1) if db_totals else None,
                "samples_refused": sum(1 for row in self.db if row["total"] < 0),
                "peak_by": {key: max(row.get(key, 0) for row in self.db) for key in keys},
            },
            "market_sockets_peak_server_side": max(self.market_sockets, default=None),
            "processes": processes,
            "host_cpu_pct_mean": round(sum(self.host_cpu) / len(self.host_cpu), 1) if self.host_cpu else None,
        }


# --- locust ----------------------------------------------------------------------------------------------
def run_locust(args, env: dict, *, mode: str, duration: float, out: Path, sampler: Sampler | None) -> list[dict]:
    ramp = math.ceil(args.users / args.spawn_rate)
    command = [
        PYTHON, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{int(ramp + duration)}s",
        "--reset-stats", "--csv", str(out / mode), "--only-summary", "--stop-timeout", "10",
        "--host", env["LOAD_WEB_URLS"].split(",")[0], "--loglevel", "WARNING",
    ]
    if args.processes > 1:
        command += ["--processes", str(args.processes)]
    log = open(out / f"locust-{mode}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=ROOT, env={**env, "LOAD_MODE": mode, "LOAD_PROCESSES": str(args.processes)},
        stdout=log, stderr=subprocess.STDOUT,
    )
    if sampler is not None:
        sampler.locust_pids = [process.pid]
    try:
        process.wait(timeout=ramp + duration + 90)
    except subprocess.TimeoutExpired:
        # Locust did not exit after its run time (users stuck connecting to a saturated server): stop it; its
        # CSV files hold the statistics up to then (written every few seconds).
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        (out / f"{mode}.terminated").write_text("locust was stopped after its run time\n")
    if sampler is not None:
        sampler.locust_pids = []
    stats = out / f"{mode}_stats.csv"
    if not stats.exists():
        raise RuntimeError("locust wrote no statistics:\n" + (out / f"locust-{mode}.log").read_text()[-3000:])
    with stats.open() as handle:
        return list(csv.DictReader(handle))


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def endpoint_rows(rows: list[dict]) -> dict[str, dict]:
    result = {}
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        result[f"{row['Type']} {row['Name']}" if row["Type"] != "WS" else f"WS {row['Name']}"] = {
            "type": row["Type"],
            "count": int(row["Request Count"]),
            "content_total": int(round(float(row["Average Content Size"] or 0) * int(row["Request Count"]))),
            "failures": int(row["Failure Count"]),
            "p50_ms": _number(row["50%"]),
            "p95_ms": _number(row["95%"]),
            "p99_ms": _number(row["99%"]),
        }
    return result


def sockets_figures(endpoints: dict[str, dict]) -> dict:
    def total(prefix: str, field: str = "count") -> int:
        return sum(row[field] for name, row in endpoints.items() if name.startswith(prefix))

    connected = total("WS connect ") - total("WS connect ", "failures")
    return {
        # Each locust process reports the sockets it holds when the test stops (before closing them).
        "held_when_stopping": endpoints.get("WS held at end", {}).get("content_total"),
        "opened_after_stats_reset": connected,
        "connect_failures": total("WS connect ", "failures"),
        "dropped_by_server": total("WS closed "),
        "reconnected": total("WS reconnect "),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--spawn-rate", type=float, default=None, help="users started a second (default users/30)")
    parser.add_argument("--duration", type=float, default=120, help="measured seconds once every user runs")
    parser.add_argument("--floor-duration", type=float, default=None, help="seconds of the floor phase (default min(duration, 30))")
    parser.add_argument("--processes", type=int, default=None, help="locust worker processes (default 1 per 1,500 users)")
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument("--seed-procs", type=int, default=4)
    parser.add_argument("--market-share", type=float, default=1.0, help="share of traders holding /ws/market/")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true",
        help="keep the database and traders of the previous run when it seeded at least --users (while developing)",
    )
    args = parser.parse_args()
    args.spawn_rate = args.spawn_rate or max(10.0, args.users / 30)
    args.processes = args.processes or max(1, math.ceil(args.users / 1500))
    args.floor_duration = args.floor_duration or min(args.duration, 30)
    raise_fd_limit()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # still stop the platform (finally)

    platform = Platform("bench_load", web_processes=args.web_processes)
    os.environ.update(platform.env)
    cache = ROOT / ".data" / "bench-load-traders.json"
    cached = json.loads(cache.read_text()) if args.reuse and cache.exists() else []
    started = time.monotonic()
    if len(cached) >= args.users:  # the database and sessions of an earlier run with at least as many traders
        traders = cached[: args.users]
        prepare_seconds = seed_seconds = 0.0
    else:
        platform.prepare()
        prepare_seconds = time.monotonic() - started
        traders = seed_traders(args.users, args.seed_procs)
        seed_seconds = time.monotonic() - started - prepare_seconds
        cache.write_text(json.dumps(traders))
    out = platform.logs
    (out / "traders.json").write_text(json.dumps(traders))
    sampler = Sampler(platform)
    try:
        platform.start()
        wait_until(
            lambda: "marketdata_publishes_total{" in _text(f"http://127.0.0.1:{platform.metrics_port}/metrics"),
            timeout=120, what="the feed publishing",
        )
        env = {
            **platform.env,
            "LOAD_TRADERS": str(out / "traders.json"),
            "LOAD_WEB_URLS": ",".join(platform.web_urls),
            "LOAD_MARKET_SHARE": str(args.market_share),
        }
        sampler.start()
        rows = run_locust(args, env, mode="nexus", duration=args.duration, out=out, sampler=sampler)
        resources = sampler.summary()
        endpoints = endpoint_rows(rows)
        floor_endpoints: dict[str, dict] = {}
        if not args.no_floor:
            floor_port = free_port()
            platform.spawn(
                "floor", f"{PYTHON} {ROOT / 'bench' / 'broadcast.py'} --floor-server {floor_port}"
            )
            wait_until(lambda: http_status(f"http://127.0.0.1:{floor_port}/healthz") == 200, timeout=60,
                       what="the floor server")
            env["LOAD_FLOOR_URL"] = f"ws://127.0.0.1:{floor_port}/ws"
            floor_endpoints = endpoint_rows(
                run_locust(args, env, mode="floor", duration=args.floor_duration, out=out, sampler=None)
            )
    finally:
        sampler.stop_event.set()
        platform.stop()

    http = {name: row for name, row in endpoints.items() if row["type"] != "WS"}
    requests = sum(row["count"] for row in http.values())
    failures = sum(row["failures"] for row in http.values())
    tick = endpoints.get("WS tick-to-browser", {})
    floor_tick = floor_endpoints.get("WS tick-to-browser", {})
    ratio = (
        round(tick["p99_ms"] / floor_tick["p99_ms"], 2)
        if tick.get("p99_ms") and floor_tick.get("p99_ms") else None
    )
    worst_p95 = max((row["p95_ms"] or 0 for row in http.values()), default=None)
    error_rate = round(failures / requests, 5) if requests else None
    result = {
        "bench": "load",
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration_s": args.duration,
        "locust_processes": args.processes,
        "web_processes": len(platform.web_urls) if len(platform.web_urls) > 1 else args.web_processes,
        "platform_processes": sorted(platform.names),
        "cpu_count": os.cpu_count(),
        "prepare_seconds": round(prepare_seconds, 1),
        "seed_seconds": round(seed_seconds, 1),
        "http_requests": requests,
        "http_requests_per_s": round(requests / args.duration, 1),
        "http_errors": failures,
        "http_error_rate": error_rate,
        "endpoints": {name: {k: v for k, v in row.items() if k != "type"} for name, row in http.items()},
        "sockets": sockets_figures(endpoints),
        "tick_to_browser": {k: tick.get(k) for k in ("count", "p50_ms", "p95_ms", "p99_ms")},
        "floor_tick_to_browser": {k: floor_tick.get(k) for k in ("count", "p50_ms", "p95_ms", "p99_ms")},
        "floor_sockets": sockets_figures(floor_endpoints) if floor_endpoints else None,
        "locust_stopped_by_force": sorted(path.stem for path in out.glob("*.terminated")),
        "tick_p99_ratio_to_floor": ratio,
        **resources,
        "targets": {
            "http_p95_ms_below": TARGET_P95_MS, "error_rate_below": TARGET_ERROR_RATE,
            "tick_p99_ratio_within": TARGET_TICK_RATIO,
        },
        "target_http_p95": worst_p95 is not None and worst_p95 < TARGET_P95_MS,
        "target_errors": error_rate is not None and error_rate < TARGET_ERROR_RATE,
        "target_tick_ratio": ratio is not None and ratio <= TARGET_TICK_RATIO,
        "logs": str(out),
    }
    result["targets_met"] = result["target_http_p95"] and result["target_errors"] and result["target_tick_ratio"]
    print(json.dumps(result))
    return 0


def _gauge(url: str, name: str) -> float:
    """The sum of a gauge's samples on a Prometheus text endpoint (0 when unreachable)."""
    total = 0.0
    for line in _text(url).splitlines():
        if line.startswith(f"{name}{{") or line.startswith(f"{name} "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _text(url: str) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.read().decode()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
