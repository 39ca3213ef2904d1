"""Every fault drill, one after the other; prints each drill's JSON line as it ends, then a summary line.

    python scripts/nexus.py drills [--only feed_drop,web_kill] [--skip webhook_flood]     (make drills)

Each drill is a script of bench/faults run in its own process with a time limit; a drill that crashes or
runs out of time counts as failed (its last output is kept in the summary). Exit status: 0 when all passed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Quick ones first. The PostgreSQL drill migrates a fresh private cluster; the webhook flood recreates its
# own database: both take minutes on a busy 2-core host.
DRILLS = {
    "exchange_breaker": 900,
    "feed_drop": 600,
    "web_kill": 600,
    "slow_database": 600,
    "redis_restart": 900,
    "postgres_restart": 2400,
    "webhook_flood": 2400,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated drill names")
    parser.add_argument("--skip", default="", help="comma-separated drill names")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    skip = {name for name in args.skip.split(",") if name}
    unknown = (only | skip) - set(DRILLS)
    if unknown:
        parser.error(f"unknown drills: {', '.join(sorted(unknown))} (known: {', '.join(DRILLS)})")
    results = {}
    for name, limit in DRILLS.items():
        if (only and name not in only) or name in skip:
            continue
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(HERE / f"{name}.py")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            stdout, stderr = process.communicate(timeout=limit)
            lines = [line for line in stdout.splitlines() if line.startswith("{")]
            result = json.loads(lines[-1]) if lines else {
                "drill": name, "pass": False, "error": (stderr or stdout)[-1500:]
            }
        except subprocess.TimeoutExpired:
            process.terminate()  # SIGTERM: the drill stops its platform and private servers
            try:
                process.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            result = {"drill": name, "pass": False, "error": f"no result within {limit} s"}
        result["seconds"] = round(time.monotonic() - started, 1)
        results[name] = result
        print(json.dumps(result), flush=True)
    summary = {
        "drills": len(results),
        "passed": sorted(name for name, r in results.items() if r["pass"]),
        "failed": sorted(name for name, r in results.items() if not r["pass"]),
    }
    print(json.dumps({"summary": summary}))
    return 0 if not summary["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
