"""What the fault drills share: the platform (bench/nexus_platform.py), a fleet of browser-like WebSocket
clients that reconnect, Django in the drill process, and the one JSON line each drill prints."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE.parent))

from nexus_platform import (  # noqa: E402, F401 - re-exported for the drills
    Platform,
    PrivatePostgres,
    PrivateRedis,
    free_port,
    http_status,
    wait_until,
)

# A drill stopped by SIGTERM (run_all's time limit, Ctrl-C's cousin) still runs its `finally`: the platform's
# processes and the private servers are in sessions of their own and would outlive it otherwise.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))

SUFFIX = "drills"  # every drill on the shared PostgreSQL uses <database>_drills (created once, migrated)


def report(drill: str, passed: bool, **figures) -> int:
    print(json.dumps({"drill": drill, "pass": bool(passed), **figures}, default=str), flush=True)
    return 0 if passed else 1


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


class Socket(threading.Thread):
    """One browser tab's socket: connects to the first address that answers, reads, and when the socket
    closes reconnects (with a little backoff) to the next address in `urls` (what a load balancer does)."""

    def __init__(self, urls: list[str], origin: str, cookie: str = "") -> None:
        super().__init__(daemon=True)
        self.urls, self.origin, self.cookie = urls, origin, cookie
        self.frames = 0
        self.connects = 0
        self.last_frame = 0.0
        self.connected = False
        self.stopped = threading.Event()
        self.url_index = random.randrange(len(urls))
        self.ws = None

    def run(self) -> None:
        import websocket

        while not self.stopped.is_set():
            url = self.urls[self.url_index % len(self.urls)]
            try:
                self.ws = websocket.create_connection(url, origin=self.origin, cookie=self.cookie or None, timeout=10)
            except Exception:  # noqa: BLE001 - refused: try the next address
                self.url_index += 1
                self.stopped.wait(random.uniform(0.2, 0.6))
                continue
            self.connects += 1
            self.connected = True
            self.ws.settimeout(None)
            try:
                while not self.stopped.is_set():
                    message = self.ws.recv()
                    if not message:
                        break
                    self.frames += 1
                    self.last_frame = time.time()
            except Exception:  # noqa: BLE001, S110 - closed under us
                pass
            self.connected = False
            self.url_index += 1
            self.stopped.wait(random.uniform(0.2, 0.6))

    def close(self) -> None:
        self.stopped.set()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close()


class Fleet:
    def __init__(self, count: int, urls: list[str], origin: str, cookie: str = "") -> None:
        self.sockets = [Socket(urls, origin, cookie) for _ in range(count)]
        for sock in self.sockets:
            sock.start()

    def connected(self) -> int:
        return sum(1 for s in self.sockets if s.connected)

    def receiving_since(self, moment: float) -> int:
        """Sockets that received a frame after `moment` (time.time())."""
        return sum(1 for s in self.sockets if s.last_frame > moment)

    def connects(self) -> int:
        return sum(s.connects for s in self.sockets)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
