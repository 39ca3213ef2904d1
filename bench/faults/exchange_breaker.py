"""Drill: an exchange answers 5xx or times out while orders are sent. The scenario is the test
tests/faults/test_exchange_breaker.py (the recorded Binance venue at the HTTP boundary: deterministic and
fast, so the suite runs it too); this runs it and prints its figures as the drill's line.

    python bench/faults/exchange_breaker.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, report


def main() -> int:
    target = Path(tempfile.mkdtemp(prefix="nexus-drill-breaker-")) / "report.json"
    env = {**os.environ, "DRILL_REPORT": str(target), "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov", "--reuse-db",
         "tests/faults/test_exchange_breaker.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    if not target.exists():
        return report("exchange_breaker", False, error=done.stdout[-1500:])
    figures = json.loads(target.read_text())
    figures.pop("drill", None)
    passed = figures.pop("pass") and done.returncode == 0
    return report("exchange_breaker", passed, **figures)


if __name__ == "__main__":
    sys.exit(main())
