"""Shared by bench/broadcast.py and bench/upstream_calls.py: the real market stack in subprocesses
(daphne + the feed + Redis channel layer, on a database of its own) and WebSocket clients in worker
processes that time each frame from the tick reaching the feed (`data-tick-at`) to its arrival."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from bisect import bisect_left
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
import benchenv  # noqa: E402 - bench/ is on the path when a bench runs

TICK_AT = re.compile(rb'data-tick-at="([0-9.]+)"')
# Each symbol's price fragment in a row-view frame: its slug and the publish (seq) it shows.
FRAGMENT = re.compile(rb'id="q-([A-Za-z0-9-]+)-price"[^>]*?data-seq="([0-9]+)"')
# A tick that reached the feed this long before the end of the window may still be on its way: not judged.
IN_FLIGHT_SECONDS = 1.0


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
def every_tick_latencies(
    seen: list[dict[str, list[tuple[int, float]]]], stamps: Path, start: float, end: float, wanted
) -> tuple[list[float], int]:
    """Each tick's own latency, for each client: from the tick reaching the feed (every tick coalesced into a
    publish is stamped, see bench/broadcast.py) to the first frame showing that publish or a newer one of its
    symbol. Ticks of the window no client frame ever showed (lost) are counted, not timed."""
    publishes = []
    for line in stamps.read_text().splitlines():
        try:
            slug, seq, arrivals = json.loads(line)
        except ValueError:
            continue  # the line the feed was writing when we read
        if wanted is None or slug in wanted:
            publishes.append((slug, seq, [a for a in arrivals if start <= a <= end - IN_FLIGHT_SECONDS]))
    latencies: list[float] = []
    lost = 0
    for frames in seen:
        indexed = {}
        for slug, got in frames.items():
            ordered = sorted(got)
            earliest = [at for _, at in ordered]
            for position in range(len(earliest) - 2, -1, -1):  # the first frame showing this seq or a newer one
                earliest[position] = min(earliest[position], earliest[position + 1])
            indexed[slug] = ([seq for seq, _ in ordered], earliest)
        for slug, seq, arrivals in publishes:
            if not arrivals:
                continue
            seqs, times = indexed.get(slug, ([], []))
            position = bisect_left(seqs, seq)
            if position == len(seqs):
                lost += len(arrivals)
                continue
            latencies.extend((times[position] - arrival) * 1000 for arrival in arrivals)
    return latencies, lost


async def _clients(url: str, origin: str, count: int, ready, go, done, results, stamps=None) -> None:
    import aiohttp

    latencies: list[float] = []
    seen: list[dict[str, list[tuple[int, float]]]] = []  # per socket: slug -> (seq, arrival) in order
    wanted = frozenset(filter(None, parse_qs(urlsplit(url).query).get("symbols", [""])[0].split(","))) or None
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
        shown: dict[str, list[tuple[int, float]]] = {}
        seen.append(shown)
        async for message in ws:
            now = time.time()
            if not measuring:
                continue
            data = message.data.encode() if isinstance(message.data, str) else message.data
            for stamp in TICK_AT.findall(data):
                latencies.append((now - float(stamp)) * 1000)
            for slug, seq in FRAGMENT.findall(data):
                shown.setdefault(slug.decode(), []).append((int(seq), now))
            frames += 1

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    ready.set()
    while not go.is_set():
        await asyncio.sleep(0.05)
    measuring, window_start = True, time.time()
    while not done.is_set():
        await asyncio.sleep(0.05)
    measuring, window_end = False, time.time()
    closed = sum(1 for ws in sockets if ws.closed)
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    await session.close()
    every, lost = (
        every_tick_latencies(seen, Path(stamps), window_start, window_end, wanted) if stamps else ([], 0)
    )
    results.put(
        {
            "latencies": latencies,
            "every_tick": every,
            "ticks_lost": lost,
            "frames": frames,
            "errors": errors,
            "connected": len(sockets),
            "closed_early": closed,
            "connect_seconds": connect_seconds,
        }
    )


def _client_process(url, origin, count, ready, go, done, results, stamps=None) -> None:
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_clients(url, origin, count, ready, go, done, results, stamps))


class ClientFleet:
    """`count` WebSocket clients spread over `procs` processes; measure between go() and finish().

    With `stamps` (the file a stamping feed writes, see bench/broadcast.py) each tick is timed too, not only
    the last tick of each publish (`data-tick-at`)."""

    def __init__(self, *, url: str, origin: str, count: int, procs: int, stamps: Path | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.go_event, self.done_event, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.ready = []
        self.processes = []
        per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
        for n in per:
            ready = ctx.Event()
            process = ctx.Process(
                target=_client_process,
                args=(url, origin, n, ready, self.go_event, self.done_event, self.results,
                      str(stamps) if stamps else None),
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
        every = [v for part in parts for v in part["every_tick"]]
        each_tick = {}
        if every or any(part["ticks_lost"] for part in parts):
            timed = summary(every, len(every), seconds)
            each_tick = {
                "every_tick": {
                    **{key: timed[key] for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")},
                    "ticks_timed": len(every),  # ticks x clients
                    "ticks_lost": sum(part["ticks_lost"] for part in parts),
                }
            }
        return {
            **summary(latencies, frames, seconds),
            **each_tick,
            "connected": sum(part["connected"] for part in parts),
            "connect_errors": sum(part["errors"] for part in parts),
            "dropped_during_run": sum(part["closed_early"] for part in parts),
        }
