"""The system and auth contexts are logged at debug on every entry, and summed up at info once a minute."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import time_machine

import core.rls
from core.rls import SUMMARY_SECONDS, ContextTally, auth_context, system_context

pytestmark = pytest.mark.django_db


def _info_events(caplog) -> list[dict]:
    return [
        record.msg
        for record in caplog.records
        if record.name == "core.rls" and record.levelno >= logging.INFO and isinstance(record.msg, dict)
    ]


def test_entries_are_debug_and_one_summary_a_minute_counts_them_per_reason(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="core.rls")
    with time_machine.travel(datetime(2026, 11, 30, 12, 0, tzinfo=UTC), tick=False) as clock:
        monkeypatch.setattr(core.rls, "context_tally", ContextTally())
        for _ in range(3):
            with system_context(reason="market feed: quotes"):
                pass
        with system_context(reason="fan-out"):
            pass
        with auth_context(reason="sign-in: POST /accounts/login/"):
            pass
        clock.shift(SUMMARY_SECONDS - 1)
        with system_context(reason="fan-out"):
            pass
        assert _info_events(caplog) == []  # nothing at info within the minute

        clock.shift(1)
        with system_context(reason="market feed: quotes"):
            pass
        [summary] = _info_events(caplog)
        assert summary["event"] == "rls.contexts" and summary["seconds"] == SUMMARY_SECONDS
        assert summary["system_context"] == {"fan-out": 2, "market feed: quotes": 4}
        assert summary["auth_context"] == {"sign-in: POST /accounts/login/": 1}

        # A new minute starts from zero.
        caplog.clear()
        clock.shift(SUMMARY_SECONDS - 1)
        with auth_context(reason="sign-in: POST /accounts/login/"):
            pass
        assert _info_events(caplog) == []
        clock.shift(1)
        with auth_context(reason="sign-in: POST /accounts/login/"):
            pass
        [summary] = _info_events(caplog)
        assert summary["auth_context"] == {"sign-in: POST /accounts/login/": 2}
        assert "system_context" not in summary
