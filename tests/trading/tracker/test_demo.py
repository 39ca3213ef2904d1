"""The demo seed gives the demo trader a finished simulation the tracker shows with real numbers."""

from __future__ import annotations

import io
from datetime import date

from django.apps import apps

from core.rls import system_context, tenant
from tests.factories import UserFactory
from trading.models import ReplayRun
from trading.tracker.selectors import report_build, subject_list


def test_the_demo_seed_runs_one_replay_once(instruments, btc_quote):
    trader = UserFactory(email="trader@nexus.demo")
    with system_context(reason="test: seed_demo"):
        apps.get_app_config("portfolios").seed_demo(trader=trader, stdout=io.StringIO())
        apps.get_app_config("trading").seed_demo(trader=trader, stdout=io.StringIO())
        apps.get_app_config("trading").seed_demo(trader=trader, stdout=io.StringIO())
    with tenant(trader.pk):
        [run] = ReplayRun.objects.all()
        assert (run.name, run.status, run.candles_total) == ("BTC trend over the recording", "done", 30240)
        [subject] = [s for s in subject_list(user=trader) if s.kind == "replay"]
        report = report_build(user=trader, subject=subject)
    assert run.decisions > run.blocked > 0
    assert report.stats.trades > 100 and report.stats.win_rate is not None
    # The curve runs from the first simulated fill's day to the recording's last, 21 March 2023.
    assert report.curve.sharpe is not None and report.points[-1].day == date(2023, 3, 21)
    assert report.points[0].day == report.journal.start.date() and len(report.points) >= 5
    assert {b.label for b in report.by_regime if b.stats.trades} == {"Bullish"}  # it only buys in a rising market
