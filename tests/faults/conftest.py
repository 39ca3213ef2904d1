"""Fault drills that are fast and deterministic enough for the suite. Each also runs as a drill
(bench/faults/run_all.py): with DRILL_REPORT set, the figures a test records in `drill_report` are written
there as JSON when it ends, and the drill prints them as its one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.trading.binance import recorded_binance  # noqa: F401 - the recorded venue, as a fixture here too
from tests.trading.conftest import btc_quote, instruments  # noqa: F401


@pytest.fixture
def drill_report(request):
    figures: dict = {"drill": request.node.name}
    yield figures
    target = os.environ.get("DRILL_REPORT")
    if target:
        failed = getattr(request.node, "rep_call", None)
        figures["pass"] = bool(failed is not None and failed.passed)
        Path(target).write_text(json.dumps(figures, default=str))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
