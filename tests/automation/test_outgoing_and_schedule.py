"""Outgoing webhooks (address checks, signing, retries with backoff against a local server) and schedule
rules evaluated in the trader's time zone."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from datetime import UTC, datetime

import pytest
import time_machine

from automation.models import Rule, RuleRun, WebhookDelivery
from automation.outgoing import WebhookRefused, resolve_public
from automation.services import rule_create, rule_event_record, run_execute, schedules_due
from automation.tasks import webhook_retry_countdown
from core.rls import tenant


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8000/hook", "http://10.1.2.3/hook", "http://192.168.0.10/",
    "http://172.16.5.5/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook", "http://[fe80::1]/",
    "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
])
def test_private_loopback_and_link_local_addresses_are_refused(url, settings):
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(WebhookRefused, match="public addresses only"):
        resolve_public(url)


def test_a_refused_address_fails_the_action_without_retrying(user_a, eager, settings):
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = False
    with tenant(user_a.pk):
        rule = rule_create(user=user_a, name="Hook", trigger_kind="schedule", trigger={"cron": "* * * * *"},
                           actions=[{"kind": "webhook_call", "url": "http://169.254.169.254/x", "message": "hi"}])
    run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="e", event={}, execute=False)
    run_execute(run_id=run.pk, user_id=user_a.pk)
    with tenant(user_a.pk):
        delivery = WebhookDelivery.objects.get(action__run=run)
        assert (delivery.status, delivery.attempts) == ("failed", 1)
        assert "link-local" in delivery.last_error
        assert delivery.action.status == "failed"


class _FlakyHook(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[tuple[bytes, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((body, dict(self.headers)))
        self.send_response(type(self).answers.pop(0))
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_outgoing_webhook_is_signed_and_retried_with_backoff_until_it_succeeds(user_a, eager, settings):
    settings.AUTOMATION_WEBHOOK_ALLOW_PRIVATE = True  # the local test server
    settings.AUTOMATION_WEBHOOK_RETRY_BASE_SECONDS = 30
    _FlakyHook.answers, _FlakyHook.received = [500, 503, 200], []
    server = http.server.HTTPServer(("127.0.0.1", 0), _FlakyHook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        with tenant(user_a.pk):
            rule = rule_create(user=user_a, name="Hook", trigger_kind="schedule", trigger={"cron": "* * * * *"},
                               actions=[{"kind": "webhook_call", "url": url, "message": "ran {{rule}}"}])
        run = rule_event_record(rule_id=rule.pk, user_id=user_a.pk, event_id="e", event={}, execute=False)
        run_execute(run_id=run.pk, user_id=user_a.pk)
    finally:
        server.shutdown()
    assert len(_FlakyHook.received) == 3
    body, headers = _FlakyHook.received[-1]
    assert headers["X-Nexus-Signature"] == "sha256=" + hmac.new(rule.secret.encode(), body, hashlib.sha256).hexdigest()
    assert json.loads(body)["message"] == "ran Hook"
    with tenant(user_a.pk):
        delivery = WebhookDelivery.objects.get(action__run=run)
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 3, 200)
        assert delivery.action.status == "succeeded"
    # The waits between attempts double: 30 s, 60 s, 120 s ...
    assert [webhook_retry_countdown(n) for n in range(4)] == [30, 60, 120, 240]


def test_a_schedule_runs_at_the_traders_local_time_across_daylight_saving(user_a):
    with tenant(user_a.pk):
        type(user_a).objects.filter(pk=user_a.pk).update(time_zone="America/New_York")
        user_a.time_zone = "America/New_York"
    # Monday 2026-03-02, 08:00 in New York (EST, UTC-5): the weekday 09:00 rule is due at 14:00 UTC.
    with time_machine.travel(datetime(2026, 3, 2, 13, 0, tzinfo=UTC), tick=False):
        with tenant(user_a.pk):
            rule = rule_create(user=user_a, name="Open", trigger_kind="schedule", trigger={"cron": "0 9 * * 1-5"},
                               actions=[{"kind": "notify", "message": "Market open"}])
        assert rule.next_run_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
        assert schedules_due() == 0
    with time_machine.travel(datetime(2026, 3, 2, 14, 0, 30, tzinfo=UTC), tick=False):
        assert schedules_due() == 1
        assert schedules_due() == 0  # the next one is tomorrow
    with time_machine.travel(datetime(2026, 3, 6, 14, 0, 30, tzinfo=UTC), tick=False):  # Friday
        schedules_due()
    with tenant(user_a.pk):
        rule = Rule.objects.get(pk=rule.pk)
        # Next is Monday 2026-03-09, after the switch to EDT (UTC-4): 09:00 is 13:00 UTC.
        assert rule.next_run_at == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
        assert list(RuleRun.objects.filter(rule=rule).order_by("created_at").values_list("event_id", flat=True)) == [
            "schedule:2026-03-02T14:00:00+00:00", "schedule:2026-03-06T14:00:00+00:00",
        ]
