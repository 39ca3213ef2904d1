"""Shared by bench/broadcast.py and bench/upstream_calls.py: the real market stack in subprocesses
(daphne + the feed + Redis channel layer, on a database of its own) and WebSocket clients in worker
processes that time each frame from the tick reaching the feed (`data-tick-at`) to its arrival."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
import benchenv  # noqa: E402 - bench/ is on the path when a bench runs

TICK_AT = re.compile(rb'data-tick-at="([0-9.]+)"')


def bench_environment(suffix: str) -> dict[str, str]:
    return benchenv.bench_environment(suffix, MARKET_METRICS_PORT="0")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def prepare_database(env: dict) -> None:
    manage(env, "db_bootstrap", "--recreate")
    manage(env, "migrate", "--database", "owner", "-v", "0")
    manage(env, "shell", "-c", "from marketdata.services import instruments_seed; instruments_seed()")


def start(env: dict, args: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 - the process owns it until it ends
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def start_daphne(env: dict, port: int, log: Path) -> subprocess.Popen:
    process = start(
        env, [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"], log
    )
    wait_http(f"http://127.0.0.1:{port}/healthz", process, log)
    return process


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up:\n" + log.read_text()[-3000:]) from None
            time.sleep(0.2)


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(latencies_ms: list[float], frames: int, seconds: float) -> dict:
    return {
        "p50_ms": _round(percentile(latencies_ms, 50)),
        "p95_ms": _round(percentile(latencies_ms, 95)),
        "p99_ms": _round(percentile(latencies_ms, 99)),
        "max_ms": _round(max(latencies_ms) if latencies_ms else None),
        "mean_ms": _round(statistics.fmean(latencies_ms) if latencies_ms else None),
        "frames": frames,
        "frames_per_s": round(frames / seconds, 1) if seconds else None,
    }


def _round(value):
    return None if value is None else round(value, 1)


# --- Prometheus histograms, scraped before and after a window -------------------------------------------
def scrape(url: str, name: str) -> dict[str, float]:
    """Cumulative bucket counts of one histogram from a Prometheus text endpoint."""
    buckets: dict[str, float] = {}
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
            text = response.read().decode()
    except OSError:
        return buckets
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_quantiles(before: dict, after: dict) -> dict:
    """p50 / p99 upper bounds (ms) of what was observed between two scrapes."""
    bounds = sorted((float(le), after[le] - before.get(le, 0)) for le in after if le != "+Inf")
    total = after.get("+Inf", 0) - before.get("+Inf", 0)
    result = {"count": int(total)}
    for q in (50, 99):
        result[f"p{q}_ms_le"] = next(
            (round(bound * 1000, 1) for bound, count in bounds if total and count >= total * q / 100), None
        )
    return result


# --- clients, in worker processes ---------------------------------------------------------------------
async def _clients(url: str, origin: str, count: int, ready, go, done, results) -> None:
    import aiohttp

    latencies: list[float] = []
    frames = 0
    errors = 0
    measuring = False
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    sockets = []

    async def connect() -> None:
        nonlocal errors
        for attempt in range(5):
            try:
                sockets.append(
                    await session.ws_connect(
                        url, headers={"Origin": origin}, heartbeat=None, autoping=True, max_msg_size=0
                    )
                )
                return
            except Exception:
                await asyncio.sleep(0.2 * (attempt + 1))
        errors += 1

    started = time.monotonic()
    for batch in range(0, count, 100):
        await asyncio.gather(*(connect() for _ in range(min(100, count - batch))))
    connect_seconds = time.monotonic() - started

    async def read(ws) -> None:
        nonlocal frames
        async for message in ws:
            now = time.time()
            if not measuring:
                continue
            data = message.data.encode() if isinstance(message.data, str) else message.data
            for stamp in TICK_AT.findall(data):
                latencies.append((now - float(stamp)) * 1000)
            frames += 1

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    ready.set()
    while not go.is_set():
        await asyncio.sleep(0.05)
    measuring = True
    while not done.is_set():
        await asyncio.sleep(0.05)
    measuring = False
    closed = sum(1 for ws in sockets if ws.closed)
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    await session.close()
    results.put(
        {
            "latencies": latencies,
            "frames": frames,
            "errors": errors,
            "connected": len(sockets),
            "closed_early": closed,
            "connect_seconds": connect_seconds,
        }
    )


def _client_process(url, origin, count, ready, go, done, results) -> None:
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_clients(url, origin, count, ready, go, done, results))


class ClientFleet:
    """`count` WebSocket clients spread over `procs` processes; measure between go() and finish()."""

    def __init__(self, *, url: str, origin: str, count: int, procs: int) -> None:
        ctx = mp.get_context("spawn")
        self.go_event, self.done_event, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.ready = []
        self.processes = []
        per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        for n in per:
            ready = ctx.Event()
            process = ctx.Process(
                target=_client_process,
                args=(url, origin, n, ready, self.go_event, self.done_event, self.results),
            )
            process.start()
            self.ready.append(ready)
            self.processes.append(process)
        self.count = count

    def wait_connected(self, timeout: float = 300) -> float:
        started = time.monotonic()
        for ready in self.ready:
            if not ready.wait(timeout):
                raise RuntimeError("clients did not connect in time")
        return time.monotonic() - started

    def measure(self, seconds: float) -> dict:
        self.measure_started(seconds)
        return self.collect()

    def measure_started(self, seconds: float) -> dict:
        """Measure for `seconds`; collect() gathers the results (so callers can sample the host first)."""
        self.go_event.set()
        time.sleep(seconds)
        self.done_event.set()
        self.seconds = seconds
        return {}

    def collect(self) -> dict:
        seconds = self.seconds
        parts = [self.results.get(timeout=120) for _ in self.processes]
        for process in self.processes:
            process.join(timeout=30)
        latencies = [v for part in parts for v in part["latencies"]]
        frames = sum(part["frames"] for part in parts)
        return {
            **summary(latencies, frames, seconds),
            "connected": sum(part["connected"] for part in parts),
            "connect_errors": sum(part["errors"] for part in parts),
            "dropped_during_run": sum(part["closed_early"] for part in parts),
        }
