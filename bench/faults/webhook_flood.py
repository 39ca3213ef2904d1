"""Drill: a flood of Stripe webhook deliveries. Real-shaped, signed events (the Stripe example objects of
the shared data, as subscription lifecycles: tests/billing/scenarios.py), each delivered `--copies` times
concurrently by `--clients` clients, shuffled, against the running endpoint (daphne + Celery workers).

It runs bench/webhooks.py (which starts that stack on a database of its own) and judges its figures: no 5xx
and no refused delivery (the endpoint stayed up), every event stored once and processed exactly once (one
side effect each), every whole lifecycle ending in the right subscription and invoice states.

    python bench/faults/webhook_flood.py [--events 300] [--copies 10] [--clients 48]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import ROOT, report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "webhooks.py"), "--events", str(args.events), "--copies",
         str(args.copies), "--clients", str(args.clients), "--workers", str(args.workers)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return report("webhook_flood", False, error="bench/webhooks.py printed no result",
                      stderr=done.stderr[-1500:])
    figures = json.loads(lines[-1])
    accepted = sum(count for status, count in figures["status_counts"].items() if status.startswith("2"))
    passed = (
        figures["5xx"] == 0
        and accepted == figures["deliveries"]
        and figures["stored"] == figures["events"]
        and figures["processed"] == figures["events"]
        and figures["processed_more_than_once"] == 0
        and figures["final_state_right"] == figures["complete_lifecycles"]
    )
    keys = ("events", "deliveries", "copies_per_event", "clients", "stored", "processed", "processed_more_than_once",
            "status_counts", "5xx", "endpoint_p50_ms", "endpoint_p99_ms", "deliveries_per_second",
            "all_processed_seconds", "complete_lifecycles", "final_state_right")
    return report("webhook_flood", passed, **{key: figures.get(key) for key in keys})


if __name__ == "__main__":
    sys.exit(main())
