"""`python -m config.webserver`: several daphne processes sharing one listening socket.

The parent binds the address once and starts `--workers` daphne children with `--fd <n>`: each accepts on
the same socket and the kernel spreads the connections among them (no balancer in between). WebSocket
groups live in the Redis channel layer, so a broadcast reaches every socket whichever child holds it.

The parent imports no Django. It restarts a child that dies (at most `MAX_RESTARTS` within
`RESTART_WINDOW` seconds, then it gives up and exits non-zero so the supervisor above sees it), and on
SIGTERM/SIGINT passes the signal on and waits up to `--graceful-timeout` seconds before killing.

Workers: `--workers`, else `WEB_CONCURRENCY`, else the number of CPUs this process may run on.
Database connections: each daphne borrows them from a pool per role (`--db-pool-size`, else
`WEB_DB_POOL_SIZE`, default 10; 0 turns it off), passed to the children as DB_POOL_SIZE. Daphne runs every
request in a thread of its own, so without a pool each request opens (and closes) its own connections.
The pool's size is also how many requests a process lets into Django at once (WEB_HTTP_MAX_INSIDE): 10,
not fewer, so that requests stuck on a locked table (up to DB_LOCK_TIMEOUT each) do not hold up all the
others behind them. Of those, only WEB_HTTP_CONCURRENCY (3) count as running until they have been inside for
WEB_HTTP_STALL_MS: more computing at once would only contend for the GIL (core/asgi_limit.py).
Arguments after `--` go to every daphne (e.g. `-- --proxy-headers`).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

APPLICATION = "config.asgi:application"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
POLL_SECONDS = 0.2


def say(message: str) -> None:
    print(f"[web] {message}", file=sys.stderr, flush=True)


DEFAULT_DB_POOL_SIZE = 10


def default_db_pool_size() -> int:
    return int(os.environ.get("WEB_DB_POOL_SIZE", str(DEFAULT_DB_POOL_SIZE)))


def default_workers() -> int:
    """WEB_CONCURRENCY, else the CPUs this process may use (cgroup/affinity aware where the OS says)."""
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured:
        return max(1, int(configured))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def daphne_command(fd: int, extra: list[str]) -> list[str]:
    script = Path(sys.executable).parent / "daphne"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "daphne"]
    return [*head, "--fd", str(fd), *extra, APPLICATION]


class Supervisor:
    def __init__(
        self, *, sock: socket.socket, workers: int, extra: list[str], graceful_timeout: float, db_pool_size: int = 0
    ) -> None:
        self.sock = sock
        self.db_pool_size = db_pool_size
        self.workers = workers
        self.extra = extra
        self.graceful_timeout = graceful_timeout
        self.children: dict[int, subprocess.Popen] = {}  # slot -> process
        self.restarts: deque[float] = deque()
        self.stopping = False

    def spawn(self, slot: int) -> None:
        env = {**os.environ, "NEXUS_WEB_WORKER": str(slot), "DB_POOL_SIZE": str(self.db_pool_size)}
        fd = self.sock.fileno()
        self.children[slot] = subprocess.Popen(daphne_command(fd, self.extra), pass_fds=(fd,), env=env)
        say(f"worker {slot}: daphne pid {self.children[slot].pid}")

    def stop(self, signum: int = signal.SIGTERM, _frame=None) -> None:
        self.stopping = True

    def run(self) -> int:
        for slot in range(self.workers):
            self.spawn(slot)
        while not self.stopping:
            time.sleep(POLL_SECONDS)
            for slot, child in list(self.children.items()):
                code = child.poll()
                if code is None or self.stopping:
                    continue
                now = time.monotonic()
                while self.restarts and now - self.restarts[0] > RESTART_WINDOW:
                    self.restarts.popleft()
                if len(self.restarts) >= MAX_RESTARTS:
                    say(f"worker {slot} exited ({code}); {MAX_RESTARTS} restarts within {RESTART_WINDOW:.0f}s: giving up")
                    self.shutdown()
                    return 1
                self.restarts.append(now)
                say(f"worker {slot} exited ({code}): restarting it")
                self.spawn(slot)
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m config.webserver", description=__doc__.splitlines()[0])
    parser.add_argument("--bind", "-b", default="127.0.0.1")
    parser.add_argument("--port", "-p", type=int, default=8000)
    parser.add_argument("--workers", "-w", type=int, default=None)
    parser.add_argument("--graceful-timeout", type=float, default=30.0)
    parser.add_argument("--db-pool-size", type=int, default=default_db_pool_size())
    args = parser.parse_args(argv)
    workers = args.workers or default_workers()
    sock = bind(args.bind, args.port)
    pool = f"a pool of up to {args.db_pool_size} connections per role" if args.db_pool_size > 0 else "no pool"
    say(f"listening on {args.bind}:{sock.getsockname()[1]} with {workers} daphne process(es), {pool} each")
    supervisor = Supervisor(
        sock=sock, workers=workers, extra=extra, graceful_timeout=args.graceful_timeout, db_pool_size=args.db_pool_size
    )
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
