"""Drill: a web process is killed while browsers are connected to it.

Starts web with two server processes (WEB_CONCURRENCY=2: the Procfile's web command forks them, or the
platform starts a second daphne on a port of its own, as a load balancer's second backend) and the feed.
Browser-like sockets spread over them hold /ws/market/. One web server process is killed with SIGKILL; the
drill checks that every socket is connected again and receiving prices (each client reconnects, to the
surviving process), and that HTTP keeps answering.

    python bench/faults/web_kill.py [--sockets 40]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from common import SUFFIX, Fleet, Platform, http_status, report, wait_until


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=40)
    args = parser.parse_args()
    platform = Platform(SUFFIX, processes=["web", "feed"], web_processes=2)
    platform.prepare(recreate=False)
    fleet = None
    try:
        platform.start()
        servers = platform.web_server_pids()
        urls = [url.replace("http://", "ws://") + "/ws/market/?view=row" for url in platform.web_urls]
        fleet = Fleet(args.sockets, urls, platform.web_urls[0])
        wait_until(lambda: fleet.receiving_since(time.time() - 3) == args.sockets, timeout=120, what="sockets live")
        connects_before = fleet.connects()
        victim = servers[0]
        killed_at = time.time()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: fleet.connected() < args.sockets, timeout=10, what="sockets noticing the kill")
        dropped = args.sockets - fleet.connected()
        wait_until(lambda: fleet.receiving_since(killed_at + 0.5) == args.sockets, timeout=60,
                   what="every socket receiving again")
        recovered = time.time() - killed_at
        http = [http_status(f"{url}/healthz") for url in platform.web_urls]
        passed = fleet.connected() == args.sockets and 200 in http
        return report(
            "web_kill", passed,
            sockets=args.sockets, web_server_processes=len(servers), killed_pid=victim,
            sockets_dropped=dropped, reconnects=fleet.connects() - connects_before,
            all_receiving_again_after_s=round(recovered, 1), healthz_after=http,
        )
    except TimeoutError as error:
        return report("web_kill", False, error=str(error))
    finally:
        if fleet is not None:
            fleet.close()
        platform.stop()


if __name__ == "__main__":
    sys.exit(main())
